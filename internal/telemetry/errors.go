package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
	"go.opentelemetry.io/otel/trace"
)

// ReporterConfig configures error reports to Sentry.
type ReporterConfig struct {
	DSN         string
	Environment string
	Release     string
	SampleRate  float64
	// Transport replaces the HTTP transport to Sentry; tests set it.
	Transport sentry.Transport
}

// ReportInterval is the least time between two reports of one kind. The
// reports of a kind that arrive in between are counted, not sent: the next
// report of that kind carries their number in its "suppressed" tag. An
// outage that fails every request then costs one report a minute, not the
// quota.
const ReportInterval = time.Minute

// Reporter sends error reports to Sentry. A nil *Reporter reports nothing,
// which is what runs without SENTRY_DSN. Reports carry tags and the error
// text, never payloads or credentials.
type Reporter struct {
	client *sentry.Client
	now    func() time.Time

	mu    sync.Mutex
	kinds map[string]*kindState
}

// kindState is what the rate limit remembers of one kind of report.
type kindState struct {
	sent       time.Time // when the last report of the kind was sent
	suppressed int       // reports of the kind dropped since then
}

// NewReporter returns a Reporter for cfg, or nil when cfg.DSN is empty.
func NewReporter(cfg ReporterConfig) (*Reporter, error) {
	if cfg.DSN == "" {
		return nil, nil
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:            cfg.DSN,
		Environment:    cfg.Environment,
		Release:        cfg.Release,
		SampleRate:     cfg.SampleRate,
		Transport:      cfg.Transport,
		SendDefaultPII: false,
		// Reports are built from tags only; drop anything an integration
		// might attach from a request.
		BeforeSend: func(e *sentry.Event, _ *sentry.EventHint) *sentry.Event {
			e.Request = nil
			e.User = sentry.User{}
			return e
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sentry: %w", err)
	}
	return &Reporter{client: client, now: time.Now, kinds: map[string]*kindState{}}, nil
}

// Report describes one failure worth a report.
type Report struct {
	// Kind groups reports: invalid_push, invalid_firehose_record,
	// svix_rejected, rate_limited, unavailable, dead_letter_failed, panic. Each kind is sent at most
	// once per ReportInterval.
	Kind             string
	Err              error
	EventType        string
	Application      string
	Reason           string
	PushSubscription string
	SvixStatus       int
}

// Report sends r, tagged, with the trace id of ctx when there is one,
// unless a report of the same kind was sent less than ReportInterval ago.
func (rep *Reporter) Report(ctx context.Context, r Report) {
	if rep == nil {
		return
	}
	suppressed, send := rep.admit(r.Kind)
	if !send {
		return
	}
	// A scope of its own for each report: concurrent reports never share
	// tags.
	scope := sentry.NewScope()
	tags := map[string]string{
		"kind":              r.Kind,
		"event_type":        r.EventType,
		"application":       r.Application,
		"reason":            r.Reason,
		"push_subscription": r.PushSubscription,
	}
	for k, v := range tags {
		if v != "" {
			scope.SetTag(k, v)
		}
	}
	if r.SvixStatus != 0 {
		scope.SetTag("svix_status", strconv.Itoa(r.SvixStatus))
	}
	if suppressed > 0 {
		scope.SetTag("suppressed", strconv.Itoa(suppressed))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		scope.SetTag("trace_id", sc.TraceID().String())
	}
	scope.SetFingerprint([]string{r.Kind, r.Reason, r.EventType})
	err := r.Err
	if err == nil {
		err = fmt.Errorf("%s", r.Kind)
	}
	rep.client.CaptureException(err, &sentry.EventHint{OriginalException: err}, scope)
}

// admit reports whether a report of kind may be sent now and, if so, how
// many reports of kind were dropped since the last one sent.
func (rep *Reporter) admit(kind string) (suppressed int, send bool) {
	now := rep.now()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	s := rep.kinds[kind]
	if s == nil {
		s = &kindState{}
		rep.kinds[kind] = s
	} else if now.Sub(s.sent) < ReportInterval {
		s.suppressed++
		return 0, false
	}
	suppressed = s.suppressed
	s.sent, s.suppressed = now, 0
	return suppressed, true
}

// Flush waits up to timeout for reports in flight to be sent.
func (rep *Reporter) Flush(timeout time.Duration) {
	if rep != nil {
		rep.client.Flush(timeout)
	}
}
