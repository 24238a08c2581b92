package main

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/test/redistest"
)

// TestEveryEventSucceeds runs each client briefly against the shared Redis
// and checks that events were measured and that every claim was claimed
// and every commit wrote, so that the program never measures errors; and
// that no key is left behind.
func TestEveryEventSucceeds(t *testing.T) {
	opt, err := redis.ParseURL(redistest.SharedURL())
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBench(t.Context(), opt.Addr) // checks the scripts too
	if err != nil {
		t.Fatalf("%v (REDIS_URL names another server)", err)
	}
	for _, c := range clients {
		r, err := b.measure(t.Context(), c.open, load{conc: 16, warmup: 50 * time.Millisecond, window: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.errs > 0 || r.events == 0 {
			t.Errorf("%s: %d events measured, %d failed (first: %v); want some, and none failed", c.name, r.events, r.errs, r.firstErr)
		}
	}
	if left, err := b.close(t.Context()); err != nil || left > 0 {
		t.Errorf("%d keys left under %s after the measurements (%v), want none", left, b.prefix, err)
	}
}
