package telemetry

import (
	"context"
	"fmt"
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
}

// Reporter sends error reports to Sentry. A nil *Reporter reports nothing,
// which is what runs without SENTRY_DSN. Reports carry tags and the error
// text, never payloads or credentials.
type Reporter struct {
	hub *sentry.Hub
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
	return &Reporter{hub: sentry.NewHub(client, sentry.NewScope())}, nil
}

// Report describes one failure worth a report.
type Report struct {
	// Kind groups reports: invalid_push, svix_rejected, rate_limited,
	// unavailable, dead_letter_failed, panic.
	Kind             string
	Err              error
	EventType        string
	Application      string
	Reason           string
	PushSubscription string
	SvixStatus       int
}

// Report sends r, tagged, with the trace id of ctx when there is one.
func (rep *Reporter) Report(ctx context.Context, r Report) {
	if rep == nil {
		return
	}
	rep.hub.WithScope(func(scope *sentry.Scope) {
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
			scope.SetTag("svix_status", fmt.Sprint(r.SvixStatus))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			scope.SetTag("trace_id", sc.TraceID().String())
		}
		scope.SetFingerprint([]string{r.Kind, r.Reason, r.EventType})
		err := r.Err
		if err == nil {
			err = fmt.Errorf("%s", r.Kind)
		}
		rep.hub.CaptureException(err)
	})
}

// Flush waits up to timeout for reports in flight to be sent.
func (rep *Reporter) Flush(timeout time.Duration) {
	if rep != nil {
		rep.hub.Flush(timeout)
	}
}
