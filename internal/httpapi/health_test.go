package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readyBody is the body /ready answers.
type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func getReady(t *testing.T, h *Health) (int, readyBody) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ready(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	var body readyBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return rec.Code, body
}

func TestReady(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:6379: connection refused") }
	for _, tc := range []struct {
		name       string
		checks     []Check
		draining   bool
		wantCode   int
		wantStatus string
		wantChecks map[string]string
	}{
		{"all up", []Check{{Name: "svix", Check: up}, {Name: "redis", Check: up, Degrades: true}}, false,
			200, "ready", map[string]string{"svix": "ok", "redis": "ok"}},
		{"a dependency it works around is down", []Check{{Name: "svix", Check: down, Degrades: true}, {Name: "dead_letter_topic", Check: up}}, false,
			200, "degraded", map[string]string{"svix": "down", "dead_letter_topic": "ok"}},
		{"a dependency it needs is down", []Check{{Name: "svix", Check: up}, {Name: "redis", Check: down}}, false,
			503, "unavailable", map[string]string{"svix": "ok", "redis": "down"}},
		{"both kinds down", []Check{{Name: "svix", Check: down, Degrades: true}, {Name: "redis", Check: down}}, false,
			503, "unavailable", map[string]string{"svix": "down", "redis": "down"}},
		{"draining", []Check{{Name: "svix", Check: up}}, true, 503, "draining", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := NewHealth(time.Second, slog.New(slog.NewJSONHandler(&logs, nil)), tc.checks...)
			if tc.draining {
				h.StartDraining()
			}
			code, body := getReady(t, h)
			if code != tc.wantCode || body.Status != tc.wantStatus || len(body.Checks) != len(tc.wantChecks) {
				t.Fatalf("%d %+v, want %d %s %v", code, body, tc.wantCode, tc.wantStatus, tc.wantChecks)
			}
			for name, want := range tc.wantChecks {
				if body.Checks[name] != want {
					t.Errorf("check %s = %q, want %q", name, body.Checks[name], want)
				}
			}
			// Why a dependency is down is logged, never served.
			if strings.Contains(tc.name, "down") && !strings.Contains(logs.String(), "connection refused") {
				t.Errorf("the error was not logged: %s", logs.String())
			}
		})
	}
}

func TestReadyLogsChangesOnly(t *testing.T) {
	var logs bytes.Buffer
	var failing atomic.Bool
	check := func(context.Context) error {
		if failing.Load() {
			return errors.New("connection refused")
		}
		return nil
	}
	h := NewHealth(time.Second, slog.New(slog.NewJSONHandler(&logs, nil)), Check{Name: "svix", Check: check})
	failing.Store(true)
	for range 3 {
		getReady(t, h)
	}
	failing.Store(false)
	getReady(t, h)
	getReady(t, h)
	if n := strings.Count(logs.String(), `"msg":"readiness check failed"`); n != 1 {
		t.Errorf("%d failure lines for one outage:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), `"msg":"readiness check ok again"`); n != 1 {
		t.Errorf("%d recovery lines:\n%s", n, logs.String())
	}
}

func TestReadyCachesACheckForItsPeriod(t *testing.T) {
	var calls atomic.Int32
	var failing atomic.Bool
	check := func(context.Context) error {
		calls.Add(1)
		if failing.Load() {
			return errors.New("topic not found")
		}
		return nil
	}
	h := NewHealth(time.Second, discardLogger, Check{Name: "dead_letter_topic", Check: check, Degrades: true, CacheFor: time.Minute})
	clock := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	// Probes at once and in a row, within the minute: one call.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if code, body := getReady(t, h); code != 200 || body.Status != "ready" {
				t.Errorf("%d %+v", code, body)
			}
		})
	}
	wg.Wait()
	failing.Store(true)
	advance(59 * time.Second)
	if _, body := getReady(t, h); body.Status != "ready" {
		t.Errorf("within the minute the cached result holds: %+v", body)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls within a minute, want 1", n)
	}

	// A minute on: one new call, which finds the topic gone. It degrades
	// readiness, and the failure is cached too.
	advance(time.Second)
	for range 3 {
		if code, body := getReady(t, h); code != 200 || body.Status != "degraded" || body.Checks["dead_letter_topic"] != "down" {
			t.Errorf("%d %+v, want 200 degraded", code, body)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls after a minute, want 2", n)
	}
}

func TestReadyHEAD(t *testing.T) {
	h := NewHealth(time.Second, discardLogger, Check{Name: "svix", Check: func(context.Context) error { return nil }})
	router := NewRouter(Deps{Health: h, Auth: &Authenticator{}, Logger: discardLogger})
	srv := httptest.NewServer(router)
	defer srv.Close()
	for _, path := range []string{"/health", "/ready"} {
		resp, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("HEAD %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	h.StartDraining()
	resp, err := http.Head(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("HEAD /health while draining: %d", resp.StatusCode)
	}
}
