package catalog_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/store"
)

// endpointIDs lists the ids of c's endpoints of appID, in order.
func endpointIDs(c *catalog.Catalog, appID string) []string {
	var ids []string
	for _, e := range c.Endpoints(appID) {
		ids = append(ids, e.ID)
	}
	return ids
}

func TestEndpoints(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		stA, stB := db.open(t), db.open(t)
		appID := newApp(t, stA)
		newEndpoint := func(url string) store.Endpoint {
			t.Helper()
			e, err := stA.CreateEndpoint(ctxFor(t), store.Endpoint{ApplicationID: appID, URL: url, Secret: store.NewEndpointSecret()})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		// An endpoint stored before the replica starts is in its snapshot.
		first := newEndpoint("https://one.example/hook")
		a := start(t, stA, catalog.Options{})
		b := start(t, stB, catalog.Options{})
		if got, ok := a.Endpoint(appID, first.ID); !ok || got.URL != first.URL || got.Secret != first.Secret {
			t.Fatalf("the snapshot's endpoint: %+v, %v", got, ok)
		}

		// A new endpoint applies at Sync on the replica that made it, and
		// on the other within the deadline, after the older one.
		second := newEndpoint("https://two.example/hook")
		mustSync(t, a)
		if got := endpointIDs(a, appID); !slices.Equal(got, []string{first.ID, second.ID}) {
			t.Fatalf("endpoints after Sync: %v", got)
		}
		eventually(t, "a new endpoint, on another replica", func() bool {
			return slices.Equal(endpointIDs(b, appID), []string{first.ID, second.ID})
		})

		// A change (disabled, a rotated secret) replaces what was held.
		first.Disabled = true
		if _, err := stA.UpdateEndpoint(ctxFor(t), first); err != nil {
			t.Fatal(err)
		}
		rotated, err := stA.RotateEndpointSecret(ctxFor(t), appID, second.ID, store.NewEndpointSecret())
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "changed endpoints, on another replica", func() bool {
			e1, _ := b.Endpoint(appID, first.ID)
			e2, _ := b.Endpoint(appID, second.ID)
			return e1.Disabled && e2.Secret == rotated.Secret && e2.PreviousSecret == second.Secret &&
				slices.Equal(endpointIDs(b, appID), []string{first.ID, second.ID})
		})

		if err := stA.DeleteEndpoint(ctxFor(t), appID, first.ID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a deleted endpoint, gone on another replica", func() bool {
			_, ok := b.Endpoint(appID, first.ID)
			return !ok && slices.Equal(endpointIDs(b, appID), []string{second.ID})
		})

		// Deleting the application drops its endpoints too.
		if err := stA.DeleteApplication(ctxFor(t), appID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the endpoints of a deleted application, gone", func() bool { return len(b.Endpoints(appID)) == 0 })
	})
}

// A slice handed out by Endpoints stays as it was when the endpoints
// change: readers hold it without a lock.
func TestEndpointsSliceIsNotChangedInPlace(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		appID := newApp(t, st)
		e, err := st.CreateEndpoint(ctxFor(t), store.Endpoint{ApplicationID: appID, URL: "https://one.example/hook", Secret: store.NewEndpointSecret()})
		if err != nil {
			t.Fatal(err)
		}
		c := start(t, st, catalog.Options{PollInterval: time.Hour})
		held := c.Endpoints(appID)
		e.Disabled = true
		if _, err := st.UpdateEndpoint(ctxFor(t), e); err != nil {
			t.Fatal(err)
		}
		mustSync(t, c)
		if now, _ := c.Endpoint(appID, e.ID); !now.Disabled {
			t.Fatal("the change did not apply")
		}
		if len(held) != 1 || held[0].Disabled {
			t.Fatalf("the slice handed out before the change was changed: %+v", held)
		}
	})
}
