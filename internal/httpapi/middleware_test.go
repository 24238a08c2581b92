package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/telemetry"
)

func TestRecoverPanics(t *testing.T) {
	var logs bytes.Buffer
	metrics := telemetry.NewMetrics("test")
	h := scopeRequests(discardLogger, nil)(recoverPanics(slog.New(slog.NewJSONHandler(&logs, nil)), metrics, nil)(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/notifications", nil))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !strings.Contains(logs.String(), `"panic":"boom"`) || !strings.Contains(logs.String(), "stack") {
		t.Errorf("log: %s", logs.String())
	}
	scrape := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(scrape, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(scrape.Body.String(), "gwook_panics_recovered_total 1") {
		t.Error("the panic was not counted")
	}
}

var discardLogger = slog.New(slog.DiscardHandler)

func TestOneRequestOneLogLineAndItsMetrics(t *testing.T) {
	var logs bytes.Buffer
	metrics := telemetry.NewMetrics("test")
	router := NewRouter(Deps{Health: NewHealth(0, discardLogger), Auth: &Authenticator{Username: "u", Password: "p"},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics})
	router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/notifications", nil))
	router.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nowhere", nil))

	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(logs.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if ms, ok := line["duration_ms"].(float64); !ok || ms < 0 || line["status"] != float64(401) {
		t.Errorf("log line %v: want duration_ms in milliseconds and status 401", line)
	}
	if _, ok := line["duration"]; ok {
		t.Errorf("log line %v still has a duration in nanoseconds", line)
	}
	got := scrape(t, metrics)
	for _, want := range []string{
		`gwook_http_requests_total{code="401",method="POST",route="/notifications"} 1`,
		`gwook_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`gwook_http_request_duration_seconds_count{method="POST",route="/notifications"} 1`,
		"gwook_http_requests_in_flight 0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
