package httpapi

import (
	"context"
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
}

// Health serves /health and /ready and knows whether the server is draining.
type Health struct {
	checks   []Check
	timeout  time.Duration
	draining atomic.Bool
}

// NewHealth returns a Health that asks checks, each bounded by timeout.
func NewHealth(timeout time.Duration, checks ...Check) *Health {
	return &Health{checks: checks, timeout: timeout}
}

// StartDraining makes /health and /ready answer 503 from now on.
func (h *Health) StartDraining() { h.draining.Store(true) }

// live answers /health: 200 while serving, 503 while draining.
func (h *Health) live(w http.ResponseWriter, _ *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers /ready: 200 "ready" when every configured dependency
// answers, 200 "degraded" naming those down that Gwook works around, and 503
// "unavailable" when one it cannot do without is down. The checks run in
// parallel.
func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	results := make(map[string]string, len(h.checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	unavailable, degraded := false, false
	for _, c := range h.checks {
		wg.Go(func() {
			err := c.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				results[c.Name] = "ok"
				return
			}
			results[c.Name] = "down: " + err.Error()
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
