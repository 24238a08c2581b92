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

// ready answers /ready: 200 when every configured dependency answers, 503
// naming each one that does not. The checks run in parallel.
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
	down := false
	for _, c := range h.checks {
		wg.Go(func() {
			state := "ok"
			if err := c.Check(ctx); err != nil {
				state = "down: " + err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			results[c.Name] = state
			down = down || state != "ok"
		})
	}
	wg.Wait()
	if down {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": results})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}
