package dedup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/event"
)

// pollTimeout bounds every wait for a record to expire.
const pollTimeout = 5 * time.Second

// longTTL is the lease or window of records that must not expire during a
// test. It is bounded so that keys a failed test leaves in the shared Redis
// go away.
const longTTL = time.Minute

// testKey returns a key no other test or run uses.
func testKey(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("gwook:dedup:test:%s:%016x", t.Name(), rand.Uint64())
}

// claim claims key for eventID and fails the test on an error.
func claim(t *testing.T, d Deduper, key, eventID string, lease time.Duration) Claim {
	t.Helper()
	c, err := d.Claim(t.Context(), key, eventID, lease)
	if err != nil {
		t.Fatalf("Claim(%q, %q, %v): %v", key, eventID, lease, err)
	}
	if c.Key != key || c.EventID != eventID {
		t.Fatalf("Claim(%q, %q) = %+v, want that key and event id", key, eventID, c)
	}
	return c
}

// mustClaim claims key for eventID and fails the test unless the answer is
// Claimed, and Own exactly when own is true.
func mustClaim(t *testing.T, d Deduper, key, eventID string, own bool) Claim {
	t.Helper()
	c := claim(t, d, key, eventID, longTTL)
	if c.Status != Claimed || c.Own != own || c.Holder != "" {
		t.Fatalf("Claim(%q, %q) = %+v, want Claimed with Own %v", key, eventID, c, own)
	}
	return c
}

// mustFind claims key for eventID and fails the test unless the answer is
// want (Duplicate or InFlight) naming holder.
func mustFind(t *testing.T, d Deduper, key, eventID string, want Status, holder string) Claim {
	t.Helper()
	c := claim(t, d, key, eventID, longTTL)
	if c.Status != want || c.Holder != holder || c.Own {
		t.Fatalf("Claim(%q, %q) = %+v, want %s held by %q", key, eventID, c, want, holder)
	}
	if want == InFlight && (c.Remaining <= 0 || c.Remaining > longTTL) {
		t.Errorf("Claim(%q, %q) found the key in flight with %v left, want within (0, %v]", key, eventID, c.Remaining, longTTL)
	}
	return c
}

// commit commits c for the window ttl and returns the outcome once
// written.
func commit(d Deduper, c Claim, ttl time.Duration) error {
	written := make(chan error, 1)
	d.Commit(c, ttl, func(err error) { written <- err })
	return <-written
}

// mustCommit commits c for the window ttl and fails the test on an error.
func mustCommit(t *testing.T, d Deduper, c Claim, ttl time.Duration) {
	t.Helper()
	if err := commit(d, c, ttl); err != nil {
		t.Fatalf("Commit(%+v): %v", c, err)
	}
}

// mustRelease releases c and fails the test on an error.
func mustRelease(t *testing.T, d Deduper, c Claim) {
	t.Helper()
	if err := d.Release(t.Context(), c); err != nil {
		t.Fatalf("Release(%+v): %v", c, err)
	}
}

// claimWhenFree polls Claim for eventID until the answer is Claimed, which
// it must be within pollTimeout; InFlight and Duplicate mean "not yet", an
// error fails the test.
func claimWhenFree(t *testing.T, d Deduper, key, eventID string) Claim {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		c := claim(t, d, key, eventID, longTTL)
		if c.Status == Claimed {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Claim(%q, %q) still %s after %v: the record did not expire", key, eventID, c.Status, pollTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testDeduper is the conformance suite every Deduper passes. newStore
// returns the store for one subtest; subtests run in parallel and use keys of
// their own.
func testDeduper(t *testing.T, newStore func(t *testing.T) Deduper) {
	t.Run("free key is claimed in flight", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		mustClaim(t, d, key, "evt_a", false)
		mustFind(t, d, key, "evt_b", InFlight, "evt_a")
		mustFind(t, d, key, "evt_c", InFlight, "evt_a")
	})

	t.Run("a claim after Commit returned sees the commit", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, "evt_a", false)
		written := make(chan error, 1)
		d.Commit(a, longTTL, func(err error) { written <- err })
		// Not waiting for the write: the store took the commit.
		mustFind(t, d, key, "evt_b", Duplicate, "evt_a")
		if err := <-written; err != nil {
			t.Fatalf("Commit: %v", err)
		}
	})

	t.Run("same event is never its own duplicate", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, "evt_a", false)
		mustClaim(t, d, key, "evt_a", true) // a retry while in flight
		mustCommit(t, d, a, longTTL)
		mustClaim(t, d, key, "evt_a", true) // a redelivery after delivery
		mustClaim(t, d, key, "evt_a", true)
		// The own claim left the record delivered.
		mustFind(t, d, key, "evt_b", Duplicate, "evt_a")
	})

	t.Run("delivered event makes others duplicates", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, "evt_a", false)
		mustFind(t, d, key, "evt_b", InFlight, "evt_a")
		mustCommit(t, d, a, longTTL)
		mustFind(t, d, key, "evt_b", Duplicate, "evt_a")
		mustFind(t, d, key, "evt_c", Duplicate, "evt_a")
	})

	t.Run("crashed holder frees the key after its lease", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		const lease = time.Second
		start := time.Now()
		// evt_a claims and is never heard of again: no commit, no release.
		if c := claim(t, d, key, "evt_a", lease); c.Status != Claimed {
			t.Fatalf("first claim = %+v, want Claimed", c)
		}
		b := claim(t, d, key, "evt_b", longTTL)
		// Only a check made well within the lease must find it in flight.
		if time.Since(start) < lease/2 && (b.Status != InFlight || b.Holder != "evt_a" || b.Remaining > lease) {
			t.Fatalf("other event within the lease = %+v, want InFlight held by evt_a with at most %v left", b, lease)
		}
		if b.Status == Claimed {
			mustRelease(t, d, b)
		}
		// The crashed holder's own redelivery is never held up.
		again, err := d.Claim(t.Context(), key, "evt_a", lease)
		if err != nil || again.Status != Claimed || (!again.Own && time.Since(start) < lease/2) {
			t.Fatalf("redelivery of the crashed holder's event = %+v, %v; want Claimed (Own)", again, err)
		}
		claimWhenFree(t, d, key, "evt_b")
		if elapsed := time.Since(start); elapsed < lease-2*time.Millisecond {
			t.Errorf("key was free again after %v, before its lease of %v", elapsed, lease)
		}
		mustFind(t, d, key, "evt_a", InFlight, "evt_b")
	})

	t.Run("own claim renews the lease", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		const short = 200 * time.Millisecond
		if c := claim(t, d, key, "evt_a", short); c.Status != Claimed {
			t.Fatalf("first claim = %+v, want Claimed", c)
		}
		if c := claim(t, d, key, "evt_a", longTTL); c.Status != Claimed || !c.Own {
			t.Fatalf("second claim of the same event = %+v, want Claimed (Own)", c)
		}
		b := mustFind(t, d, key, "evt_b", InFlight, "evt_a")
		if b.Remaining <= short {
			t.Errorf("lease left after the renewal = %v, want above the first lease of %v", b.Remaining, short)
		}
	})

	t.Run("concurrent events have one holder", func(t *testing.T) {
		t.Parallel()
		for _, settle := range []string{"commit", "release"} {
			t.Run(settle, func(t *testing.T) {
				t.Parallel()
				d := newStore(t)
				key := testKey(t)
				const n = 32
				claims := claimAll(t, d, key, n)
				winner := -1
				for i, c := range claims {
					switch {
					case c.Status == Claimed && !c.Own:
						if winner >= 0 {
							t.Fatalf("events %d and %d both claimed the key", winner, i)
						}
						winner = i
					case c.Status != InFlight:
						t.Errorf("event %d: %+v, want InFlight", i, c)
					}
				}
				if winner < 0 {
					t.Fatalf("none of %d concurrent events claimed the key", n)
				}
				for i, c := range claims {
					if i != winner && c.Holder != claims[winner].EventID {
						t.Errorf("event %d found the holder %q, want %q", i, c.Holder, claims[winner].EventID)
					}
				}
				if settle == "commit" {
					mustCommit(t, d, claims[winner], longTTL)
					for i, c := range claimAll(t, d, key, n) {
						if i != winner && (c.Status != Duplicate || c.Holder != claims[winner].EventID) {
							t.Errorf("event %d after the commit: %+v, want Duplicate of %s", i, c, claims[winner].EventID)
						}
					}
					return
				}
				mustRelease(t, d, claims[winner])
				won := 0
				for _, c := range claimAll(t, d, key, n) {
					if c.Status == Claimed && !c.Own {
						won++
					}
				}
				if won != 1 {
					t.Errorf("%d events claimed the released key, want 1", won)
				}
			})
		}
	})

	t.Run("release after a failure frees the key", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, "evt_a", false)
		mustRelease(t, d, a)
		b := mustClaim(t, d, key, "evt_b", false)
		// The failed event's retry now waits for evt_b like any other.
		mustFind(t, d, key, "evt_a", InFlight, "evt_b")
		mustRelease(t, d, b)
		mustClaim(t, d, key, "evt_a", false)
	})

	t.Run("release keeps a delivered record", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		first := mustClaim(t, d, key, "evt_a", false)
		copyOf := mustClaim(t, d, key, "evt_a", true) // a second copy of the same event
		mustCommit(t, d, first, longTTL)
		mustRelease(t, d, copyOf) // the copy's send failed after the first was delivered
		mustFind(t, d, key, "evt_b", Duplicate, "evt_a")
	})

	t.Run("another event's commit and release do nothing", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, "evt_a", false)
		foreign := Claim{Key: key, EventID: "evt_b", Status: Claimed}
		if err := commit(d, foreign, longTTL); !errors.Is(err, ErrNotHeld) {
			t.Errorf("Commit by another event = %v, want ErrNotHeld", err)
		}
		mustRelease(t, d, foreign)
		mustFind(t, d, key, "evt_c", InFlight, "evt_a")
		mustCommit(t, d, a, longTTL)
		if err := commit(d, foreign, longTTL); !errors.Is(err, ErrNotHeld) {
			t.Errorf("Commit by another event after delivery = %v, want ErrNotHeld", err)
		}
		mustRelease(t, d, foreign)
		mustRelease(t, d, a) // delivered: a late release keeps it
		mustFind(t, d, key, "evt_c", Duplicate, "evt_a")
	})

	t.Run("stale release keeps the new holder's claim", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := claim(t, d, key, "evt_a", 50*time.Millisecond)
		b := claimWhenFree(t, d, key, "evt_b")
		mustRelease(t, d, a) // a's lease ran out; b holds the key
		mustFind(t, d, key, "evt_c", InFlight, "evt_b")
		if err := commit(d, a, longTTL); !errors.Is(err, ErrNotHeld) {
			t.Errorf("Commit after the lease ran out and another event claimed = %v, want ErrNotHeld", err)
		}
		mustFind(t, d, key, "evt_c", InFlight, "evt_b")
		mustRelease(t, d, b)
		mustClaim(t, d, key, "evt_c", false)
	})

	t.Run("late commit of a free key records the delivery", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := claim(t, d, key, "evt_a", 50*time.Millisecond)
		// Wait for the lease to run out, leaving the key free.
		probe := claimWhenFree(t, d, key, "evt_probe")
		mustRelease(t, d, probe)
		mustCommit(t, d, a, longTTL)
		mustFind(t, d, key, "evt_b", Duplicate, "evt_a")
	})

	t.Run("different applications do not collide", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		n := &event.Notification{Type: fmt.Sprintf("test.%016x", rand.Uint64()), Project: "p", Source: "s"}
		keyA, keyB := Key("app_a", n, DefaultKeyFields), Key("app_b", n, DefaultKeyFields)
		a := mustClaim(t, d, keyA, "evt_a", false)
		b := mustClaim(t, d, keyB, "evt_b", false)
		mustCommit(t, d, a, longTTL)
		mustCommit(t, d, b, longTTL)
		mustFind(t, d, keyA, "evt_c", Duplicate, "evt_a")
		mustFind(t, d, keyB, "evt_c", Duplicate, "evt_b")
		mustClaim(t, d, Key("app_c", n, DefaultKeyFields), "evt_c", false)
	})

	t.Run("lease and window expire", func(t *testing.T) {
		t.Parallel()
		for _, ttl := range []time.Duration{100 * time.Microsecond, 75 * time.Millisecond} {
			for _, state := range []string{"in flight", "delivered"} {
				t.Run(fmt.Sprint(state, " ", ttl), func(t *testing.T) {
					t.Parallel()
					d := newStore(t)
					key := testKey(t)
					start := time.Now()
					if state == "in flight" {
						claim(t, d, key, "evt_a", ttl)
					} else {
						mustCommit(t, d, mustClaim(t, d, key, "evt_a", false), ttl)
						start = time.Now()
					}
					c := claim(t, d, key, "evt_b", longTTL)
					// Only a check made well within the ttl must find the
					// key held.
					if time.Since(start) < ttl/2 && c.Status == Claimed {
						t.Fatalf("Claim within the ttl = %+v, want the key held", c)
					}
					if c.Status == Claimed {
						mustRelease(t, d, c)
					}
					claimWhenFree(t, d, key, "evt_b")
					// Redis counts whole milliseconds, so it may expire a
					// key up to 1ms before the ttl measured here.
					if elapsed := time.Since(start); elapsed < ttl-2*time.Millisecond {
						t.Errorf("key was free again after %v, before its ttl of %v", elapsed, ttl)
					}
				})
			}
		}
	})

	t.Run("invalid arguments are errors", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		for _, lease := range []time.Duration{0, -time.Second} {
			if c, err := d.Claim(t.Context(), key, "evt_a", lease); err == nil {
				t.Errorf("Claim(lease %v) = %+v, want an error", lease, c)
			}
		}
		if c, err := d.Claim(t.Context(), key, "", longTTL); err == nil {
			t.Errorf("Claim without an event id = %+v, want an error", c)
		}
		a := mustClaim(t, d, key, "evt_a", false)
		for _, ttl := range []time.Duration{0, -time.Second} {
			if err := commit(d, a, ttl); err == nil {
				t.Errorf("Commit(ttl %v) = nil, want an error", ttl)
			}
		}
		inFlight := mustFind(t, d, key, "evt_b", InFlight, "evt_a")
		if err := commit(d, inFlight, longTTL); err == nil || errors.Is(err, ErrNotHeld) {
			t.Errorf("Commit of an InFlight answer = %v, want an error other than ErrNotHeld", err)
		}
		if err := commit(d, Claim{}, longTTL); err == nil {
			t.Error("Commit of the zero Claim = nil, want an error")
		}
		mustRelease(t, d, inFlight) // not held: a no-op
		mustFind(t, d, key, "evt_b", InFlight, "evt_a")
	})

	t.Run("release of an unknown key is a no-op", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		mustRelease(t, d, Claim{Key: key, EventID: "evt_a", Status: Claimed})
		mustRelease(t, d, Claim{})
		mustClaim(t, d, key, "evt_b", false)
	})

	t.Run("claim and release exclude each other", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		const workers, rounds = 16, 40
		var holders, wins atomic.Int32
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					c, err := d.Claim(context.Background(), key, fmt.Sprintf("evt_%d_%d", w, r), longTTL)
					if err != nil {
						errs <- err
						return
					}
					if c.Status != Claimed {
						continue
					}
					wins.Add(1)
					if h := holders.Add(1); h != 1 {
						errs <- fmt.Errorf("%d holders of one key at once", h)
					}
					holders.Add(-1)
					if err := d.Release(context.Background(), c); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if wins.Load() < 2 {
			t.Errorf("%d claims won, want several: releases do not free the key", wins.Load())
		}
	})

	t.Run("keys are independent", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		k1, k2 := testKey(t), testKey(t)
		c1 := mustClaim(t, d, k1, "evt_a", false)
		mustClaim(t, d, k2, "evt_b", false)
		mustRelease(t, d, c1)
		mustFind(t, d, k2, "evt_c", InFlight, "evt_b")
		mustClaim(t, d, k1, "evt_c", false)
	})

	t.Run("ping", func(t *testing.T) {
		t.Parallel()
		if err := newStore(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})

	t.Run("canceled context is an error", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		held := mustClaim(t, d, key, "evt_a", false)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if c, err := d.Claim(ctx, testKey(t), "evt_b", longTTL); !errors.Is(err, context.Canceled) {
			t.Errorf("Claim = %+v, %v; want context.Canceled", c, err)
		}
		if err := d.Release(ctx, held); !errors.Is(err, context.Canceled) {
			t.Errorf("Release = %v, want context.Canceled", err)
		}
		if err := d.Ping(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Ping = %v, want context.Canceled", err)
		}
		mustFind(t, d, key, "evt_b", InFlight, "evt_a")
	})
}

// claimAll claims key for n events at once, evt_0 to evt_<n-1>, and returns
// their answers by index.
func claimAll(t *testing.T, d Deduper, key string, n int) []Claim {
	t.Helper()
	claims := make([]Claim, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			claims[i], errs[i] = d.Claim(context.Background(), key, fmt.Sprint("evt_", i), longTTL)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
	}
	return claims
}

func TestMemory(t *testing.T) {
	testDeduper(t, func(t *testing.T) Deduper {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{Claimed: "claimed", Duplicate: "duplicate", InFlight: "in_flight", 0: "Status(0)"} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestRoundTTL(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{time.Nanosecond, time.Millisecond},
		{999 * time.Microsecond, time.Millisecond},
		{time.Millisecond, time.Millisecond},
		{1500 * time.Microsecond, 2 * time.Millisecond},
		{time.Hour, time.Hour},
	}
	for _, tt := range tests {
		got, err := roundTTL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("roundTTL(%v) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Nanosecond} {
		if got, err := roundTTL(ttl); err == nil {
			t.Errorf("roundTTL(%v) = %v, want an error", ttl, got)
		}
	}
}
