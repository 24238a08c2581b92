package svix

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/telemetry"
)

// scriptedSvix answers the message endpoint with a scripted list of
// statuses (the last one repeats) and records when each request came.
type scriptedSvix struct {
	mu         sync.Mutex
	statuses   []int
	retryAfter string
	delay      time.Duration
	requests   []recordedRequest
}

type recordedRequest struct {
	at             time.Time
	path           string
	idempotencyKey string
	auth           string
	body           map[string]any
}

func (s *scriptedSvix) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, recordedRequest{at: time.Now(), path: r.URL.Path,
		idempotencyKey: r.Header.Get("idempotency-key"), auth: r.Header.Get("Authorization"), body: body})
	status, delay := s.statuses[min(n, len(s.statuses)-1)], s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if status >= 429 && s.retryAfter != "" {
		w.Header().Set("Retry-After", s.retryAfter)
	}
	w.WriteHeader(status)
	if status == http.StatusAccepted {
		_, _ = io.WriteString(w, `{"id":"msg_1","eventType":"user.signed_up","eventId":"evt_1","payload":{},"timestamp":"2026-01-02T15:04:05Z"}`)
		return
	}
	_, _ = io.WriteString(w, `{"code":"some_error","detail":"scripted"}`)
}

func (s *scriptedSvix) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

var testEvent = event.Notification{ID: "evt_1", Type: "user.signed_up", Raw: []byte(`{"id":"evt_1","data":{"a":1}}`)}

func fastPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, MaxElapsed: 5 * time.Second, InitialInterval: time.Millisecond,
		MaxInterval: 5 * time.Millisecond, RetryAfterMax: 2 * time.Second}
}

func newTestSender(t *testing.T, url string, policy RetryPolicy, timeout time.Duration, logger *slog.Logger) *Sender {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(Config{Token: "sk_test_secret_token", ServerURL: url, MaxConnsPerHost: 4, Timeout: timeout, Retry: policy, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendRequestShape(t *testing.T) {
	svx := &scriptedSvix{statuses: []int{202}}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	res := newTestSender(t, srv.URL, fastPolicy(), time.Second, nil).Send(context.Background(), "app_9", &testEvent)
	if res.Outcome != Delivered || res.MessageID != "msg_1" || res.Status != 202 || res.Attempts != 1 || res.Err != nil {
		t.Fatalf("result = %+v", res)
	}
	req := svx.requests[0]
	if req.path != "/api/v1/app/app_9/msg" || req.idempotencyKey != "evt_1" || req.auth != "Bearer sk_test_secret_token" {
		t.Errorf("request = %+v", req)
	}
	params, _ := req.body["transformationsParams"].(map[string]any)
	if req.body["eventType"] != "user.signed_up" || req.body["eventId"] != "evt_1" || params["rawPayload"] != string(testEvent.Raw) {
		t.Errorf("body = %v", req.body)
	}
}

func TestSendClassification(t *testing.T) {
	for _, tc := range []struct {
		statuses     []int
		want         Outcome
		wantAttempts int
	}{
		{[]int{400}, Rejected, 1},
		{[]int{401}, Unauthorized, 1},
		{[]int{403}, Unauthorized, 1},
		{[]int{404}, Rejected, 1},
		{[]int{413}, Rejected, 1},
		{[]int{422}, Rejected, 1},
		{[]int{409}, Duplicate, 1},
		{[]int{429}, RateLimited, 5},
		{[]int{500}, Unavailable, 5},
		{[]int{502}, Unavailable, 5},
		{[]int{503}, Unavailable, 5},
		{[]int{500, 503, 202}, Delivered, 3},
		{[]int{429, 429, 202}, Delivered, 3},
		{[]int{500, 409}, Duplicate, 2},
		{[]int{503, 422}, Rejected, 2},
		{[]int{503, 401}, Unauthorized, 2},
	} {
		t.Run(strings.Trim(strings.Join(strings.Fields(fmtInts(tc.statuses)), "-"), "[]"), func(t *testing.T) {
			svx := &scriptedSvix{statuses: tc.statuses}
			srv := httptest.NewServer(svx)
			defer srv.Close()
			res := newTestSender(t, srv.URL, fastPolicy(), time.Second, nil).Send(context.Background(), "app", &testEvent)
			last := tc.statuses[min(tc.wantAttempts, len(tc.statuses))-1]
			if res.Outcome != tc.want || res.Attempts != tc.wantAttempts || res.Status != last || svx.count() != tc.wantAttempts {
				t.Errorf("got %s after %d attempts (server saw %d), status %d; want %s after %d, status %d",
					res.Outcome, res.Attempts, svx.count(), res.Status, tc.want, tc.wantAttempts, last)
			}
			if tc.want != Delivered && (res.Err == nil || res.Body == "") {
				t.Errorf("failure without error or Svix body: %+v", res)
			}
		})
	}
}

// A redirect from Svix is an answer not taken: following it would send the
// token wherever the redirect points.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	var requests sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Store(r.URL.Path, true)
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	res := newTestSender(t, srv.URL, fastPolicy(), time.Second, nil).Send(context.Background(), "app", &testEvent)
	if res.Outcome != Rejected || res.Status != http.StatusTemporaryRedirect || res.Attempts != 1 {
		t.Errorf("result = %+v; want rejected with status 307 after one attempt", res)
	}
	if _, followed := requests.Load("/elsewhere"); followed {
		t.Error("the redirect was followed")
	}
}

func fmtInts(xs []int) string {
	b, _ := json.Marshal(xs)
	return strings.ReplaceAll(string(b), ",", " ")
}

func TestSendHonoursRetryAfter(t *testing.T) {
	svx := &scriptedSvix{statuses: []int{429, 202}, retryAfter: "1"}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	res := newTestSender(t, srv.URL, fastPolicy(), time.Second, nil).Send(context.Background(), "app", &testEvent)
	if res.Outcome != Delivered || res.Attempts != 2 {
		t.Fatalf("result = %+v", res)
	}
	// The backoff alone would wait milliseconds; Svix asked for a second.
	if gap := svx.requests[1].at.Sub(svx.requests[0].at); gap < time.Second {
		t.Errorf("retried after %s, before Retry-After: 1", gap)
	}
}

func TestSendRetryAfterBeyondMaxElapsedGivesUp(t *testing.T) {
	svx := &scriptedSvix{statuses: []int{429}, retryAfter: "60"}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	policy := fastPolicy()
	policy.RetryAfterMax = time.Minute
	policy.MaxElapsed = 500 * time.Millisecond
	res := newTestSender(t, srv.URL, policy, time.Second, nil).Send(context.Background(), "app", &testEvent)
	if res.Outcome != RateLimited || res.Attempts != 1 || res.RetryAfter != time.Minute {
		t.Fatalf("a wait past the budget should stop at once: %+v", res)
	}
}

func TestSendMaxElapsed(t *testing.T) {
	svx := &scriptedSvix{statuses: []int{500}, delay: 50 * time.Millisecond}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	policy := fastPolicy()
	policy.MaxAttempts = 1000
	policy.MaxElapsed = 400 * time.Millisecond
	policy.InitialInterval, policy.MaxInterval = 20*time.Millisecond, 40*time.Millisecond
	res := newTestSender(t, srv.URL, policy, time.Second, nil).Send(context.Background(), "app", &testEvent)
	// Fewer than MaxAttempts: the time budget, not the count, ended it.
	if res.Outcome != Unavailable || res.Attempts < 2 || res.Attempts >= policy.MaxAttempts || svx.count() != res.Attempts {
		t.Fatalf("result = %+v, server saw %d requests", res, svx.count())
	}
}

func TestSendTimeoutAndConnectionErrors(t *testing.T) {
	slow := httptest.NewServer(&scriptedSvix{statuses: []int{202}, delay: time.Second})
	defer slow.Close()
	policy := fastPolicy()
	policy.MaxAttempts = 2
	res := newTestSender(t, slow.URL, policy, 50*time.Millisecond, nil).Send(context.Background(), "app", &testEvent)
	if res.Outcome != Unavailable || res.Attempts != 2 || res.Status != 0 || res.Err == nil {
		t.Errorf("timeouts: %+v", res)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	res = newTestSender(t, closed.URL, policy, time.Second, nil).Send(context.Background(), "app", &testEvent)
	if res.Outcome != Unavailable || res.Attempts != 2 || res.Err == nil {
		t.Errorf("connection refused: %+v", res)
	}
}

func TestSendStopsWhenContextCancelled(t *testing.T) {
	svx := &scriptedSvix{statuses: []int{503}}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	// The backoff after the first 503 is minutes long and well inside the
	// hour-long budget, so Send ends early only if it heeds the context.
	policy := fastPolicy()
	policy.MaxElapsed, policy.MaxAttempts = time.Hour, 5
	policy.InitialInterval, policy.MaxInterval = 10*time.Minute, 10*time.Minute
	metrics := telemetry.NewMetrics("test")
	s, err := New(Config{Token: "sk_test", ServerURL: srv.URL, Timeout: time.Second, Retry: policy,
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Result, 1)
	go func() { done <- s.Send(ctx, "app", &testEvent) }()

	// Cancel once the first attempt is over, when Send is (about to be)
	// waiting out the backoff.
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(t, metrics, "gwook_svix_requests_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first attempt never ended")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case res := <-done:
		t.Fatalf("Send returned before it was cancelled: %+v", res)
	default:
	}
	cancel()
	select {
	case res := <-done:
		if res.Outcome != Unavailable || res.Status != http.StatusServiceUnavailable || res.Attempts != 1 || res.Err == nil {
			t.Errorf("result = %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send kept waiting after its context was cancelled")
	}
	if n := svx.count(); n != 1 {
		t.Errorf("Svix got %d requests, want 1", n)
	}
}

// counterValue returns the sum of the samples of the counter name that m
// serves.
func counterValue(t *testing.T, m *telemetry.Metrics, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	if f, ok := families[name]; ok {
		for _, metric := range f.GetMetric() {
			sum += metric.GetCounter().GetValue()
		}
	}
	return sum
}

func TestRetryAfterAboveTheCapEndsRetriesAtOnce(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   Outcome
	}{
		{http.StatusTooManyRequests, RateLimited},
		{http.StatusServiceUnavailable, Unavailable},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			// Svix asks for 2s, the cap is 1s and the budget 5s: waiting
			// either the cap or Svix's 2s would retry and get the 202.
			svx := &scriptedSvix{statuses: []int{tc.status, 202}, retryAfter: "2"}
			srv := httptest.NewServer(svx)
			defer srv.Close()
			policy := fastPolicy()
			policy.RetryAfterMax = time.Second
			res := newTestSender(t, srv.URL, policy, time.Second, nil).Send(context.Background(), "app", &testEvent)
			if res.Outcome != tc.want || res.Attempts != 1 || svx.count() != 1 || res.Status != tc.status || res.Err == nil {
				t.Errorf("result = %+v, server saw %d requests; want %s after one attempt", res, svx.count(), tc.want)
			}
			if res.RetryAfter != 2*time.Second {
				t.Errorf("RetryAfter = %s, want Svix's own 2s, not the cap", res.RetryAfter)
			}
		})
	}
}

func TestDebugLogsNeverShowTheToken(t *testing.T) {
	srv := httptest.NewServer(&scriptedSvix{statuses: []int{500, 202}})
	defer srv.Close()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Config{Token: "sk_test_secret_token", ServerURL: srv.URL, Debug: true, MaxConnsPerHost: 1,
		Timeout: time.Second, Retry: fastPolicy(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Send(context.Background(), "app", &testEvent); res.Outcome != Delivered {
		t.Fatalf("result = %+v", res)
	}
	out := logs.String()
	if strings.Contains(out, "sk_test_secret_token") {
		t.Fatalf("debug log contains the token:\n%s", out)
	}
	for _, want := range []string{`"svix request"`, `"svix response"`, `[redacted]`, `evt_1`, `"status":500`} {
		if !strings.Contains(out, want) {
			t.Errorf("debug log lacks %s:\n%s", want, out)
		}
	}
}

func TestSDKDefaultClientStillReadsRetryAfter(t *testing.T) {
	svx := &scriptedSvix{statuses: []int{429, 202}, retryAfter: "1"}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	s, err := New(Config{Token: "sk_test", ServerURL: srv.URL, Timeout: time.Second, Retry: fastPolicy(),
		Logger: slog.New(slog.DiscardHandler), SDKDefaultClient: true})
	if err != nil {
		t.Fatal(err)
	}
	res := s.Send(context.Background(), "app", &testEvent)
	if res.Outcome != Delivered || res.Attempts != 2 || res.RetryAfter != time.Second {
		t.Fatalf("result = %+v", res)
	}
}

func TestBudgetEndingMidAttemptKeepsSvixsLastAnswer(t *testing.T) {
	// Svix answers 429 at once, then takes longer than the remaining budget:
	// the send is cut off mid-attempt, but Svix's last word was 429.
	svx := &scriptedSvix{statuses: []int{429}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if svx.count() > 0 {
			svx.mu.Lock()
			svx.delay = time.Second
			svx.mu.Unlock()
		}
		svx.ServeHTTP(w, r)
	}))
	defer srv.Close()
	policy := fastPolicy()
	policy.MaxElapsed = 300 * time.Millisecond
	res := newTestSender(t, srv.URL, policy, 5*time.Second, nil).Send(context.Background(), "app", &testEvent)
	if res.Outcome != RateLimited || res.Status != http.StatusTooManyRequests || res.Attempts != 2 {
		t.Fatalf("result = %+v", res)
	}
}
