package dedup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pollTimeout bounds every wait for a claim to expire.
const pollTimeout = 5 * time.Second

// longTTL is the TTL of claims that must not expire during a test. It is
// bounded so that keys a failed test leaves in the shared Redis go away.
const longTTL = time.Minute

var tokenPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// testKey returns a key no other test or run uses.
func testKey(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("gwook:dedup:test:%s:%016x", t.Name(), rand.Uint64())
}

// mustClaim claims key and fails the test unless the claim succeeds.
func mustClaim(t *testing.T, d Deduper, key string, ttl time.Duration) Claim {
	t.Helper()
	c, err := d.Claim(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Claim(%q, %v): %v", key, ttl, err)
	}
	if c.Key != key || !tokenPattern.MatchString(c.Token) {
		t.Fatalf("Claim(%q, %v) = %+v, want that key and a 32-digit hex token", key, ttl, c)
	}
	return c
}

// mustBeDuplicate fails the test unless claiming key returns ErrDuplicate.
func mustBeDuplicate(t *testing.T, d Deduper, key string) {
	t.Helper()
	c, err := d.Claim(t.Context(), key, longTTL)
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Claim(%q) = %+v, %v; want ErrDuplicate", key, c, err)
	}
	if c != (Claim{}) {
		t.Errorf("Claim(%q) returned %+v with ErrDuplicate, want the zero Claim", key, c)
	}
}

// mustRelease releases c and fails the test on an error.
func mustRelease(t *testing.T, d Deduper, c Claim) {
	t.Helper()
	if err := d.Release(t.Context(), c); err != nil {
		t.Fatalf("Release(%+v): %v", c, err)
	}
}

// claimWhenFree polls Claim until it succeeds, which it must within
// pollTimeout; ErrDuplicate means "not yet", any other error fails the test.
func claimWhenFree(t *testing.T, d Deduper, key string, ttl time.Duration) Claim {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		c, err := d.Claim(t.Context(), key, ttl)
		switch {
		case err == nil:
			return c
		case !errors.Is(err, ErrDuplicate):
			t.Fatalf("Claim(%q): %v", key, err)
		case time.Now().After(deadline):
			t.Fatalf("Claim(%q) still ErrDuplicate after %v: the claim did not expire", key, pollTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testDeduper is the conformance suite every Deduper passes. newStore
// returns the store for one subtest; subtests run in parallel and use keys of
// their own.
func testDeduper(t *testing.T, newStore func(t *testing.T) Deduper) {
	t.Run("claim succeeds", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		a := mustClaim(t, d, testKey(t), longTTL)
		b := mustClaim(t, d, testKey(t), longTTL)
		if a.Token == b.Token {
			t.Errorf("two claims share the token %s", a.Token)
		}
	})

	t.Run("second claim is a duplicate", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		mustClaim(t, d, key, longTTL)
		mustBeDuplicate(t, d, key)
		mustBeDuplicate(t, d, key)
	})

	t.Run("release frees the key", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, longTTL)
		mustRelease(t, d, a)
		b := mustClaim(t, d, key, longTTL)
		if a.Token == b.Token {
			t.Errorf("claim after release reuses the token %s", a.Token)
		}
		mustBeDuplicate(t, d, key)
	})

	t.Run("stale release keeps the new holder's claim", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, 50*time.Millisecond)
		b := claimWhenFree(t, d, key, longTTL)
		mustRelease(t, d, a) // a expired; b holds the key
		mustBeDuplicate(t, d, key)
		mustRelease(t, d, b)
		mustClaim(t, d, key, longTTL)
	})

	t.Run("foreign token does not release", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		a := mustClaim(t, d, key, longTTL)
		mustRelease(t, d, Claim{Key: key, Token: "00000000000000000000000000000000"})
		mustRelease(t, d, Claim{Key: key})
		mustBeDuplicate(t, d, key)
		mustRelease(t, d, a)
		mustClaim(t, d, key, longTTL)
	})

	t.Run("claim expires after its ttl", func(t *testing.T) {
		t.Parallel()
		for _, ttl := range []time.Duration{100 * time.Microsecond, 75 * time.Millisecond} {
			t.Run(ttl.String(), func(t *testing.T) {
				t.Parallel()
				d := newStore(t)
				key := testKey(t)
				start := time.Now()
				mustClaim(t, d, key, ttl)
				c, err := d.Claim(t.Context(), key, longTTL)
				// Only a check made well within the ttl must find the key held.
				if time.Since(start) < ttl/2 && !errors.Is(err, ErrDuplicate) {
					t.Fatalf("Claim within the ttl = %+v, %v; want ErrDuplicate", c, err)
				}
				if err == nil {
					mustRelease(t, d, c)
				}
				claimWhenFree(t, d, key, longTTL)
				// Redis counts whole milliseconds, so it may expire a key up
				// to 1ms before the ttl measured here.
				if elapsed := time.Since(start); elapsed < ttl-2*time.Millisecond {
					t.Errorf("key was free again after %v, before its ttl of %v", elapsed, ttl)
				}
			})
		}
	})

	t.Run("invalid ttl is an error", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		for _, ttl := range []time.Duration{0, -time.Second} {
			c, err := d.Claim(t.Context(), key, ttl)
			if err == nil || errors.Is(err, ErrDuplicate) {
				t.Errorf("Claim(ttl %v) = %+v, %v; want an error other than ErrDuplicate", ttl, c, err)
			}
		}
		mustClaim(t, d, key, longTTL)
	})

	t.Run("release of an unknown key is a no-op", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		mustRelease(t, d, Claim{Key: key, Token: "0123456789abcdef0123456789abcdef"})
		mustRelease(t, d, Claim{})
		mustClaim(t, d, key, longTTL)
	})

	t.Run("concurrent claims have one winner", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		const n = 64
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = d.Claim(context.Background(), key, longTTL)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrDuplicate):
				t.Errorf("claim %d: %v", i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent claims won, want 1", won, n)
		}
	})

	t.Run("claim and release exclude each other", func(t *testing.T) {
		t.Parallel()
		d := newStore(t)
		key := testKey(t)
		const workers, rounds = 16, 40
		var holders, wins atomic.Int32
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range rounds {
					c, err := d.Claim(context.Background(), key, longTTL)
					if errors.Is(err, ErrDuplicate) {
						continue
					}
					if err != nil {
						errs <- err
						return
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
		c1 := mustClaim(t, d, k1, longTTL)
		mustClaim(t, d, k2, longTTL)
		mustRelease(t, d, c1)
		mustBeDuplicate(t, d, k2)
		mustClaim(t, d, k1, longTTL)
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
		held := mustClaim(t, d, key, longTTL)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if c, err := d.Claim(ctx, testKey(t), longTTL); !errors.Is(err, context.Canceled) {
			t.Errorf("Claim = %+v, %v; want context.Canceled", c, err)
		}
		if err := d.Release(ctx, held); !errors.Is(err, context.Canceled) {
			t.Errorf("Release = %v, want context.Canceled", err)
		}
		if err := d.Ping(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Ping = %v, want context.Canceled", err)
		}
		mustBeDuplicate(t, d, key)
	})
}

func TestMemory(t *testing.T) {
	testDeduper(t, func(t *testing.T) Deduper {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestClaimTTL(t *testing.T) {
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
		got, err := claimTTL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("claimTTL(%v) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Nanosecond} {
		if got, err := claimTTL(ttl); err == nil {
			t.Errorf("claimTTL(%v) = %v, want an error", ttl, got)
		}
	}
}
