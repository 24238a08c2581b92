// Package pipeline is the one path every event takes, whichever way it came
// in: validate, filter, resolve the Svix application, suppress duplicates,
// send, and dead-letter what could not be sent. It returns an Outcome; only
// the HTTP layer turns an outcome into a status code.
//
// Its promise: an event is delivered, deliberately dropped (filtered or
// duplicate), or on the dead-letter topic, or the Result says that none of
// these happened (DeadLetterErr), so the caller must not take it as handled.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/time/rate"

	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/internal/telemetry"
)

// Outcome is what became of one event.
type Outcome string

// The outcomes of Process.
const (
	Forwarded        Outcome = "forwarded"         // Svix accepted the message
	Filtered         Outcome = "filtered"          // dropped on purpose by the type filter
	Duplicate        Outcome = "duplicate"         // inside the dedup window, or Svix already has this eventId
	Invalid          Outcome = "invalid"           // the body is not a valid event
	Rejected         Outcome = "rejected"          // Svix refused the message for good (4xx other than 409 and 429)
	RateLimited      Outcome = "rate_limited"      // Svix answered 429 after every retry
	Unavailable      Outcome = "unavailable"       // Svix failed or was unreachable after every retry, or refused Gwook's token
	DedupUnavailable Outcome = "dedup_unavailable" // the dedup store failed and DEDUP_FAILURE_MODE is closed
)

// Result is the Outcome of one event and what led to it.
type Result struct {
	Outcome Outcome
	// AppID is the Svix application the event was for, once resolved.
	AppID string
	// Svix reports the calls to Svix; zero when none was made.
	Svix svix.Result
	// Err explains any outcome but Forwarded and Filtered. For Invalid it is
	// an *event.InvalidError.
	Err error
	// DeadLettered is true once the event is safe on the dead-letter topic.
	DeadLettered bool
	// DeadLetterErr is why publishing to the dead-letter topic failed.
	DeadLetterErr error
	// TraceID is the trace the event was processed in.
	TraceID string
}

// Dedup configures duplicate suppression. A nil Store turns it off.
type Dedup struct {
	Store     dedup.Deduper
	TTL       time.Duration
	KeyFields []string
	// FailOpen forwards events when the store fails (Svix's idempotency key
	// still stops exact repeats); otherwise they get DedupUnavailable.
	FailOpen bool
}

// Config is what a Pipeline is built from.
type Config struct {
	Sender *svix.Sender
	Filter TypeFilter
	// AppID, when set, is the Svix application for every event; otherwise
	// each event's user_id is the application UID.
	AppID string
	Dedup Dedup
	// DeadLetters receives what could not be delivered; nil means no topic.
	DeadLetters *deadletter.Publisher
	Logger      *slog.Logger
	// Metrics counts events and their steps; nil counts nothing.
	Metrics *telemetry.Metrics
	// Reporter sends error reports; nil sends none.
	Reporter *telemetry.Reporter
	// Tracer starts the pipeline's spans; nil starts none.
	Tracer trace.Tracer
}

// Pipeline processes events. It is safe for concurrent use.
type Pipeline struct {
	cfg Config
	// dedupErrorLog logs failures of the dedup store at most once a minute;
	// gwook_dedup_errors_total counts every one.
	dedupErrorLog rate.Sometimes
}

// New returns a Pipeline.
func New(cfg Config) *Pipeline {
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer(telemetry.TracerName)
	}
	return &Pipeline{cfg: cfg, dedupErrorLog: rate.Sometimes{First: 1, Interval: time.Minute}}
}

// releaseTimeout bounds giving a dedup claim back, which happens even when
// the caller has gone away.
const releaseTimeout = time.Second

// Process takes one decoded message through the pipeline. Replayed messages
// skip duplicate suppression (a replay is deliberate) and are never
// dead-lettered again (they stay on the dead-letter subscription).
//
// A message whose attributes carry the producer's trace context
// (googclient_traceparent) is processed in the producer's trace.
func (p *Pipeline) Process(ctx context.Context, m *ingest.Message) Result {
	ctx, links := telemetry.PushContext(ctx, m.Delivery.Attributes)
	ctx, span := p.cfg.Tracer.Start(ctx, "gwook.pipeline", trace.WithLinks(links...), trace.WithAttributes(
		attribute.String("gwook.entry", string(m.Delivery.Entry)),
		attribute.String("gwook.event.id", m.Event.ID),
		attribute.String("gwook.event.type", m.Event.Type),
		attribute.String("messaging.message.id", m.Delivery.MessageID),
	))
	defer span.End()

	r := p.process(ctx, m)
	if sc := span.SpanContext(); sc.IsValid() {
		r.TraceID = sc.TraceID().String()
	}
	fate := string(r.Outcome)
	if r.DeadLettered {
		fate = "dead_lettered"
	}
	span.SetAttributes(attribute.String("gwook.outcome", fate), attribute.String("gwook.application", r.AppID))
	if r.Err != nil && r.Outcome != Filtered && r.Outcome != Duplicate {
		span.SetStatus(codes.Error, string(r.Outcome))
	}
	p.cfg.Metrics.Event(string(m.Delivery.Entry), fate)
	p.report(ctx, m, &r)
	return r
}

// report sends an error report for the failures an operator must hear of.
// Replays are left out: the operator running one sees its summary.
func (p *Pipeline) report(ctx context.Context, m *ingest.Message, r *Result) {
	if m.Delivery.Entry == ingest.EntryReplay {
		return
	}
	rep := telemetry.Report{Err: r.Err, EventType: m.Event.Type, Application: r.AppID,
		PushSubscription: m.Delivery.Subscription, SvixStatus: r.Svix.Status, Reason: string(r.Outcome)}
	switch {
	case r.Outcome == Invalid && m.Delivery.Entry == ingest.EntryPush:
		rep.Kind, rep.Reason = "invalid_push", string(deadletter.ReasonInvalidEvent)
	case r.Outcome == Rejected:
		rep.Kind = "svix_rejected"
	case r.Outcome == RateLimited || r.Outcome == Unavailable:
		rep.Kind = string(r.Outcome)
	default:
		return
	}
	p.cfg.Reporter.Report(ctx, rep)
	if r.DeadLetterErr != nil {
		rep.Kind, rep.Err = "dead_letter_failed", r.DeadLetterErr
		p.cfg.Reporter.Report(ctx, rep)
	}
}

func (p *Pipeline) process(ctx context.Context, m *ingest.Message) Result {
	if m.Err != nil {
		return p.invalid(ctx, m, m.Err)
	}
	if !p.cfg.Filter.Allows(m.Event.Type) {
		return Result{Outcome: Filtered}
	}
	appID, err := p.application(&m.Event)
	if err != nil {
		return p.invalid(ctx, m, err)
	}

	claim, res, claimed := p.claim(ctx, m)
	if res != nil {
		res.AppID = appID
		return *res
	}
	sent := p.cfg.Sender.Send(ctx, appID, &m.Event)
	r := Result{Outcome: outcomeOf(sent.Outcome), AppID: appID, Svix: sent, Err: sent.Err}
	if claimed && r.Outcome != Forwarded && r.Outcome != Duplicate {
		p.release(ctx, claim)
	}
	switch {
	case sent.Outcome == svix.Unauthorized:
		// Svix refused Gwook's token: the event is not at fault and is
		// left with the caller (Unavailable: a 5xx, so Pub/Sub redelivers
		// and producers retry), to go through once the token is fixed.
	case r.Outcome == RateLimited:
		p.deadLetter(ctx, m, &r, deadletter.ReasonRateLimited)
	case r.Outcome == Unavailable:
		p.deadLetter(ctx, m, &r, deadletter.ReasonUnavailable)
	}
	return r
}

// invalid ends an invalid event; a push is dead-lettered so that Pub/Sub
// stops redelivering something that can never succeed.
func (p *Pipeline) invalid(ctx context.Context, m *ingest.Message, err error) Result {
	r := Result{Outcome: Invalid, Err: err}
	if m.Delivery.Entry == ingest.EntryPush {
		p.deadLetter(ctx, m, &r, deadletter.ReasonInvalidEvent)
	}
	return r
}

// claim takes the event's dedup key. It returns a final Result when the
// event must stop here, and whether a claim is held.
func (p *Pipeline) claim(ctx context.Context, m *ingest.Message) (dedup.Claim, *Result, bool) {
	d := p.cfg.Dedup
	if d.Store == nil || m.Delivery.Entry == ingest.EntryReplay {
		return dedup.Claim{}, nil, false
	}
	ctx, span := p.cfg.Tracer.Start(ctx, "gwook.dedup.claim")
	claim, err := d.Store.Claim(ctx, dedup.Key(&m.Event, d.KeyFields), d.TTL)
	span.End()
	switch {
	case err == nil:
		p.cfg.Metrics.DedupClaim("claimed")
		return claim, nil, true
	case errors.Is(err, dedup.ErrDuplicate):
		p.cfg.Metrics.DedupClaim("duplicate")
		return claim, &Result{Outcome: Duplicate, Err: fmt.Errorf("an event with the same %v arrived within %s", d.KeyFields, d.TTL)}, false
	}
	p.cfg.Metrics.DedupClaim("error")
	p.dedupErrorLog.Do(func() {
		p.cfg.Logger.Error("dedup store failed", "error", err.Error(), "fail_open", d.FailOpen, "next_log_in", "1m")
	})
	if d.FailOpen {
		return claim, nil, false
	}
	return claim, &Result{Outcome: DedupUnavailable, Err: fmt.Errorf("dedup store: %w", err)}, false
}

func (p *Pipeline) release(ctx context.Context, c dedup.Claim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := p.cfg.Dedup.Store.Release(ctx, c); err != nil {
		p.cfg.Metrics.DedupReleaseError()
		p.cfg.Logger.Warn("releasing dedup claim failed; the key expires with its TTL", "error", err.Error())
	}
}

// deadLetter publishes the event of m to the dead-letter topic, when there
// is one and m is not a replay, and records the result in r.
func (p *Pipeline) deadLetter(ctx context.Context, m *ingest.Message, r *Result, reason deadletter.Reason) {
	if p.cfg.DeadLetters == nil || m.Delivery.Entry == ingest.EntryReplay {
		return
	}
	data := m.Event.Raw
	if len(data) == 0 {
		data = m.Body
	}
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	letter := deadletter.Letter{
		TraceParent: m.Delivery.Attributes[telemetry.PushTraceParentAttribute],
		Reason:      reason, Data: data, SvixStatus: r.Svix.Status, Error: errText, Attempts: r.Svix.Attempts,
		EventID: m.Event.ID, EventType: m.Event.Type, Application: r.AppID,
		SourceSubscription: m.Delivery.Subscription, SourceMessageID: m.Delivery.MessageID, FailedAt: time.Now(),
	}
	// The publish outlives a caller that hangs up: the event is safer on
	// the topic than nowhere.
	ctx, span := p.cfg.Tracer.Start(ctx, "gwook.dead_letter.publish", trace.WithAttributes(attribute.String("gwook.reason", string(reason))))
	defer span.End()
	started := time.Now()
	_, err := p.cfg.DeadLetters.Publish(context.WithoutCancel(ctx), letter)
	p.cfg.Metrics.DeadLetterPublish(string(reason), time.Since(started), err)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		r.DeadLetterErr = err
		p.cfg.Logger.Error("dead-letter publish failed", "error", err.Error(), "reason", string(reason),
			"event_id", m.Event.ID, "event_type", m.Event.Type, "push_message_id", m.Delivery.MessageID)
		return
	}
	r.DeadLettered = true
}

// application resolves the Svix application of n.
func (p *Pipeline) application(n *event.Notification) (string, error) {
	if p.cfg.AppID != "" {
		return p.cfg.AppID, nil
	}
	if !event.ValidSvixID(n.UserID) {
		return "", &event.InvalidError{Reason: "event failed validation", Fields: []event.FieldError{{
			Field: "user_id", Rule: "svixid",
			Detail: `is the Svix application UID here, so it must match ^[a-zA-Z0-9\-_.]+$ and be at most 256 characters`,
		}}}
	}
	return n.UserID, nil
}

func outcomeOf(o svix.Outcome) Outcome {
	switch o {
	case svix.Delivered:
		return Forwarded
	case svix.Duplicate:
		return Duplicate
	case svix.Rejected:
		return Rejected
	case svix.RateLimited:
		return RateLimited
	default:
		return Unavailable
	}
}
