package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault rates for message creation; the rest is answered normally.
const (
	rate500  = 0.20
	rate429  = 0.10
	rateSlow = 0.01
)

// faultySvix stands in front of the Svix-compatible server and, while on,
// answers each message creation with a 500 (20%), a 429 with Retry-After: 1
// (10%), or slowly (1%, then normally); everything else goes to the server
// untouched, which keeps Svix's semantics (idempotency keys, eventId
// conflicts) in one place.
type faultySvix struct {
	next http.Handler
	slow time.Duration

	on  atomic.Bool
	mu  sync.Mutex
	rng *rand.Rand

	attempts, err500, err429, slowed, conflicts atomic.Int64
	lastAttempt                                 atomic.Int64 // unix nanoseconds
}

func newFaultySvix(next http.Handler, slow time.Duration, seed uint64) *faultySvix {
	f := &faultySvix{next: next, slow: slow, rng: rand.New(rand.NewPCG(seed, seed))}
	f.on.Store(true)
	return f
}

func (f *faultySvix) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/msg") {
		f.next.ServeHTTP(w, r)
		return
	}
	f.attempts.Add(1)
	f.lastAttempt.Store(time.Now().UnixNano())
	if f.on.Load() {
		f.mu.Lock()
		p := f.rng.Float64()
		f.mu.Unlock()
		switch {
		case p < rate500:
			f.err500.Add(1)
			fail(w, r, http.StatusInternalServerError, "")
			return
		case p < rate500+rate429:
			f.err429.Add(1)
			fail(w, r, http.StatusTooManyRequests, "1")
			return
		case p < rate500+rate429+rateSlow:
			f.slowed.Add(1)
			t := time.NewTimer(f.slow)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
	}
	rec := &statusRecorder{ResponseWriter: w}
	f.next.ServeHTTP(rec, r)
	if rec.status == http.StatusConflict {
		f.conflicts.Add(1)
	}
}

// fail answers with a Svix-style error body.
func fail(w http.ResponseWriter, r *http.Request, status int, retryAfter string) {
	_, _ = io.Copy(io.Discard, r.Body)
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"code":"injected","detail":"fault injected by the soak test"}`)
}

// idleFor reports whether no message creation arrived for d.
func (f *faultySvix) idleFor(d time.Duration) bool {
	return time.Since(time.Unix(0, f.lastAttempt.Load())) >= d
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
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
