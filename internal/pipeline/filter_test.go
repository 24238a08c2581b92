package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/test/svixserver"
)

// statsTable is what a stats recorder wrote, summed per application.
type statsTable struct {
	mu   sync.Mutex
	rows map[string]store.StatsCounts
}

func (s *statsTable) write(_ context.Context, rows []store.StatsRow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows == nil {
		s.rows = map[string]store.StatsCounts{}
	}
	for _, r := range rows {
		c := s.rows[r.ApplicationID]
		c.Add(r.Counts)
		s.rows[r.ApplicationID] = c
	}
	return nil
}

func mustCompile(t *testing.T, spec filter.Spec) *filter.Filter {
	t.Helper()
	f, err := filter.Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// message decodes an event for user of type typ from source, with data.
func message(t *testing.T, id, user, typ, source, data string, entry pipeline.Entry) *pipeline.Message {
	t.Helper()
	m := ingest.Decode(http.Header{}, fmt.Appendf(nil,
		`{"id":%q,"type":%q,"source":%q,"project":"p1","user_id":%q,"time":"2026-01-02T15:04:05Z","data":%s}`,
		id, typ, source, user, data), 0)
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	m.Delivery.Entry = entry
	return &m
}

// TestFiltersAndStats sends one event down each way the filters and the
// stats know and checks its outcome, what reached Svix, and what was
// counted under which application.
func TestFiltersAndStats(t *testing.T) {
	svx := svixserver.New(t)
	sender := testSender(t, svx)
	mem := dedup.NewMemory()
	t.Cleanup(func() { mem.Close() })
	table := &statsTable{}
	rec := stats.NewRecorder(table.write, stats.Options{})
	filters := map[string]*filter.Filter{
		"app_filtered": mustCompile(t, filter.Spec{ExcludeTypes: []string{"user.deleted"}, Expression: "event.data.amount > 10"}),
	}
	known := map[string]bool{"app_filtered": true, "app_open": true}
	p := pipeline.New(pipeline.Config{
		Backend:      svix.Backend{Sender: sender},
		Filter:       filter.GlobalTypes(nil, []string{"internal.*"}),
		AppFilter:    func(id string) *filter.Filter { return filters[id] },
		Applications: func(id string) bool { return known[id] },
		DropUnknown:  true,
		Stats:        rec,
		Logger:       slog.New(slog.DiscardHandler),
		Dedup:        pipeline.Dedup{Store: mem, TTL: time.Minute, Lease: testLease, KeyFields: dedup.DefaultKeyFields},
	})
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		m           *pipeline.Message
		script      []svixserver.Response
		outcome     pipeline.Outcome
		rule        filter.Rule
		reachesSvix bool
	}{
		{"global type filter", message(t, "e1", "app_open", "internal.audit", "s1", `{}`, pipeline.EntryDirect), nil, pipeline.Filtered, pipeline.RuleGlobalTypes, false},
		{"global type filter, unknown application", message(t, "e2", "app_nobody", "internal.audit", "s2", `{}`, pipeline.EntryDirect), nil, pipeline.Filtered, pipeline.RuleGlobalTypes, false},
		{"excluded by the application", message(t, "e3", "app_filtered", "user.deleted", "s3", `{"amount":50}`, pipeline.EntryDirect), nil, pipeline.Filtered, filter.RuleExcludeTypes, false},
		{"expression false", message(t, "e4", "app_filtered", "invoice.paid", "s4", `{"amount":5}`, pipeline.EntryDirect), nil, pipeline.Filtered, filter.RuleExpression, false},
		{"expression error", message(t, "e5", "app_filtered", "invoice.paid", "s5", `{}`, pipeline.EntryDirect), nil, pipeline.Filtered, filter.RuleExpressionError, false},
		{"passes the filter", message(t, "e6", "app_filtered", "invoice.paid", "s5", `{"amount":50}`, pipeline.EntryDirect), nil, pipeline.Forwarded, "", true},
		{"duplicate of the one before", message(t, "e7", "app_filtered", "invoice.paid", "s5", `{"amount":50}`, pipeline.EntryPush), nil, pipeline.Duplicate, "", false},
		{"no filter", message(t, "e8", "app_open", "user.deleted", "s8", `{}`, pipeline.EntryDirect), nil, pipeline.Forwarded, "", true},
		{"rejected by Svix", message(t, "e9", "app_open", "invoice.paid", "s9", `{}`, pipeline.EntryDirect), []svixserver.Response{{Status: http.StatusBadRequest}}, pipeline.Rejected, "", true},
		{"unavailable: the caller retries, not counted", message(t, "e10", "app_open", "invoice.paid", "s10", `{}`, pipeline.EntryDirect), []svixserver.Response{{Status: http.StatusServiceUnavailable}}, pipeline.Unavailable, "", true},
		{"no application", message(t, "e11", "app_nobody", "invoice.paid", "s11", `{}`, pipeline.EntryDirect), nil, pipeline.NoApplication, "", false},
		{"replays are not counted", message(t, "e12", "app_open", "invoice.paid", "s12", `{}`, pipeline.EntryReplay), nil, pipeline.Forwarded, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(svx.Messages())
			attemptsBefore := svx.Attempts()
			svx.Script(tc.script...)
			r := p.Process(ctx, tc.m)
			if r.Outcome != tc.outcome || r.Filter.Rule != tc.rule {
				t.Fatalf("outcome %s, rule %q (%v); want %s, rule %q", r.Outcome, r.Filter.Rule, r.Err, tc.outcome, tc.rule)
			}
			if r.Outcome == pipeline.Filtered && r.Filter.Reason == "" {
				t.Error("a filtered event without a reason")
			}
			if reached := svx.Attempts() > attemptsBefore; reached != tc.reachesSvix {
				t.Errorf("reached Svix: %v, want %v (messages %d -> %d)", reached, tc.reachesSvix, before, len(svx.Messages()))
			}
		})
	}

	// The filtered events took no dedup claim: an allowed event with the
	// key of a filtered one (s3) is forwarded, not held up.
	if r := p.Process(ctx, message(t, "e13", "app_filtered", "user.deleted", "s3", `{"amount":50}`, pipeline.EntryDirect)); r.Outcome != pipeline.Filtered {
		t.Fatalf("the same filtered event again: %s", r.Outcome)
	}
	filters["app_filtered"] = nil
	if r := p.Process(ctx, message(t, "e14", "app_filtered", "user.deleted", "s3", `{"amount":50}`, pipeline.EntryDirect)); r.Outcome != pipeline.Forwarded {
		t.Fatalf("an allowed event with the key of filtered ones: %s (%v)", r.Outcome, r.Err)
	}

	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]store.StatsCounts{
		"app_open":     {Forwarded: 1, Filtered: 1, Rejected: 1},
		"app_filtered": {Forwarded: 2, Filtered: 4, Duplicate: 1},
	}
	if fmt.Sprint(table.rows) != fmt.Sprint(want) {
		t.Errorf("counted %+v, want %+v", table.rows, want)
	}
}

// TestDecide checks that Decide answers as Process decides, and names the
// rule: the global filter first, then the application's.
func TestDecide(t *testing.T) {
	f := mustCompile(t, filter.Spec{IncludeTypes: []string{"invoice.*"}})
	p := pipeline.New(pipeline.Config{
		Filter:    filter.GlobalTypes([]string{"invoice.*", "internal.*"}, []string{"internal.*"}),
		AppFilter: func(id string) *filter.Filter { return map[string]*filter.Filter{"a": f}[id] },
	})
	for _, tc := range []struct {
		app, typ string
		allowed  bool
		rule     filter.Rule
	}{
		{"a", "invoice.paid", true, ""},
		{"a", "internal.audit", false, pipeline.RuleGlobalTypes},
		{"a", "user.created", false, pipeline.RuleGlobalTypes},
		{"b", "invoice.paid", true, ""},
	} {
		m := message(t, "e", tc.app, tc.typ, "s", `{}`, pipeline.EntryDirect)
		d := p.Decide(tc.app, &m.Event)
		if d.Allowed != tc.allowed || d.Rule != tc.rule {
			t.Errorf("%s %s: %+v, want allowed %v rule %q", tc.app, tc.typ, d, tc.allowed, tc.rule)
		}
		if d2 := p.DecideWith(mustCompile(t, filter.Spec{IncludeTypes: []string{}}), &m.Event); d2.Allowed || (d.Allowed && d2.Rule != filter.RuleIncludeTypes) {
			t.Errorf("%s %s with a filter that allows nothing: %+v", tc.app, tc.typ, d2)
		}
	}
}
