package direct_test

import (
	"testing"
	"time"

	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/telemetry"
)

// A Send makes the first attempt itself, without a River job, and
// recording it clears the delivery's recovery time, so that no job is made
// for it after the hand-over time. (A failed first attempt sets the
// recovery time to the retry's: TestRetryThenDeliver, whose retry would
// otherwise wait Timeout + 30 s.)
func TestImmediateFirstAttempt(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		_, ep := appWithEndpoint(t, st)
		metrics := telemetry.NewMetrics("test")
		q := newQueue(t, st, fastSchedule, nil, direct.Options{Metrics: metrics})
		startQueue(t, q)

		id := send(t, q, "app", newEvent("ev-1", "t")).MessageID
		if d := waitDone(t, st, id, ep.ID); d.Status != store.DeliveryDelivered || d.Attempts != 1 {
			t.Fatalf("delivery: %+v, want delivered on attempt 1", d)
		}
		if v := metric(t, metrics, `gwook_delivery_first_attempts_total{path="immediate"}`); v != 1 {
			t.Fatalf("first attempts made at once: %v, want 1", v)
		}
		// No job, and no delivery to recover, is left behind.
		deadline := time.Now().Add(waitTimeout)
		for {
			b, err := st.DeliveryBacklog(ctxFor(t), "gwook_delivery")
			if err != nil {
				t.Fatal(err)
			}
			if b.Jobs == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d jobs left after the delivery ended, want 0", b.Jobs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// A process that died right after storing a message, before its first
// attempts, leaves deliveries that no replica gives a job until their
// recovery time, and that River's workers then deliver.
func TestHandOverAfterDeath(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		rcv, ep := appWithEndpoint(t, st)
		dead := newQueue(t, st, fastSchedule, nil, direct.Options{})
		if err := dead.catalog.Sync(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		const grace = 2 * time.Second
		stored := time.Now()
		id, err := dead.StoreAsIfDied(ctxFor(t), "app", newEvent("ev-1", "t"), grace)
		if err != nil {
			t.Fatal(err)
		}

		worker := newQueue(t, st, fastSchedule, nil, direct.Options{})
		startQueue(t, worker)
		whs, err := rcv.WaitFor(1, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if early := grace - time.Since(stored); early > 0 {
			t.Fatalf("delivered %v before the job's hand-over time", early)
		}
		checkWebhook(t, whs[0], id, newEvent("ev-1", "t").Raw)
		if d := waitDone(t, st, id, ep.ID); d.Status != store.DeliveryDelivered || d.Attempts != 1 {
			t.Fatalf("delivery: %+v, want delivered on attempt 1", d)
		}
	})
}

// A Send that finds no room for first attempts (here: the queue is not
// started, so it has none) stores its deliveries with River jobs due now,
// which the workers deliver once they run.
func TestNoRoomQueues(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		_, ep := appWithEndpoint(t, st)
		metrics := telemetry.NewMetrics("test")
		q := newQueue(t, st, fastSchedule, nil, direct.Options{Metrics: metrics})
		if err := q.catalog.Sync(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		id := send(t, q, "app", newEvent("ev-1", "t")).MessageID
		if v := metric(t, metrics, `gwook_delivery_first_attempts_total{path="queued"}`); v != 1 {
			t.Fatalf("first attempts queued: %v, want 1", v)
		}
		b, err := st.DeliveryBacklog(ctxFor(t), "gwook_delivery")
		if err != nil {
			t.Fatal(err)
		}
		if b.Jobs != 1 {
			t.Fatalf("backlog %+v, want the delivery's job", b)
		}
		startQueue(t, q)
		if d := waitDone(t, st, id, ep.ID); d.Status != store.DeliveryDelivered || d.Attempts != 1 {
			t.Fatalf("delivery: %+v, want delivered on attempt 1", d)
		}
	})
}
