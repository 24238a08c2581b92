package direct_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/store"
)

// Sends made at once share transactions: each still gets its own answer,
// an event sent twice at once is stored once, and an application that
// does not exist fails only its own Sends.
func TestConcurrentSends(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		secret := store.NewEndpointSecret()
		rcv := newReceiver(t, []string{secret})
		createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: rcv.URL, Secret: secret})
		// What is checked is how concurrent Sends store; the 300 jobs go
		// to one endpoint, and with the default limit of 10 at once most
		// would be snoozed and fetched again, round after round, which on
		// a loaded machine outlasts waitTimeout.
		q := newQueue(t, st, fastSchedule, nil, direct.Options{MaxInFlightPerEndpoint: 300})
		if err := q.catalog.Sync(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		const events = 300
		type answer struct {
			app, event string
			res        direct.Result
			err        error
		}
		answers := make(chan answer, 3*events)
		var wg sync.WaitGroup
		send := func(app, event string) {
			defer wg.Done()
			// Queue.Send itself: the catalog was synced above.
			res, err := q.Queue.Send(context.Background(), app, newEvent(event, "t"))
			answers <- answer{app, event, res, err}
		}
		for i := range events {
			wg.Add(3)
			go send("app", fmt.Sprint("ev-", i))
			go send("app", fmt.Sprint("ev-", i)) // the same event, at once
			go send("missing", fmt.Sprint("ev-", i))
		}
		wg.Wait()
		close(answers)
		firsts := map[string]string{} // event → message id of its non-duplicate answer
		dups := map[string]string{}
		for a := range answers {
			switch {
			case a.app == "missing":
				if !errors.Is(a.err, store.ErrNotFound) {
					t.Fatalf("Send to a missing application: %+v, %v; want ErrNotFound", a.res, a.err)
				}
			case a.err != nil:
				t.Fatalf("Send %s: %v", a.event, a.err)
			case a.res.Duplicate:
				dups[a.event] = a.res.MessageID
			default:
				if _, twice := firsts[a.event]; twice {
					t.Fatalf("event %s stored twice", a.event)
				}
				if a.res.Endpoints != 1 {
					t.Fatalf("event %s went to %d endpoints, want 1", a.event, a.res.Endpoints)
				}
				firsts[a.event] = a.res.MessageID
			}
		}
		if len(firsts) != events || len(dups) != events {
			t.Fatalf("%d events stored and %d duplicates, want %d of each", len(firsts), len(dups), events)
		}
		for ev, id := range dups {
			if firsts[ev] != id {
				t.Fatalf("event %s: the duplicate's message %s is not the stored %s", ev, id, firsts[ev])
			}
		}
		startQueue(t, q)
		whs, err := rcv.WaitFor(events, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, wh := range whs {
			if seen[wh.ID] {
				t.Fatalf("message %s delivered twice", wh.ID)
			}
			seen[wh.ID] = true
		}
	})
}

// After Stop, Send answers ErrStopped instead of waiting for a writer.
func TestSendAfterStop(t *testing.T) {
	st := openStore(t, "", t.TempDir())
	createApp(t, st, "app")
	q := newQueue(t, st, fastSchedule, nil, direct.Options{})
	if err := q.Stop(ctxFor(t)); err != nil {
		t.Fatalf("stopping a queue never started: %v", err)
	}
	if _, err := q.Queue.Send(ctxFor(t), "app", newEvent("ev", "t")); !errors.Is(err, direct.ErrStopped) {
		t.Fatalf("Send after Stop: %v, want ErrStopped", err)
	}
}
