package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/test/svixserver"
)

// BenchmarkProcess runs the whole pipeline for one event: decode, validate,
// filter, dedup claim (in memory), and a Svix call to the Svix-compatible
// server in its fast mode (no OpenAPI checks) over loopback HTTP.
func BenchmarkProcess(b *testing.B) {
	for _, dedupOn := range []bool{false, true} {
		b.Run(fmt.Sprintf("dedup=%v", dedupOn), func(b *testing.B) {
			svx, err := svixserver.NewServer(svixserver.Options{})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(svx)
			defer srv.Close()
			sender, err := svix.New(svix.Config{Token: "sk_bench", ServerURL: srv.URL, MaxConnsPerHost: 64,
				Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler),
				Retry: svix.RetryPolicy{MaxAttempts: 1, MaxElapsed: 5 * time.Second, InitialInterval: time.Millisecond,
					MaxInterval: time.Millisecond, RetryAfterMax: time.Second}})
			if err != nil {
				b.Fatal(err)
			}
			cfg := pipeline.Config{Backend: svix.Backend{Sender: sender}, Logger: slog.New(slog.DiscardHandler)}
			if dedupOn {
				mem := dedup.NewMemory()
				defer mem.Close()
				cfg.Dedup = pipeline.Dedup{Store: mem, TTL: time.Minute, Lease: 10 * time.Second, KeyFields: []string{"id", "type", "project", "source"}}
			}
			p := pipeline.New(cfg)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				body := fmt.Appendf(nil, `{"id":"evt_%d","type":"user.signed_up","source":"accounts","project":"p1","user_id":"usr_1","time":"2026-01-02T15:04:05Z","data":{"plan":"pro","n":%d}}`, i, i)
				m := ingest.Decode(http.Header{}, body, 0)
				if r := p.Process(ctx, &m); r.Outcome != pipeline.Forwarded {
					b.Fatalf("outcome %s: %v", r.Outcome, r.Err)
				}
			}
		})
	}
}

// BenchmarkFilters measures what the filters add to each event: Plan (the
// pipeline's checks before any side effect: the global type filter, the
// application, the application's filter) on a decoded event, with no
// application filter, a type filter, and a typical filter with a CEL
// expression over the event's data. The difference to "none" is the cost
// per event of an application's filter.
func BenchmarkFilters(b *testing.B) {
	body := []byte(`{"id":"evt_1","type":"invoice.paid","source":"billing","project":"p1","user_id":"usr_1",` +
		`"time":"2026-01-02T15:04:05Z","data":{"amount":150,"currency":"EUR","customer":{"id":"cus_1","plan":"pro"},"lines":[1,2,3]}}`)
	for _, tc := range []struct {
		name string
		spec *filter.Spec
	}{
		{"none", nil},
		{"types", &filter.Spec{IncludeTypes: []string{"invoice.*"}, ExcludeTypes: []string{"invoice.draft"}}},
		{"typical_cel", &filter.Spec{IncludeTypes: []string{"invoice.*"}, ExcludeTypes: []string{"invoice.draft"},
			Expression: `event.data.amount > 100 && event.source == "billing"`}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var f *filter.Filter
			if tc.spec != nil {
				var err error
				if f, err = filter.Compile(*tc.spec); err != nil {
					b.Fatal(err)
				}
			}
			p := pipeline.New(pipeline.Config{
				Filter:       filter.GlobalTypes(nil, []string{"internal.*"}),
				AppFilter:    func(string) *filter.Filter { return f },
				Applications: func(string) bool { return true },
			})
			m := ingest.Decode(http.Header{}, body, 0)
			if m.Err != nil {
				b.Fatal(m.Err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, send := p.Plan(&m); !send {
					b.Fatal("the event was not let through")
				}
			}
		})
	}
}
