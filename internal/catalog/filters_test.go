package catalog_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/store"
)

// allows reports whether c's filter of appID lets an event of type typ
// through; true without a filter.
func allows(c *catalog.Catalog, appID, typ string) bool {
	f := c.Filter(appID)
	return f == nil || f.Evaluate(&event.Notification{Type: typ, Data: []byte(`{}`)}).Allowed
}

func TestFilters(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		stA, stB := db.open(t), db.open(t)
		appID := newApp(t, stA)
		// A filter stored before the replica starts is in its snapshot.
		if _, _, err := stA.PutFilter(ctxFor(t), store.Filter{ApplicationID: appID, ExcludeTypes: []string{"user.*"}}); err != nil {
			t.Fatal(err)
		}
		a := start(t, stA, catalog.Options{})
		b := start(t, stB, catalog.Options{})
		if allows(a, appID, "user.created") || !allows(a, appID, "invoice.paid") {
			t.Fatal("the snapshot's filter does not hold")
		}

		// A change applies on the replica that made it at Sync, and on the
		// other within replicaDeadline.
		if _, _, err := stA.PutFilter(ctxFor(t), store.Filter{ApplicationID: appID, IncludeTypes: []string{"user.*"}}); err != nil {
			t.Fatal(err)
		}
		mustSync(t, a)
		if !allows(a, appID, "user.created") || allows(a, appID, "invoice.paid") {
			t.Fatal("a changed filter does not hold after Sync")
		}
		eventually(t, "a changed filter, on another replica", func() bool {
			return allows(b, appID, "user.created") && !allows(b, appID, "invoice.paid")
		})

		if err := stA.DeleteFilter(ctxFor(t), appID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a deleted filter, on another replica", func() bool { return b.Filter(appID) == nil })

		// Deleting the application drops its filter too.
		if _, _, err := stA.PutFilter(ctxFor(t), store.Filter{ApplicationID: appID, Expression: "false"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a new filter, on another replica", func() bool { return b.Filter(appID) != nil })
		if err := stA.DeleteApplication(ctxFor(t), appID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the filter of a deleted application, gone", func() bool { return b.Filter(appID) == nil })
	})
}

// A stored filter that does not compile (as one written by a version whose
// CEL accepted more would) drops every event of its application.
func TestFilterThatNoLongerCompiles(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		appID := newApp(t, st)
		db.exec(t, `INSERT INTO filters (application_id, include_types, exclude_types, expression, created_at, updated_at)
			VALUES ('`+appID+`', NULL, NULL, 'event.nope ==', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')`)
		logs := &logRecorder{}
		c := start(t, st, catalog.Options{Logger: slog.New(logs)})
		f := c.Filter(appID)
		if f == nil {
			t.Fatal("no filter held for a stored filter that does not compile")
		}
		d := f.Evaluate(&event.Notification{Type: "user.created", Data: []byte(`{}`)})
		if d.Allowed || d.Rule != filter.RuleInvalidFilter || !strings.Contains(d.Reason, "does not compile") {
			t.Errorf("decision %+v, want a drop by invalid_filter", d)
		}
		if n := logs.count(slog.LevelError); n != 1 {
			t.Errorf("%d errors logged, want 1 for the filter that does not compile", n)
		}
	})
}
