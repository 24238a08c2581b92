package telemetry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
)

// recordingTransport keeps the events a Sentry client sends.
type recordingTransport struct {
	mu     sync.Mutex
	events []*sentry.Event
}

func (t *recordingTransport) Configure(sentry.ClientOptions)        {}
func (t *recordingTransport) Flush(time.Duration) bool              { return true }
func (t *recordingTransport) FlushWithContext(context.Context) bool { return true }
func (t *recordingTransport) Close()                                {}
func (t *recordingTransport) SendEvent(e *sentry.Event) {
	t.mu.Lock()
	t.events = append(t.events, e)
	t.mu.Unlock()
}
func (t *recordingTransport) sent() []*sentry.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*sentry.Event(nil), t.events...)
}

func TestReportsAreRateLimitedPerKind(t *testing.T) {
	transport := &recordingTransport{}
	rep, err := NewReporter(ReporterConfig{DSN: "http://key@127.0.0.1:1/1", SampleRate: 1, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	rep.now = func() time.Time { return clock }
	ctx := context.Background()
	report := func(kind string) {
		rep.Report(ctx, Report{Kind: kind, Err: errors.New(kind + " failed"), Reason: kind})
	}

	// An outage: the same kind fails many times within a minute.
	for range 5 {
		report("unavailable")
	}
	report("svix_rejected") // another kind is not held back by the first
	clock = clock.Add(ReportInterval - time.Second)
	report("unavailable")
	clock = clock.Add(time.Second)
	report("unavailable") // a minute after the first: sent, with the count
	report("unavailable")

	type sent struct{ kind, suppressed string }
	var got []sent
	for _, e := range transport.sent() {
		got = append(got, sent{e.Tags["kind"], e.Tags["suppressed"]})
	}
	want := []sent{{"unavailable", ""}, {"svix_rejected", ""}, {"unavailable", "5"}}
	if len(got) != len(want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("report %d: kind %q suppressed %q, want %+v", i, got[i].kind, got[i].suppressed, want[i])
		}
	}
}

func TestConcurrentReportsKeepTheirOwnTags(t *testing.T) {
	transport := &recordingTransport{}
	rep, err := NewReporter(ReporterConfig{DSN: "http://key@127.0.0.1:1/1", SampleRate: 1, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{"invalid_push", "svix_rejected", "rate_limited", "unavailable", "dead_letter_failed", "panic"}
	var wg sync.WaitGroup
	for _, kind := range kinds {
		wg.Go(func() { rep.Report(context.Background(), Report{Kind: kind, Reason: kind, EventType: kind}) })
	}
	wg.Wait()
	events := transport.sent()
	if len(events) != len(kinds) {
		t.Fatalf("sent %d reports, want %d", len(events), len(kinds))
	}
	for _, e := range events {
		if k := e.Tags["kind"]; e.Tags["reason"] != k || e.Tags["event_type"] != k {
			t.Errorf("report of kind %q carries tags %v", k, e.Tags)
		}
	}
}
