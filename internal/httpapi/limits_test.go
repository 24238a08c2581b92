package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/telemetry"
)

func scrape(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestInFlightLimitShedsBeforeReadingTheBody(t *testing.T) {
	const limit = 2
	metrics := telemetry.NewMetrics("test")
	entered, release := make(chan struct{}), make(chan struct{})
	busy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusAccepted)
	})
	h := scopeRequests(discardLogger, metrics)(newInFlight(InFlightLimit{Requests: limit, MaxBodyBytes: 1 << 20}, metrics).bound(refuseOverloaded)(busy))

	var wg sync.WaitGroup
	codes := make(chan int, limit)
	for range limit {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/notifications", strings.NewReader("{}")))
			codes <- rec.Code
		})
	}
	for range limit {
		<-entered
	}

	// Every slot is taken: the next request is turned away unread.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/notifications", refuseReads{t}))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" ||
		rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, Retry-After %q, Content-Type %q", rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != problemTypeBase+OutcomeOverloaded || p.Outcome != OutcomeOverloaded || p.RequestID == "" {
		t.Errorf("problem %+v", p)
	}
	if !strings.Contains(scrape(t, metrics), "gwook_requests_shed_total 1") {
		t.Error("the shed request was not counted")
	}

	close(release)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusAccepted {
			t.Errorf("a request within the limit got %d", code)
		}
	}
	// The slots are free again.
	go func() { <-entered }()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/notifications", strings.NewReader("{}")))
	if rec.Code != http.StatusAccepted {
		t.Errorf("after the others ended: %d", rec.Code)
	}
}

func TestInFlightBytesWeighEachBody(t *testing.T) {
	metrics := telemetry.NewMetrics("test")
	entered, release := make(chan struct{}), make(chan struct{})
	h := newInFlight(InFlightLimit{Requests: 10, Bytes: 100, MaxBodyBytes: 100}, metrics).bound(refuseOverloaded)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			w.WriteHeader(http.StatusAccepted)
		}))
	send := func(body string, chunked bool) <-chan int {
		code := make(chan int, 1)
		r := httptest.NewRequest(http.MethodPost, "/notifications", strings.NewReader(body))
		if chunked {
			r.ContentLength = -1
		}
		if strings.HasPrefix(body, "\x1f\x8b") {
			r.Header.Set("Content-Encoding", "gzip")
		}
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			code <- rec.Code
		}()
		return code
	}
	shedNow := func(name string, code <-chan int) {
		t.Helper()
		select {
		case c := <-code:
			if c != http.StatusServiceUnavailable {
				t.Errorf("%s: %d, want 503", name, c)
			}
		case <-entered:
			t.Errorf("%s was let in", name)
			release <- struct{}{}
		}
	}

	// letIn waits for a request to be let in, failing the test rather than
	// hanging when none is.
	letIn := func(name string) {
		t.Helper()
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was not let in", name)
		}
	}
	first := send(strings.Repeat("a", 60), false)
	letIn("a body of 60 bytes") // 60 of 100 bytes held
	shedNow("a second body of 60 bytes", send(strings.Repeat("b", 60), false))
	shedNow("a body of unknown length (weighed as MaxBodyBytes)", send("{}", true))
	shedNow("a compressed body (weighed as MaxBodyBytes, what it may grow to)", send("\x1f\x8b", false))
	small := send(strings.Repeat("c", 40), false)
	letIn("a body of 40 bytes") // 100 of 100 held
	close(release)
	for _, code := range []<-chan int{first, small} {
		if c := <-code; c != http.StatusAccepted {
			t.Errorf("a request within the limit got %d", c)
		}
	}
	if !strings.Contains(scrape(t, metrics), "gwook_requests_shed_total 3") {
		t.Error("want every turned-away request counted")
	}
	// Everything was given back: a body of the whole budget gets in.
	go func() { <-entered }()
	if c := <-send(strings.Repeat("d", 100), false); c != http.StatusAccepted {
		t.Errorf("after the others ended: %d", c)
	}
}

func TestHeadersOverTheLimit(t *testing.T) {
	const limit = 4096
	h := scopeRequests(discardLogger, nil)(limitHeaders(limit)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	req := func(header int) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/notifications", nil)
		r.Header.Set("X-Request-Id", "req-431")
		r.Header.Set("X-Padding", strings.Repeat("p", header))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := req(limit - 200); rec.Code != http.StatusNoContent {
		t.Errorf("headers within the limit: %d", rec.Code)
	}
	rec := req(limit)
	if rec.Code != http.StatusRequestHeaderFieldsTooLarge || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.RequestID != "req-431" || p.Type != problemTypeBase+"headers_too_large" || !strings.Contains(p.Detail, "4096") {
		t.Errorf("problem %+v", p)
	}
}

func TestMethodNotAllowedNamesTheAllowedMethods(t *testing.T) {
	router := NewRouter(Deps{Health: NewHealth(0, discardLogger), Auth: &Authenticator{}, Logger: discardLogger})
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/health", "GET, HEAD"},
		{http.MethodDelete, "/ready", "GET, HEAD"},
		{http.MethodGet, "/notifications", "POST"},
		{http.MethodPut, "/notifications", "POST"},
	} {
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tc.allow ||
			rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d, Allow %q, Content-Type %q; want 405, Allow %q", tc.method, tc.path, rec.Code,
				rec.Header().Get("Allow"), rec.Header().Get("Content-Type"), tc.allow)
		}
	}
}
