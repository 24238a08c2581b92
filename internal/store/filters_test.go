package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
)

func putFilter(t *testing.T, s *store.Store, f store.Filter) (store.Filter, bool) {
	t.Helper()
	got, created, err := s.PutFilter(ctxFor(t), f)
	mustNot(t, err, "putting the filter of "+f.ApplicationID)
	return got, created
}

func testFilterCRUD(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	t0 := time.Date(2031, 2, 3, 4, 5, 6, 789012345, time.UTC)
	store.SetClock(s, func() time.Time { return t0 })
	createApp(t, s, "app")
	createApp(t, s, "other")
	_, err := s.GetFilter(ctx, "app")
	wantErr(t, err, store.ErrNotFound, "reading the filter of an application without one")

	include := []string{"order.*", "user.created"}
	created, isNew := putFilter(t, s, store.Filter{ApplicationID: "app", IncludeTypes: include,
		ExcludeTypes: []string{"order.test"}, Expression: `event.payload.amount > 100`})
	include[0] = "changed after put" // the store must not keep the caller's slice
	want := store.Filter{ApplicationID: "app", IncludeTypes: []string{"order.*", "user.created"},
		ExcludeTypes: []string{"order.test"}, Expression: `event.payload.amount > 100`,
		CreatedAt: t0.Truncate(time.Microsecond), UpdatedAt: t0.Truncate(time.Microsecond)}
	if !isNew || !filterEqual(created, want) {
		t.Fatalf("put a new filter: %+v (created %v), want %+v (created true)", created, isNew, want)
	}
	got, err := s.GetFilter(ctx, "app")
	mustNot(t, err, "reading")
	if !filterEqual(got, want) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("read back %+v, want %+v in UTC", got, want)
	}

	t1 := t0.Add(time.Hour)
	store.SetClock(s, func() time.Time { return t1 })
	updated, isNew := putFilter(t, s, store.Filter{ApplicationID: "app", Expression: `event.type != "x"`,
		CreatedAt: t1, UpdatedAt: t0}) // the store sets the times
	want = store.Filter{ApplicationID: "app", Expression: `event.type != "x"`,
		CreatedAt: t0.Truncate(time.Microsecond), UpdatedAt: t1.Truncate(time.Microsecond)}
	if isNew || !filterEqual(updated, want) {
		t.Fatalf("replaced a filter: %+v (created %v), want %+v (created false)", updated, isNew, want)
	}
	got, err = s.GetFilter(ctx, "app")
	mustNot(t, err, "reading after the update")
	if !filterEqual(got, want) {
		t.Fatalf("read back %+v after the update, want %+v", got, want)
	}

	other, _ := putFilter(t, s, store.Filter{ApplicationID: "other", ExcludeTypes: []string{"a"}})
	page, err := s.ListFilters(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if len(page.Items) != 2 || !filterEqual(page.Items[0], want) || !filterEqual(page.Items[1], other) || page.NextCursor != "" {
		t.Fatalf("listed %+v (next %q), want [%+v %+v]", page.Items, page.NextCursor, want, other)
	}

	mustNot(t, s.DeleteFilter(ctx, "app"), "deleting")
	_, err = s.GetFilter(ctx, "app")
	wantErr(t, err, store.ErrNotFound, "reading a deleted filter")
	wantErr(t, s.DeleteFilter(ctx, "app"), store.ErrNotFound, "deleting a deleted filter")
	page, err = s.ListFilters(ctx, store.ListOptions{})
	mustNot(t, err, "listing after the delete")
	if ids := filterIDs(page.Items); !slices.Equal(ids, []string{"other"}) {
		t.Fatalf("listed %v after the delete, want [other]", ids)
	}

	// Put after a delete creates it anew.
	t2 := t1.Add(time.Hour)
	store.SetClock(s, func() time.Time { return t2 })
	again, isNew := putFilter(t, s, store.Filter{ApplicationID: "app"})
	if !isNew || !again.CreatedAt.Equal(t2.Truncate(time.Microsecond)) || !again.UpdatedAt.Equal(again.CreatedAt) {
		t.Fatalf("put after a delete: %+v (created %v), want a new filter created at %v", again, isNew, t2)
	}
}

func testFilterTypeLists(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	lists := [][]string{nil, {}, {"a.*", "b-c_d", "ünïcode"}}
	n := 0
	for _, include := range lists {
		for _, exclude := range lists {
			app := fmt.Sprintf("app-%d", n)
			n++
			createApp(t, s, app)
			f := store.Filter{ApplicationID: app, IncludeTypes: include, ExcludeTypes: exclude}
			put, _ := putFilter(t, s, f)
			got, err := s.GetFilter(ctx, app)
			mustNot(t, err, "reading")
			page, err := s.ListFilters(ctx, store.ListOptions{Limit: store.MaxLimit})
			mustNot(t, err, "listing")
			i := slices.IndexFunc(page.Items, func(f store.Filter) bool { return f.ApplicationID == app })
			if i < 0 {
				t.Fatalf("%s's filter is not listed", app)
			}
			listed := page.Items[i]
			for what, g := range map[string]store.Filter{"put": put, "read back": got, "listed": listed} {
				if !sameList(g.IncludeTypes, include) || !sameList(g.ExcludeTypes, exclude) || g.Expression != "" {
					t.Errorf("include %#v, exclude %#v: %s as include %#v, exclude %#v, expression %q",
						include, exclude, what, g.IncludeTypes, g.ExcludeTypes, g.Expression)
				}
			}
		}
	}
	// From a list to nil and from nil to empty through updates.
	createApp(t, s, "switch")
	for _, include := range [][]string{{"x"}, nil, {}, nil} {
		put, _ := putFilter(t, s, store.Filter{ApplicationID: "switch", IncludeTypes: include})
		got, err := s.GetFilter(ctx, "switch")
		mustNot(t, err, "reading")
		if !sameList(put.IncludeTypes, include) || !sameList(got.IncludeTypes, include) {
			t.Errorf("include %#v put as %#v, read back as %#v", include, put.IncludeTypes, got.IncludeTypes)
		}
	}
}

func testFilterNotFound(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	seq, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the sequence")
	for _, app := range []string{"missing", ""} {
		_, _, err := s.PutFilter(ctx, store.Filter{ApplicationID: app, Expression: "true"})
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("putting the filter of application %q", app))
		_, err = s.GetFilter(ctx, app)
		wantErr(t, err, store.ErrNotFound, "reading")
		wantErr(t, s.DeleteFilter(ctx, app), store.ErrNotFound, "deleting")
	}
	createApp(t, s, "present")
	wantErr(t, s.DeleteFilter(ctx, "present"), store.ErrNotFound, "deleting the filter of an application without one")
	changes, _, err := s.ChangesSince(ctx, seq)
	mustNot(t, err, "reading changes")
	if len(changes) != 1 || changes[0].Kind != store.KindApplication {
		t.Fatalf("changes after failed filter writes: %+v, want only the application's creation", changes)
	}
	page, err := s.ListFilters(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if page.Items == nil || len(page.Items) != 0 || page.NextCursor != "" {
		t.Fatalf("empty list = %#v, want no items, non-nil, and no cursor", page)
	}
}

func testFilterCascade(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "gone")
	createApp(t, s, "kept")
	putFilter(t, s, store.Filter{ApplicationID: "gone", Expression: "true"})
	kept, _ := putFilter(t, s, store.Filter{ApplicationID: "kept", Expression: "false"})
	seq, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the sequence")

	mustNot(t, s.DeleteApplication(ctx, "gone"), "deleting the application")
	_, err = s.GetFilter(ctx, "gone")
	wantErr(t, err, store.ErrNotFound, "reading the filter of a deleted application")
	page, err := s.ListFilters(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if len(page.Items) != 1 || !filterEqual(page.Items[0], kept) {
		t.Fatalf("filters left: %+v, want only %+v", page.Items, kept)
	}
	changes, _, err := s.ChangesSince(ctx, seq)
	mustNot(t, err, "reading changes")
	if len(changes) != 1 || changes[0].Kind != store.KindApplication || changes[0].Op != store.OpDelete || changes[0].ID != "gone" {
		t.Fatalf("changes of deleting an application with a filter: %+v, want the application's deletion only", changes)
	}
	// A new application with the same id has no filter.
	createApp(t, s, "gone")
	_, err = s.GetFilter(ctx, "gone")
	wantErr(t, err, store.ErrNotFound, "reading the filter of a new application with a deleted one's id")
}

func testFilterChanges(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	seq, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the sequence")
	putFilter(t, s, store.Filter{ApplicationID: "app", IncludeTypes: []string{"a"}})
	putFilter(t, s, store.Filter{ApplicationID: "app", IncludeTypes: []string{"b"}})
	mustNot(t, s.DeleteFilter(ctx, "app"), "deleting")

	changes, next, err := s.ChangesSince(ctx, seq)
	mustNot(t, err, "reading changes")
	want := []store.ChangeOp{store.OpCreate, store.OpUpdate, store.OpDelete}
	if len(changes) != len(want) || next != seq+int64(len(want)) {
		t.Fatalf("changes %+v (next %d), want %d filter changes", changes, next, len(want))
	}
	for i, c := range changes {
		if c.Kind != store.KindFilter || c.Op != want[i] || c.ID != "app" || c.ApplicationID != "app" || c.Seq != seq+int64(i+1) {
			t.Errorf("change %d = %+v, want filter %s of app at seq %d", i, c, want[i], seq+int64(i+1))
		}
	}
}

func testPaginateFilters(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	tick(s)
	var want []string
	for i := range 13 {
		id := fmt.Sprintf("app-%02d", 12-i) // ids in reverse: order is by time
		createApp(t, s, id)
		putFilter(t, s, store.Filter{ApplicationID: id})
		want = append(want, id)
	}
	// Replacing a filter keeps its place.
	putFilter(t, s, store.Filter{ApplicationID: "app-12", Expression: "true"})
	list := func(o store.ListOptions) (store.Page[store.Filter], error) { return s.ListFilters(ctx, o) }
	for _, limit := range []int{1, 4, 12, 13, 14} {
		if got := listAll(t, limit, list, filterID); !slices.Equal(got, want) {
			t.Fatalf("limit %d listed %v, want %v", limit, got, want)
		}
	}

	// Filters created at the same time are ordered by application id.
	tied := time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)
	store.SetClock(s, func() time.Time { return tied })
	var tiedIDs []string
	for i := range 7 {
		id := fmt.Sprintf("tie-%02d", (i*3)%7)
		createApp(t, s, id)
		putFilter(t, s, store.Filter{ApplicationID: id})
		tiedIDs = append(tiedIDs, id)
	}
	slices.Sort(tiedIDs)
	want = append(want, tiedIDs...)
	for _, limit := range []int{1, 3, 20} {
		if got := listAll(t, limit, list, filterID); !slices.Equal(got, want) {
			t.Fatalf("limit %d listed %v, want %v", limit, got, want)
		}
	}

	for _, o := range []store.ListOptions{{Limit: -1}, {Limit: store.MaxLimit + 1}, {Cursor: "not base64!"}} {
		_, err := s.ListFilters(ctx, o)
		wantErr(t, err, store.ErrInvalidPage, fmt.Sprintf("listing filters with %+v", o))
	}
}

func filterEqual(a, b store.Filter) bool {
	return a.ApplicationID == b.ApplicationID && sameList(a.IncludeTypes, b.IncludeTypes) &&
		sameList(a.ExcludeTypes, b.ExcludeTypes) && a.Expression == b.Expression &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

// sameList reports whether a and b hold the same strings and are both nil
// or both not.
func sameList(a, b []string) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }

func filterID(f store.Filter) string       { return f.ApplicationID }
func filterIDs(fs []store.Filter) []string { return mapIDs(fs, filterID) }
