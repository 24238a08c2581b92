// Package svix creates Svix messages for Gwook's events, with Gwook's own
// HTTP client and retry policy, and classifies what Svix answered into the
// outcomes Gwook acts on. Every call to Svix goes through the official Svix
// Go SDK but one: the message created per event, which sends the SDK's own
// request without the SDK's per-request work (message.go). It also mirrors
// Gwook's applications, endpoints and event types, whose source of truth is
// Gwook's database, to Svix (mirror.go, eventtypes.go).
package svix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v5"
	svixgo "github.com/svix/svix-webhooks/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/telemetry"
	"github.com/gwook/gwook/internal/truncate"
)

// Outcome is what became of one event after every attempt.
type Outcome int

// The outcomes of Send.
const (
	Delivered   Outcome = iota // Svix accepted the message
	Duplicate                  // Svix already has a message with this eventId (409)
	Rejected                   // Svix refused it for good (400, 404, 413, 422, ...)
	RateLimited                // Svix still answered 429 after every retry, or asked to wait past RetryAfterMax
	Unavailable                // 5xx, timeouts or connection errors after every retry
	// Unauthorized means Svix refused the API token (401 or 403): Gwook is
	// misconfigured, and the event itself may well be fine.
	Unauthorized
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	case RateLimited:
		return "rate_limited"
	case Unavailable:
		return "unavailable"
	case Unauthorized:
		return "unauthorized"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result reports one Send.
type Result struct {
	Outcome    Outcome
	MessageID  string        // Svix's id of the created message
	Status     int           // Svix's last HTTP status; 0 when none was received
	Attempts   int           // requests made, the first included
	RetryAfter time.Duration // the last Retry-After Svix asked for, as Svix gave it
	Body       string        // Svix's last error body, truncated, for logs
	Err        error         // the last error, nil when delivered
}

// Config configures a Sender.
type Config struct {
	Token           string
	ServerURL       string // empty: the SDK picks Svix's regional API from the token
	Debug           bool   // log requests and responses at debug level, credentials redacted
	MaxConnsPerHost int
	// Timeout bounds each attempt. It is a context deadline, not
	// http.Client.Timeout: with a wrapped transport the client enforces its
	// Timeout with a goroutine and a timer per request.
	Timeout time.Duration
	Retry   RetryPolicy
	Logger  *slog.Logger
	// Metrics counts requests to Svix; nil counts nothing.
	Metrics *telemetry.Metrics
	// Tracing traces each send, attempt and HTTP request; nil traces nothing.
	Tracing trace.TracerProvider
	// SDKDefaultClient uses the SDK's default http.Client instead of
	// Gwook's tuned one. It exists to measure what the tuning buys.
	SDKDefaultClient bool
}

// Sender creates Svix messages. It is safe for concurrent use.
type Sender struct {
	client   *svixgo.Svix
	messages *messageCreator
	timeout  time.Duration
	policy   RetryPolicy
	metrics  *telemetry.Metrics
	tracer   trace.Tracer
}

// maxErrorBody bounds how much of a Svix error body is kept for logs.
const maxErrorBody = 1024

// New builds a Sender. The SDK's own retries are turned off: Send retries
// with backoff and honours Retry-After, which the SDK cannot.
func New(cfg Config) (*Sender, error) {
	tp := cfg.Tracing
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	wrap := func(rt http.RoundTripper) http.RoundTripper {
		if cfg.Debug {
			rt = debugTransport{next: rt, logger: cfg.Logger}
		}
		return recordingTransport{next: telemetry.ClientTransport(rt, tp)}
	}
	// Messages go through the same transport as the SDK's calls.
	var transport http.RoundTripper
	opts := &svixgo.SvixOptions{RetrySchedule: &[]time.Duration{}}
	if cfg.SDKDefaultClient {
		// The SDK's own pool, wrapped only to read Retry-After.
		opts.TransportWrapper = func(sdk http.RoundTripper) http.RoundTripper {
			transport = wrap(sdk)
			return transport
		}
	} else {
		transport = wrap(newTransport(cfg.MaxConnsPerHost))
		opts.HTTPClient = &http.Client{Transport: transport}
	}
	if cfg.ServerURL != "" {
		u, err := url.Parse(cfg.ServerURL)
		if err != nil {
			return nil, fmt.Errorf("svix: server URL: %w", err)
		}
		opts.ServerUrl = u
	}
	client, err := svixgo.New(cfg.Token, opts)
	if err != nil {
		return nil, fmt.Errorf("svix: %w", err)
	}
	messages, err := newMessageCreator(transport, cfg.Token, opts.ServerUrl)
	if err != nil {
		return nil, err
	}
	return &Sender{client: client, messages: messages, timeout: cfg.Timeout, policy: cfg.Retry, metrics: cfg.Metrics,
		tracer: tp.Tracer(telemetry.TracerName)}, nil
}

// Send creates one message for n in the application appID: eventType is the
// event type, eventId and the idempotency key are the event id, and the
// payload is the event's raw bytes. It retries 429, 5xx, timeouts and
// connection errors until the policy or ctx says stop.
func (s *Sender) Send(ctx context.Context, appID string, n *event.Notification) Result {
	// The budget ends the retries (backoff.WithMaxElapsedTime) and cuts
	// the attempt running when it passes: each attempt has one deadline,
	// the nearer of the budget's and its own timeout.
	budget := time.Now().Add(s.policy.MaxElapsed)
	ctx, span := s.tracer.Start(ctx, "svix.send", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("svix.app_id", appID), attribute.String("svix.event_id", n.ID)))
	defer span.End()

	body := messageBody(n)
	var res Result
	attempt := func() (struct{}, error) {
		res.Attempts++
		var id string
		return struct{}{}, s.attempt(ctx, budget, res.Attempts, func(ctx context.Context) (err error) {
			id, err = s.messages.create(ctx, appID, n.ID, body)
			return err
		}, func(span trace.Span, rec *attemptRecord, err error) error {
			err = s.classify(ctx, budget, &res, rec, id, err)
			span.SetAttributes(attribute.String("svix.outcome", res.Outcome.String()))
			if err != nil {
				span.SetStatus(codes.Error, res.Outcome.String())
			}
			return err
		})
	}
	_, err := backoff.Retry(ctx, attempt,
		backoff.WithBackOff(s.policy.newBackOff()),
		backoff.WithMaxTries(uint(s.policy.MaxAttempts)),
		backoff.WithMaxElapsedTime(s.policy.MaxElapsed))
	if err != nil && res.Err == nil {
		res.Err = err
	}
	span.SetAttributes(attribute.Int("svix.attempts", res.Attempts), attribute.String("svix.outcome", res.Outcome.String()))
	if res.Outcome != Delivered {
		span.SetStatus(codes.Error, res.Outcome.String())
	}
	return res
}

// attempt makes the n-th attempt of a call to Svix: in a span of its own,
// bounded by the per-attempt timeout and by budget (zero: none but ctx's),
// counted in the metrics. judge turns what happened into what backoff.Retry needs,
// annotating the span before it ends.
func (s *Sender) attempt(ctx context.Context, budget time.Time, n int, call func(context.Context) error,
	judge func(span trace.Span, rec *attemptRecord, err error) error) error {
	actx, span := s.tracer.Start(ctx, "svix.attempt", trace.WithAttributes(attribute.Int("svix.attempt", n)))
	defer span.End()
	started := time.Now()
	deadline := budget
	if s.timeout > 0 && (deadline.IsZero() || started.Add(s.timeout).Before(deadline)) {
		deadline = started.Add(s.timeout)
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(actx, deadline)
		defer cancel()
	}
	var rec attemptRecord
	err := call(withAttemptRecord(actx, &rec))
	s.metrics.SvixRequest(rec.status, time.Since(started), n > 1)
	span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
	return judge(span, &rec, err)
}

// classify records one attempt in res and returns what backoff.Retry needs:
// nil to stop with success, a permanent error to stop, a RetryAfterError to
// wait as Svix asked, or another error to back off and retry.
func (s *Sender) classify(ctx context.Context, budget time.Time, res *Result, rec *attemptRecord, messageID string, err error) error {
	if err != nil && rec.status == 0 && (ctx.Err() != nil || !time.Now().Before(budget)) && res.Status != 0 {
		// The time budget ran out during this attempt: what Svix answered
		// last (a 429 stays rate_limited) is the result.
		return backoff.Permanent(err)
	}
	res.Status = rec.status
	res.Err = err
	if err == nil || (rec.status >= 200 && rec.status < 300) {
		// A 2xx whose body could not be read still created the message.
		res.Outcome, res.Err, res.Body, res.MessageID = Delivered, nil, "", messageID
		return nil
	}
	answer, ok := errors.AsType[*answerError](err)
	if !ok {
		res.Outcome, res.Body = Unavailable, ""
		return err
	}
	res.Body = truncate.String(string(answer.body), maxErrorBody)
	status := answer.status
	switch {
	case status == http.StatusConflict:
		res.Outcome = Duplicate
		return backoff.Permanent(err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		res.Outcome = Unauthorized
		s.metrics.SvixUnauthorized()
		return backoff.Permanent(err)
	case status == http.StatusTooManyRequests:
		res.Outcome = RateLimited
	case status >= 500:
		res.Outcome = Unavailable
	default:
		res.Outcome = Rejected
		return backoff.Permanent(err)
	}
	if wait, ok := parseRetryAfter(rec.retryAfter, time.Now()); ok {
		res.RetryAfter = wait
		if wait > s.policy.RetryAfterMax {
			// Waiting that long would only hold the caller: stop, and pass
			// Svix's own wait on.
			return backoff.Permanent(err)
		}
		return &backoff.RetryAfterError{Duration: wait}
	}
	return err
}

// Ping checks that Svix answers its health endpoint, which needs no token.
func (s *Sender) Ping(ctx context.Context) error {
	return s.client.Health.Get(ctx)
}

// ErrUnauthorized is what CheckToken returns, wrapped, when Svix refuses
// the API token.
var ErrUnauthorized = errors.New("svix: the API token was refused")

// CheckToken makes one cheap authenticated call to Svix (listing at most
// one application) and reports whether Svix accepts the token: nil when it
// does, an error wrapping ErrUnauthorized when Svix answers 401 or 403, and
// another error when Svix could not be asked (unreachable, timeout, 5xx).
// The call is bounded by the per-attempt timeout and is not retried.
func (s *Sender) CheckToken(ctx context.Context) error {
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	var rec attemptRecord
	limit := uint64(1)
	_, err := s.client.Application.List(withAttemptRecord(ctx, &rec), &svixgo.ApplicationListOptions{Limit: &limit})
	switch {
	case rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden:
		s.metrics.SvixUnauthorized()
		return fmt.Errorf("%w (%d %s)", ErrUnauthorized, rec.status, http.StatusText(rec.status))
	case err == nil || (rec.status >= 200 && rec.status < 300):
		return nil
	}
	return fmt.Errorf("svix: checking the API token: %w", err)
}
