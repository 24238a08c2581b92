package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Check is one dependency /ready asks about.
type Check struct {
	Name  string
	Check func(context.Context) error
	// Degrades marks a dependency Gwook works around when it is down (it is
	// reported, and /ready still answers 200 "degraded"); the others make
	// /ready answer 503, taking the replica out of the load balancer.
	Degrades bool
	// CacheFor, when set, reuses a result for that long, so that /ready
	// makes at most one call to the dependency per CacheFor however often
	// it is asked: for checks that cost an API call with a quota.
	CacheFor time.Duration
}

// Health serves /health and /ready and knows whether the server is draining.
type Health struct {
	checks   []*checkState
	timeout  time.Duration
	logger   *slog.Logger
	now      func() time.Time
	draining atomic.Bool
}

// checkState is a Check and what /ready last learnt from it.
type checkState struct {
	Check
	// call is held while the check runs when results are cached, so
	// that concurrent probes wait for one call instead of making many.
	call sync.Mutex

	mu        sync.Mutex
	checkedAt time.Time
	err       error
	logged    string // the error last logged; "" while up
}

// NewHealth returns a Health that asks checks, each bounded by timeout, and
// logs to logger when a dependency goes down (with the error) and when it
// is back. The errors are never served: /ready is unauthenticated.
func NewHealth(timeout time.Duration, logger *slog.Logger, checks ...Check) *Health {
	h := &Health{timeout: timeout, logger: logger, now: time.Now}
	for _, c := range checks {
		h.checks = append(h.checks, &checkState{Check: c})
	}
	return h
}

// StartDraining makes /health and /ready answer 503 from now on.
func (h *Health) StartDraining() { h.draining.Store(true) }

// live answers /health: 200 while serving, 503 while draining.
func (h *Health) live(w http.ResponseWriter, _ *http.Request) {
	if h.draining.Load() {
		writeJSONBody(w, http.StatusServiceUnavailable, liveDraining)
		return
	}
	writeJSONBody(w, http.StatusOK, liveOK)
}

// The bodies /health answers, encoded once: probes come often.
var (
	liveOK       = []byte(`{"status":"ok"}` + "\n")
	liveDraining = []byte(`{"status":"draining"}` + "\n")
)

// ready answers /ready: 200 "ready" when every configured dependency
// answers, 200 "degraded" naming those down that Gwook works around, and 503
// "unavailable" when one it cannot do without is down. Each dependency is
// "ok" or "down"; why it is down is in the logs. The checks run in
// parallel.
func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	// A probe that hangs up does not cut a check short: its result may be
	// cached, and must be the dependency's answer.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.timeout)
	defer cancel()
	results := make(map[string]string, len(h.checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	unavailable, degraded := false, false
	for _, c := range h.checks {
		wg.Go(func() {
			err := h.run(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				results[c.Name] = "ok"
				return
			}
			results[c.Name] = "down"
			degraded = degraded || c.Degrades
			unavailable = unavailable || !c.Degrades
		})
	}
	wg.Wait()
	switch {
	case unavailable:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": results})
	case degraded:
		writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "checks": results})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
	}
}

// run returns c's result: a cached one while it is fresh, a new one
// otherwise.
func (h *Health) run(ctx context.Context, c *checkState) error {
	if c.CacheFor <= 0 {
		err := c.Check.Check(ctx)
		h.record(ctx, c, err)
		return err
	}
	c.call.Lock()
	defer c.call.Unlock()
	c.mu.Lock()
	fresh := !c.checkedAt.IsZero() && h.now().Sub(c.checkedAt) < c.CacheFor
	err := c.err
	c.mu.Unlock()
	if fresh {
		return err
	}
	err = c.Check.Check(ctx)
	h.record(ctx, c, err)
	return err
}

// record keeps c's result and logs a change: down (or down for another
// reason) at warn level with the error, back up at info level.
func (h *Health) record(ctx context.Context, c *checkState, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkedAt, c.err = h.now(), err
	switch {
	case err != nil && err.Error() != c.logged:
		c.logged = err.Error()
		h.logger.WarnContext(ctx, "readiness check failed", "check", c.Name, "error", c.logged, "degrades", c.Degrades)
	case err == nil && c.logged != "":
		c.logged = ""
		h.logger.InfoContext(ctx, "readiness check ok again", "check", c.Name)
	}
}
