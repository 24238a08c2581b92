package httpapi

import (
	"bytes"
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
	h := scopeRequests(discardLogger)(recoverPanics(slog.New(slog.NewJSONHandler(&logs, nil)), metrics, nil)(
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
