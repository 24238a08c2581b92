package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
)

// sameJSON reports whether a and b are the same JSON value (PostgreSQL's
// jsonb keeps neither spacing nor key order), or both absent.
func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

func eventTypeEqual(t *testing.T, a, b store.EventType) bool {
	t.Helper()
	return a.Name == b.Name && a.Description == b.Description && a.Archived == b.Archived &&
		sameJSON(t, a.Schema, b.Schema) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testEventTypeCRUD(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	t0 := time.Date(2031, 2, 3, 4, 5, 6, 789012345, time.UTC)
	store.SetClock(s, func() time.Time { return t0 })
	_, err := s.GetEventType(ctx, "invoice.paid")
	wantErr(t, err, store.ErrNotFound, "reading a missing event type")

	schema := json.RawMessage(`{"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}`)
	created, err := s.CreateEventType(ctx, store.EventType{Name: "invoice.paid", Description: "An invoice was paid", Schema: schema})
	mustNot(t, err, "creating")
	want := store.EventType{Name: "invoice.paid", Description: "An invoice was paid", Schema: schema,
		CreatedAt: t0.Truncate(time.Microsecond), UpdatedAt: t0.Truncate(time.Microsecond)}
	if !eventTypeEqual(t, created, want) {
		t.Fatalf("created %+v, want %+v", created, want)
	}
	got, err := s.GetEventType(ctx, "invoice.paid")
	mustNot(t, err, "reading")
	if !eventTypeEqual(t, got, want) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
	_, err = s.CreateEventType(ctx, store.EventType{Name: "invoice.paid"})
	wantErr(t, err, store.ErrConflict, "creating the same name again")

	t1 := t0.Add(time.Hour)
	store.SetClock(s, func() time.Time { return t1 })
	updated, err := s.UpdateEventType(ctx, store.EventType{Name: "invoice.paid", Archived: true})
	mustNot(t, err, "updating")
	want = store.EventType{Name: "invoice.paid", Archived: true, CreatedAt: want.CreatedAt, UpdatedAt: t1.Truncate(time.Microsecond)}
	if !eventTypeEqual(t, updated, want) || updated.Schema != nil {
		t.Fatalf("updated %+v, want %+v without a schema", updated, want)
	}
	_, err = s.UpdateEventType(ctx, store.EventType{Name: "nothing"})
	wantErr(t, err, store.ErrNotFound, "updating a missing event type")

	other, err := s.CreateEventType(ctx, store.EventType{Name: "user.created", Schema: json.RawMessage(`true`)})
	mustNot(t, err, "creating another")
	page, err := s.ListEventTypes(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if len(page.Items) != 2 || !eventTypeEqual(t, page.Items[0], want) || !eventTypeEqual(t, page.Items[1], other) {
		t.Fatalf("listed %+v, want [%+v %+v]", page.Items, want, other)
	}

	mustNot(t, s.DeleteEventType(ctx, "invoice.paid"), "deleting")
	_, err = s.GetEventType(ctx, "invoice.paid")
	wantErr(t, err, store.ErrNotFound, "reading a deleted event type")
	wantErr(t, s.DeleteEventType(ctx, "invoice.paid"), store.ErrNotFound, "deleting a deleted event type")
}

func testEventTypeChanges(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	seq, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the sequence")
	_, err = s.CreateEventType(ctx, store.EventType{Name: "a.b"})
	mustNot(t, err, "creating")
	_, err = s.UpdateEventType(ctx, store.EventType{Name: "a.b", Description: "x"})
	mustNot(t, err, "updating")
	mustNot(t, s.DeleteEventType(ctx, "a.b"), "deleting")
	changes, _, err := s.ChangesSince(ctx, seq)
	mustNot(t, err, "reading changes")
	var got []string
	for _, c := range changes {
		got = append(got, fmt.Sprintf("%s %s %s %q", c.Kind, c.Op, c.ID, c.ApplicationID))
	}
	want := []string{`event_type create a.b ""`, `event_type update a.b ""`, `event_type delete a.b ""`}
	if !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
}

func testPaginateEventTypes(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("type.%d", i)
		_, err := s.CreateEventType(ctx, store.EventType{Name: name})
		mustNot(t, err, "creating")
		want = append(want, name)
	}
	got := listAll(t, 3, func(o store.ListOptions) (store.Page[store.EventType], error) { return s.ListEventTypes(ctx, o) },
		func(et store.EventType) string { return et.Name })
	if !slices.Equal(got, want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
}
