package main

import (
	"context"
	"net/http"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

// Fault rates for message creation; the rest is answered normally.
const (
	rate500  = 0.20
	rate429  = 0.10
	rateSlow = 0.01
)

// svixFaults are the Svix-compatible server's random faults while the soak
// runs: a 500, a 429 with Retry-After: 1, or an answer that takes slow and
// is then normal.
func svixFaults(slow time.Duration) []svixserver.Fault {
	return []svixserver.Fault{
		{Rate: rate500, Response: svixserver.Response{Status: http.StatusInternalServerError}},
		{Rate: rate429, Response: svixserver.Response{Status: http.StatusTooManyRequests, RetryAfter: "1"}},
		{Rate: rateSlow, Response: svixserver.Response{Delay: slow}},
	}
}

// sleepCtx waits for d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
