package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/test/pgtest"
	"github.com/gwook/gwook/test/svixserver"
)

// invoiceSchema is the data schema of invoice.paid in these tests.
const invoiceSchema = `{
	"type": "object",
	"required": ["invoice_id", "amount_cents", "currency"],
	"properties": {
		"invoice_id": {"type": "string"},
		"amount_cents": {"type": "integer", "minimum": 0},
		"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}
	}
}`

// openStores opens two connections to one fresh database of each dialect,
// as two replicas would.
func openStores(t *testing.T, test func(t *testing.T, a, b *store.Store)) {
	open := func(t *testing.T, url, dir string) *store.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := store.Open(ctx, url, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	t.Run("SQLite", func(t *testing.T) {
		dir := t.TempDir()
		test(t, open(t, "", dir), open(t, "", dir))
	})
	t.Run("Postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		test(t, open(t, url, ""), open(t, url, ""))
	})
}

func startCatalog(t *testing.T, st *store.Store, poll time.Duration) *catalog.Catalog {
	t.Helper()
	c := catalog.New(st, catalog.Options{PollInterval: poll, Logger: slog.New(slog.DiscardHandler)})
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestEventTypes takes events of catalogued types through a pipeline that
// reads them from a replica's catalog, while another replica changes them.
func TestEventTypes(t *testing.T) {
	openStores(t, func(t *testing.T, writer, reader *store.Store) {
		ctx := t.Context()
		if _, err := writer.CreateEventType(ctx, store.EventType{Name: "invoice.paid", Schema: json.RawMessage(invoiceSchema)}); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.CreateEventType(ctx, store.EventType{Name: "user.signed_up"}); err != nil {
			t.Fatal(err)
		}
		cat := startCatalog(t, reader, 50*time.Millisecond)
		svx := svixserver.New(t)
		p := pipeline.New(pipeline.Config{Backend: svix.Backend{Sender: testSender(t, svx)}, EventTypes: cat.EventType,
			Logger: slog.New(slog.DiscardHandler)})

		// Every violation is listed, and nothing reaches Svix.
		r := p.Process(ctx, message(t, "e1", "app", "invoice.paid", "s", `{"amount_cents": -5, "currency": "eur"}`, pipeline.EntryPush))
		var invalid *event.InvalidError
		if r.Outcome != pipeline.Invalid || !errors.As(r.Err, &invalid) {
			t.Fatalf("data breaking the schema: %s (%v), want invalid", r.Outcome, r.Err)
		}
		var got []string
		for _, f := range invalid.Fields {
			got = append(got, f.Field+":"+f.Rule)
		}
		slices.Sort(got)
		if want := []string{"data/amount_cents:minimum", "data/currency:pattern", "data/invoice_id:required"}; !slices.Equal(got, want) {
			t.Errorf("violations %v, want %v", got, want)
		}
		if n := svx.Attempts(); n != 0 {
			t.Errorf("%d requests reached Svix for an invalid event", n)
		}

		// Valid data, a type without a schema and a type not in the
		// catalogue are forwarded.
		for _, m := range []*pipeline.Message{
			message(t, "e2", "app", "invoice.paid", "s", `{"invoice_id": "in_1", "amount_cents": 100, "currency": "EUR"}`, pipeline.EntryDirect),
			message(t, "e3", "app", "user.signed_up", "s", `{"anything": [1, 2]}`, pipeline.EntryDirect),
			message(t, "e4", "app", "brand.new", "s", `{"amount_cents": "many"}`, pipeline.EntryDirect),
		} {
			if r := p.Process(ctx, m); r.Outcome != pipeline.Forwarded {
				t.Errorf("%s: %s (%v), want forwarded", m.Event.Type, r.Outcome, r.Err)
			}
		}

		// Another replica changes the schema and archives a type: this one
		// applies both within its poll.
		if _, err := writer.UpdateEventType(ctx, store.EventType{Name: "invoice.paid",
			Schema: json.RawMessage(`{"type": "object", "required": ["total"]}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.UpdateEventType(ctx, store.EventType{Name: "user.signed_up", Archived: true}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			// Two changes, each applied at its own poll: wait for both.
			m := message(t, "e5", "app", "invoice.paid", "s", `{"invoice_id": "in_1", "amount_cents": 100, "currency": "EUR"}`, pipeline.EntryDirect)
			archived := message(t, "e5b", "app", "user.signed_up", "s", `{}`, pipeline.EntryDirect)
			d1, _ := p.Plan(m)
			d2, _ := p.Plan(archived)
			if d1.Outcome == pipeline.Invalid && d2.Outcome == pipeline.Filtered {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the changed schema did not apply within 5 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r := p.Process(ctx, message(t, "e6", "app", "invoice.paid", "s", `{"total": 1}`, pipeline.EntryDirect)); r.Outcome != pipeline.Forwarded {
			t.Errorf("data of the new schema: %s (%v)", r.Outcome, r.Err)
		}
		before := svx.Attempts()
		r = p.Process(ctx, message(t, "e7", "app", "user.signed_up", "s", `{}`, pipeline.EntryDirect))
		if r.Outcome != pipeline.Filtered || r.Filter.Rule != pipeline.RuleArchivedType || r.Filter.Reason == "" {
			t.Errorf("an archived type: %s, rule %q, want filtered by %q", r.Outcome, r.Filter.Rule, pipeline.RuleArchivedType)
		}
		if svx.Attempts() != before {
			t.Error("an event of an archived type reached Svix")
		}

		// Deleting a type opens it again.
		if err := writer.DeleteEventType(ctx, "invoice.paid"); err != nil {
			t.Fatal(err)
		}
		if err := cat.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if r := p.Process(ctx, message(t, "e8", "app", "invoice.paid", "s", `{"no": "schema"}`, pipeline.EntryDirect)); r.Outcome != pipeline.Forwarded {
			t.Errorf("a deleted type: %s (%v), want forwarded", r.Outcome, r.Err)
		}
	})
}
