package catalog_test

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/store"
)

// valid reports whether c lets data through the schema of type typ: true
// when the type has none or is not catalogued.
func valid(c *catalog.Catalog, typ, data string) bool {
	et := c.EventType(typ)
	return et == nil || et.Schema == nil || et.Schema.Validate(json.RawMessage(data)) == nil
}

func TestEventTypes(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		stA, stB := db.open(t), db.open(t)
		typ := "invoice.paid"
		// A type stored before the replica starts is in its snapshot.
		if _, err := stA.CreateEventType(ctxFor(t), store.EventType{Name: typ,
			Schema: json.RawMessage(`{"type": "object", "required": ["amount"]}`)}); err != nil {
			t.Fatal(err)
		}
		a := start(t, stA, catalog.Options{})
		b := start(t, stB, catalog.Options{})
		if valid(a, typ, `{}`) || !valid(a, typ, `{"amount": 1}`) || a.EventType(typ).Archived {
			t.Fatal("the snapshot's schema does not hold")
		}
		if a.EventType("not.catalogued") != nil {
			t.Fatal("a type not in the catalogue is held")
		}

		// A changed schema applies on the replica that made it at Sync,
		// and on the other within its poll.
		if _, err := stA.UpdateEventType(ctxFor(t), store.EventType{Name: typ, Archived: true,
			Schema: json.RawMessage(`{"type": "object", "required": ["total"]}`)}); err != nil {
			t.Fatal(err)
		}
		mustSync(t, a)
		if valid(a, typ, `{"amount": 1}`) || !valid(a, typ, `{"total": 1}`) || !a.EventType(typ).Archived {
			t.Fatal("a changed event type does not hold after Sync")
		}
		eventually(t, "a changed event type, on another replica", func() bool {
			return !valid(b, typ, `{"amount": 1}`) && valid(b, typ, `{"total": 1}`) && b.EventType(typ).Archived
		})

		if err := stA.DeleteEventType(ctxFor(t), typ); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a deleted event type, on another replica", func() bool { return b.EventType(typ) == nil })
	})
}

// A stored schema that does not compile makes the type's events invalid.
func TestEventTypeSchemaThatNoLongerCompiles(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		if _, err := st.CreateEventType(ctxFor(t), store.EventType{Name: "broken.schema", Schema: json.RawMessage(`{"type": "objekt"}`)}); err != nil {
			t.Fatal(err)
		}
		c := start(t, st, catalog.Options{Logger: slog.New(slog.DiscardHandler)})
		et := c.EventType("broken.schema")
		if et == nil || et.Err == nil || et.Schema != nil {
			t.Fatalf("held %+v, want an error and no schema", et)
		}
	})
}
