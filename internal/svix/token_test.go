package svix

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/telemetry"
	"github.com/gwook/gwook/test/svixserver"
)

const rightToken = "sk_right_token_never_shown"

// tokenServer is a validating Svix-compatible server that expects
// rightToken and counts the requests to list applications.
type tokenServer struct {
	svx   *svixserver.Server
	url   string
	lists atomic.Int32
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	svx, err := svixserver.NewServer(svixserver.Options{Token: rightToken, Validate: true, OnViolation: func(err error) {
		t.Errorf("request does not match the Svix OpenAPI document: %v", err)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{svx: svx}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/v1/app" {
			ts.lists.Add(1)
		}
		svx.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	return ts
}

func newTokenSender(t *testing.T, url, token string, metrics *telemetry.Metrics) *Sender {
	t.Helper()
	s, err := New(Config{Token: token, ServerURL: url, MaxConnsPerHost: 1, Timeout: time.Second, Retry: fastPolicy(),
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckToken(t *testing.T) {
	ts := newTokenServer(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	status := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(`{"code":"x","detail":"scripted"}`))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, tc := range []struct {
		name             string
		url, token       string
		wantErr, wantBad bool // any error; ErrUnauthorized
	}{
		{"accepted", ts.url, rightToken, false, false},
		{"wrong token", ts.url, "sk_wrong_token_never_shown", true, true},
		{"forbidden", status(http.StatusForbidden), rightToken, true, true},
		{"Svix failing", status(http.StatusServiceUnavailable), rightToken, true, false},
		{"rate limited", status(http.StatusTooManyRequests), rightToken, true, false},
		{"Svix unreachable", closed.URL, rightToken, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metrics := telemetry.NewMetrics("test")
			err := newTokenSender(t, tc.url, tc.token, metrics).CheckToken(context.Background())
			if (err != nil) != tc.wantErr || errors.Is(err, ErrUnauthorized) != tc.wantBad {
				t.Fatalf("CheckToken() = %v; want an error: %v, ErrUnauthorized: %v", err, tc.wantErr, tc.wantBad)
			}
			if err != nil && strings.Contains(err.Error(), "never_shown") {
				t.Errorf("the error shows the token: %v", err)
			}
			want := map[bool]float64{true: 1}[tc.wantBad]
			if got := counterValue(t, metrics, "gwook_svix_unauthorized_total"); got != want {
				t.Errorf("gwook_svix_unauthorized_total = %g, want %g", got, want)
			}
		})
	}
	if n := ts.lists.Load(); n != 2 {
		t.Errorf("the validating server got %d list requests, want 2", n)
	}
}

func TestUnauthorizedMessageIsCounted(t *testing.T) {
	ts := newTokenServer(t)
	metrics := telemetry.NewMetrics("test")
	res := newTokenSender(t, ts.url, "sk_wrong", metrics).Send(context.Background(), "app_1", &testEvent)
	if res.Outcome != Unauthorized || res.Status != http.StatusUnauthorized || res.Attempts != 1 {
		t.Fatalf("result = %+v", res)
	}
	if got := counterValue(t, metrics, "gwook_svix_unauthorized_total"); got != 1 {
		t.Errorf("gwook_svix_unauthorized_total = %g, want 1", got)
	}
	if n := len(ts.svx.Messages()); n != 0 {
		t.Errorf("Svix stored %d messages", n)
	}
}
