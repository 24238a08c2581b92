package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

func TestReadBody(t *testing.T) {
	const limit = 16
	for _, tc := range []struct {
		name          string
		body          io.Reader
		contentLength int64
		want          string
		tooLarge      bool
		fails         bool
	}{
		{name: "announced length", body: strings.NewReader(`{"id":"e1"}`), contentLength: 11, want: `{"id":"e1"}`},
		{name: "exactly the limit", body: strings.NewReader(strings.Repeat("a", limit)), contentLength: limit, want: strings.Repeat("a", limit)},
		{name: "chunked", body: io.MultiReader(strings.NewReader(`{"id"`), strings.NewReader(`:"e1"}`)), contentLength: -1, want: `{"id":"e1"}`},
		{name: "chunked over the limit", body: strings.NewReader(strings.Repeat("a", limit+1)), contentLength: -1, tooLarge: true},
		{name: "announced over the limit", body: strings.NewReader(strings.Repeat("a", limit+1)), contentLength: limit + 1, tooLarge: true},
		{name: "shorter than announced", body: strings.NewReader(`{"id"`), contentLength: 11, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/notifications", tc.body)
			r.ContentLength = tc.contentLength
			got, err := readBody(httptest.NewRecorder(), r, limit)
			var maxErr *http.MaxBytesError
			switch {
			case tc.tooLarge:
				if !errors.As(err, &maxErr) {
					t.Fatalf("err = %v, want *http.MaxBytesError", err)
				}
			case tc.fails:
				if err == nil || errors.As(err, &maxErr) {
					t.Fatalf("err = %v, want a read error", err)
				}
			case err != nil || string(got) != tc.want:
				t.Fatalf("readBody = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// refuseReads fails the test when the body is read.
type refuseReads struct{ t *testing.T }

func (r refuseReads) Read([]byte) (int, error) {
	r.t.Error("the body was read")
	return 0, io.EOF
}

func TestBodyAnnouncedOverTheLimitIsNotRead(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/notifications", refuseReads{t})
	r.ContentLength = 1 << 30
	rec := httptest.NewRecorder()
	_, err := readBody(rec, r, 1<<20)
	var maxErr *http.MaxBytesError
	if !errors.As(err, &maxErr) || maxErr.Limit != 1<<20 {
		t.Fatalf("err = %v, want *http.MaxBytesError with the limit", err)
	}
	if rec.Header().Get("Connection") != "close" {
		t.Error("the connection is kept, to be drained")
	}
}

// trickle returns n bytes of an announced body, then the end of the
// connection.
type trickle struct{ n int }

func (t *trickle) Read(p []byte) (int, error) {
	if t.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), t.n, 100)
	for i := range k {
		p[i] = 'x'
	}
	t.n -= k
	return k, nil
}

func TestBodyBufferGrowsWithWhatArrives(t *testing.T) {
	const announced = 16 << 20
	read := func() {
		r := httptest.NewRequest(http.MethodPost, "/notifications", &trickle{n: 1000})
		r.ContentLength = announced
		if _, err := readBody(httptest.NewRecorder(), r, 64<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	}
	read() // warm up whatever is allocated once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const requests = 10
	for range requests {
		read()
	}
	runtime.ReadMemStats(&after)
	// Each request sent 1,000 bytes of the 16 MiB it announced.
	if perRequest := (after.TotalAlloc - before.TotalAlloc) / requests; perRequest > 64<<10 {
		t.Errorf("%d bytes allocated per request that sent 1000 bytes and announced %d", perRequest, announced)
	}
}

func TestBodyThatDoesNotArriveInTime(t *testing.T) {
	h := scopeRequests(discardLogger, nil)(&notifications{maxBodyBytes: 1 << 20})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Ten of the hundred bytes announced, and then nothing.
	if _, err := io.WriteString(conn, "POST /notifications HTTP/1.1\r\nHost: gwook\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var p Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Type != problemTypeBase+"request_timeout" || p.RequestID == "" || strings.Contains(p.Detail, "i/o timeout") {
		t.Errorf("problem %+v", p)
	}
}

// fixedBackend answers every event with sent.
type fixedBackend struct{ sent pipeline.Sent }

func (b fixedBackend) Send(context.Context, string, *event.Notification) pipeline.Sent { return b.sent }

// answer posts one valid event to a router whose pipeline's backend
// answers sent, and returns the status and the decoded body.
func answer(t *testing.T, sent pipeline.Sent) (int, map[string]any) {
	t.Helper()
	p := pipeline.New(pipeline.Config{Backend: fixedBackend{sent}, Logger: discardLogger})
	router := NewRouter(Deps{Pipeline: p, Health: NewHealth(0, discardLogger), Auth: &Authenticator{Username: "u", Password: "p"},
		MaxBodyBytes: 1 << 20, MaxEventBytes: 1 << 20, InFlight: InFlightLimit{MaxBodyBytes: 1 << 20}, Logger: discardLogger})
	body := `{"id":"evt_1","type":"user.signed_up","source":"accounts","project":"acme","user_id":"usr_1",` +
		`"time":"2026-03-02T08:15:42Z","data":{}}`
	req := httptest.NewRequest(http.MethodPost, "/notifications", strings.NewReader(body))
	req.SetBasicAuth("u", "p")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	router.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer %d %q: %v", w.Code, w.Body, err)
	}
	return w.Code, out
}

// TestForwardedAnswerNamesTheMessage checks that a forwarded event's answer
// carries the backend's message id as message_id under either backend,
// and again as svix_message_id under Svix only.
func TestForwardedAnswerNamesTheMessage(t *testing.T) {
	for _, tc := range []struct {
		backend pipeline.BackendName
		svixID  any
	}{
		{pipeline.BackendSvix, "msg_1"},
		{pipeline.BackendDirect, nil},
	} {
		t.Run(string(tc.backend), func(t *testing.T) {
			status, out := answer(t, pipeline.Sent{Backend: tc.backend, Outcome: pipeline.Forwarded, MessageID: "msg_1"})
			if status != http.StatusAccepted || out["outcome"] != "forwarded" || out["message_id"] != "msg_1" ||
				out["svix_message_id"] != tc.svixID {
				t.Errorf("%d %v, want 202 forwarded with message_id msg_1 and svix_message_id %v", status, out, tc.svixID)
			}
		})
	}
}

// TestBackendFailureLayer checks which side a problem blames for a failure
// of the backend: svix for Svix, gwook for Gwook's own queue, whose
// database is Gwook's; and that the detail of a failure of the queue does
// not speak of Svix.
func TestBackendFailureLayer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sent   pipeline.Sent
		status int
		layer  Layer
		detail string
	}{
		{"svix unavailable", pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Unavailable, Status: 503, Attempts: 5,
			Err: errors.New("503")}, http.StatusInternalServerError, LayerSvix, "Svix answered 503 to the last of 5 attempts"},
		{"svix rejected", pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Rejected, Status: 422, Attempts: 1,
			Err: errors.New("422")}, http.StatusUnprocessableEntity, LayerSvix, "Svix refused the message with status 422"},
		{"svix duplicate", pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Duplicate, Status: 409, Attempts: 1,
			Err: errors.New("409")}, http.StatusConflict, LayerSvix, "Svix already has a message with this event id"},
		{"direct unavailable", pipeline.Sent{Backend: pipeline.BackendDirect, Outcome: pipeline.Unavailable,
			Err: errors.New("database is locked")}, http.StatusInternalServerError, LayerGwook, "the delivery queue (Gwook's database) did not store the event"},
		{"direct rejected", pipeline.Sent{Backend: pipeline.BackendDirect, Outcome: pipeline.Rejected,
			Err: errors.New("no application")}, http.StatusUnprocessableEntity, LayerGwook, "the application no longer exists, so no endpoint receives its events"},
		{"direct duplicate", pipeline.Sent{Backend: pipeline.BackendDirect, Outcome: pipeline.Duplicate, MessageID: "msg_0",
			Err: errors.New("duplicate")}, http.StatusConflict, LayerGwook, "the application already has a message with this event id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := answer(t, tc.sent)
			if status != tc.status || out["layer"] != string(tc.layer) || out["outcome"] != string(tc.sent.Outcome) || out["detail"] != tc.detail {
				t.Errorf("%d %v, want %d with layer %s and detail %q", status, out, tc.status, tc.layer, tc.detail)
			}
			if _, ok := out["svix_status"]; ok != (tc.sent.Backend == pipeline.BackendSvix) {
				t.Errorf("svix_status in %v: %v, want it under Svix only", out, ok)
			}
		})
	}
}
