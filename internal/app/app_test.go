package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/httpapi"
	"github.com/gwook/gwook/test/googletoken"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/svixserver"
)

func problemOf(t *testing.T, r gwooktest.Reply) httpapi.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, body %s", ct, r.Body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	return p
}

func examples(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("../../test/events/event-[0-9]*.json")
	if err != nil || len(paths) < 5 {
		t.Fatalf("want at least five example events, found %d (%v)", len(paths), err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

type eventFields struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	UserID string `json:"user_id"`
}

func fieldsOf(t *testing.T, b []byte) eventFields {
	t.Helper()
	var f eventFields
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEveryExampleReachesSvix(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		appID func(eventFields) string
		send  func(*gwooktest.Gwook, testing.TB, []byte) gwooktest.Reply
		want  int
	}{
		{"direct, application from user_id", nil, func(f eventFields) string { return f.UserID }, (*gwooktest.Gwook).Direct, http.StatusAccepted},
		{"push, application from user_id", nil, func(f eventFields) string { return f.UserID }, (*gwooktest.Gwook).Push, http.StatusOK},
		{"direct, fixed application", map[string]string{"SVIX_APPLICATION_ID": "app_fixed"}, func(eventFields) string { return "app_fixed" }, (*gwooktest.Gwook).Direct, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := gwooktest.Start(t, tc.env, app.Options{})
			for name, body := range examples(t) {
				f := fieldsOf(t, body)
				r := tc.send(h, t, body)
				if r.Status != tc.want {
					t.Fatalf("%s: status %d, body %s", name, r.Status, r.Body)
				}
				msgs := h.Svix.MessagesFor(f.ID)
				if len(msgs) != 1 {
					t.Fatalf("%s: Svix has %d messages for %s", name, len(msgs), f.ID)
				}
				m := msgs[0]
				if m.AppID != tc.appID(f) || m.EventType != f.Type || m.EventID != f.ID || m.IdempotencyKey != f.ID {
					t.Errorf("%s: message %+v", name, m)
				}
				if !bytes.Equal(m.Payload, body) {
					t.Errorf("%s: payload is not the event as sent:\n got %s\nwant %s", name, m.Payload, body)
				}
				var ok struct {
					MessageID     string `json:"message_id"`
					SvixMessageID string `json:"svix_message_id"`
				}
				if err := json.Unmarshal(r.Body, &ok); err != nil || ok.MessageID != m.MsgID || ok.SvixMessageID != m.MsgID {
					t.Errorf("%s: answer %s, want Svix's message id %s as message_id and svix_message_id", name, r.Body, m.MsgID)
				}
			}
		})
	}
}

func TestUnauthorized(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	body := examples(t)["event-01.json"]
	for _, tc := range []struct {
		name   string
		target string
		header http.Header
	}{
		{"no credentials", "/notifications", nil},
		{"wrong password", "/notifications", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:guess"))}}},
		{"wrong push token", "/notifications?token=guess", nil},
		{"bearer without OIDC configured", "/notifications", http.Header{"Authorization": {"Bearer abc"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Post(t, tc.target, tc.header, body)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d", r.Status)
			}
			if p := problemOf(t, r); p.Layer != httpapi.LayerGwook {
				t.Errorf("problem %+v", p)
			}
			// Basic as configured, and Bearer for API tokens.
			if got := r.Header.Get("WWW-Authenticate"); got != `Basic realm="gwook", charset="UTF-8", Bearer` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
	if n := h.Svix.Attempts(); n != 0 {
		t.Errorf("Svix got %d requests from unauthenticated calls", n)
	}
}

func TestPushWithOIDC(t *testing.T) {
	issuer := googletoken.NewIssuer(t)
	aud, sa := "https://gwook.example.com/notifications", "push@proj.iam.gserviceaccount.com"
	h := gwooktest.Start(t, map[string]string{"PUBSUB_PUSH_AUDIENCE": aud, "PUBSUB_PUSH_SERVICE_ACCOUNT": sa}, app.Options{PushKeys: issuer.KeySet()})
	body := examples(t)["event-02.json"]
	env := `{"message":{"data":"` + base64.StdEncoding.EncodeToString(body) + `","message_id":"m-9"},"subscription":"projects/p/subscriptions/s"}`
	token := issuer.Sign(t, googletoken.PushClaims(aud, sa))
	r := h.Post(t, "/notifications", http.Header{"Authorization": {"Bearer " + token}}, []byte(env))
	if r.Status != http.StatusOK || len(h.Svix.MessagesFor(fieldsOf(t, body).ID)) != 1 {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
	if strings.Contains(h.Logs.String(), token) {
		t.Error("the OIDC token reached the logs")
	}
}

func TestInvalidEventListsEveryFieldError(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	body := []byte(`{"id":"has space","type":"","source":"s","project":"p","time":"yesterday","data":[1,2]}`)
	r := h.Direct(t, body)
	if r.Status != http.StatusBadRequest {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
	p := problemOf(t, r)
	got := map[string]string{}
	for _, e := range p.Errors {
		got[e.Field] = e.Rule
	}
	want := map[string]string{"id": "svixid", "type": "required", "user_id": "required", "time": "rfc3339", "data": "jsonobject"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("errors = %v, want %v", got, want)
	}
	if p.Layer != httpapi.LayerGwook || p.Outcome != "invalid" || p.DeadLettered {
		t.Errorf("problem %+v", p)
	}
	// Pushed, the same event is refused so Pub/Sub keeps it.
	if r := h.Push(t, body); r.Status != http.StatusBadRequest {
		t.Errorf("push status %d", r.Status)
	}
	if n := h.Svix.Attempts(); n != 0 {
		t.Errorf("Svix got %d requests for invalid events", n)
	}
}

func TestUserIDMustBeAnApplicationUID(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	body := bytes.Replace(examples(t)["event-01.json"], []byte(`"user_id": "`), []byte(`"user_id": "not/a uid `), 1)
	body = bytes.Replace(body, []byte(`"user_id":"`), []byte(`"user_id":"not/a uid `), 1)
	r := h.Direct(t, body)
	if r.Status != http.StatusBadRequest {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
	if p := problemOf(t, r); len(p.Errors) != 1 || p.Errors[0].Field != "user_id" {
		t.Errorf("errors %+v", p.Errors)
	}
	// With a fixed application, user_id is only data.
	h = gwooktest.Start(t, map[string]string{"SVIX_APPLICATION_ID": "app_fixed"}, app.Options{})
	if r := h.Direct(t, body); r.Status != http.StatusAccepted {
		t.Errorf("fixed application: status %d body %s", r.Status, r.Body)
	}
}

func TestSvixConflict(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0"}, app.Options{}) // Svix's own rules only
	body := examples(t)["event-03.json"]
	id := fieldsOf(t, body).ID
	// The same eventId under another idempotency key: Svix answers 409.
	first := h.Direct(t, body)
	if first.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	conflictWith := func(t *testing.T) {
		t.Helper()
		svx, err := http.NewRequest(http.MethodPost, h.Svix.URL()+"/api/v1/app/"+fieldsOf(t, body).UserID+"/msg",
			strings.NewReader(`{"eventType":"x","eventId":"`+id+`","payload":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		svx.Header.Set("Authorization", "Bearer x")
		svx.Header.Set("Content-Type", "application/json")
		svx.Header.Set("idempotency-key", "other-key")
		resp, err := http.DefaultClient.Do(svx)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("test server: repeated eventId under a new key gave %d", resp.StatusCode)
		}
	}
	conflictWith(t)

	// A redelivery with the same idempotency key is replayed by Svix: 202 again, one message.
	if r := h.Direct(t, body); r.Status != http.StatusAccepted {
		t.Errorf("redelivery: %d %s", r.Status, r.Body)
	}
	if n := len(h.Svix.MessagesFor(id)); n != 1 {
		t.Errorf("Svix stored %d messages", n)
	}

	// Svix answering 409 to Gwook: the producer gets 409, a push gets 200.
	h.Svix.Script(svixserver.Response{Status: http.StatusConflict}, svixserver.Response{Status: http.StatusConflict})
	r := h.Direct(t, body)
	if r.Status != http.StatusConflict {
		t.Fatalf("producer: %d %s", r.Status, r.Body)
	}
	if p := problemOf(t, r); p.Layer != httpapi.LayerSvix || p.SvixStatus != http.StatusConflict || p.Outcome != "duplicate" {
		t.Errorf("problem %+v", p)
	}
	if r := h.Push(t, body); r.Status != http.StatusOK {
		t.Errorf("push: %d %s", r.Status, r.Body)
	}
}

func TestSvixRateLimitedTwiceThenAccepted(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	body := examples(t)["event-04.json"]
	h.Svix.Script(svixserver.Response{Status: 429, RetryAfter: "1"}, svixserver.Response{Status: 429})
	r := h.Direct(t, body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
	var ok struct {
		Outcome  string `json:"outcome"`
		Attempts int    `json:"attempts"`
	}
	if err := json.Unmarshal(r.Body, &ok); err != nil || ok.Outcome != "forwarded" || ok.Attempts != 3 {
		t.Errorf("body %s", r.Body)
	}
	if n := len(h.Svix.MessagesFor(fieldsOf(t, body).ID)); n != 1 || h.Svix.Attempts() != 3 {
		t.Errorf("messages %d, attempts %d", n, h.Svix.Attempts())
	}
}

func TestSvixFailingForever(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{"SVIX_RETRY_MAX_ELAPSED": "1s", "SVIX_RETRY_MAX_ATTEMPTS": "100"}, app.Options{})
	body := examples(t)["event-05.json"]
	for _, tc := range []struct {
		name       string
		svix       svixserver.Response
		send       func(*gwooktest.Gwook, testing.TB, []byte) gwooktest.Reply
		wantStatus int
		outcome    string
		attempts   int // at least
	}{
		{"500 to a producer", svixserver.Response{Status: 500}, (*gwooktest.Gwook).Direct, 500, "unavailable", 2},
		{"500 to a push", svixserver.Response{Status: 500}, (*gwooktest.Gwook).Push, 503, "unavailable", 2},
		{"429 to a producer", svixserver.Response{Status: 429}, (*gwooktest.Gwook).Direct, 429, "rate_limited", 2},
		{"429 to a push", svixserver.Response{Status: 429}, (*gwooktest.Gwook).Push, 429, "rate_limited", 2},
		// Waiting 1s would pass SVIX_RETRY_MAX_ELAPSED: give up at once and pass Retry-After on.
		{"429 with a Retry-After past the budget", svixserver.Response{Status: 429, RetryAfter: "1"}, (*gwooktest.Gwook).Direct, 429, "rate_limited", 1},
		{"422 to a producer", svixserver.Response{Status: 422}, (*gwooktest.Gwook).Direct, 422, "rejected", 1},
		{"422 to a push", svixserver.Response{Status: 422}, (*gwooktest.Gwook).Push, 400, "rejected", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.Svix.SetDefault(tc.svix)
			defer h.Svix.SetDefault(svixserver.Response{})
			started := time.Now()
			r := tc.send(h, t, body)
			elapsed := time.Since(started)
			if r.Status != tc.wantStatus {
				t.Fatalf("status %d body %s", r.Status, r.Body)
			}
			p := problemOf(t, r)
			if p.Layer != httpapi.LayerSvix || p.SvixStatus != tc.svix.Status || p.Outcome != tc.outcome || p.Attempts < 1 || p.DeadLettered {
				t.Errorf("problem %+v", p)
			}
			if p.Attempts < tc.attempts {
				t.Errorf("attempts %d, want at least %d", p.Attempts, tc.attempts)
			}
			if tc.wantStatus == 429 && tc.svix.RetryAfter != "" && r.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q not passed on", r.Header.Get("Retry-After"))
			}
			// Bounded by SVIX_RETRY_MAX_ELAPSED (1s) plus slack for a loaded machine.
			if elapsed > 3*time.Second {
				t.Errorf("answered after %s", elapsed)
			}
		})
	}
}

func TestFilteredEventsAreNotSent(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{"FILTER_EXCLUDE_TYPES": "internal.*,user.deleted"}, app.Options{})
	body := []byte(`{"id":"evt_f1","type":"internal.audit","source":"s","project":"p","user_id":"u1","time":"2026-01-02T15:04:05Z","data":{}}`)
	r := h.Direct(t, body)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"outcome":"filtered"`) {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
	if r := h.Push(t, body); r.Status != http.StatusOK {
		t.Errorf("push: status %d", r.Status)
	}
	if n := h.Svix.Attempts(); n != 0 {
		t.Errorf("Svix got %d requests", n)
	}
}

func TestOversizedBody(t *testing.T) {
	const limit = 300_000
	h := gwooktest.Start(t, map[string]string{"MAX_BODY_BYTES": fmt.Sprint(limit), "MAX_EVENT_BYTES": "1024"}, app.Options{})
	body := []byte(`{"id":"evt_big","type":"t","source":"s","project":"p","user_id":"u","time":"2026-01-02T15:04:05Z","data":{"pad":"` + strings.Repeat("x", limit) + `"}}`)
	for name, send := range map[string]func(*gwooktest.Gwook, testing.TB, []byte) gwooktest.Reply{
		"producer": (*gwooktest.Gwook).Direct, "push": (*gwooktest.Gwook).Push,
	} {
		// Too large for any retry to help: 413, never a 503 to redeliver.
		r := send(h, t, body)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: status %d", name, r.Status)
		}
		if p := problemOf(t, r); p.Type != "urn:gwook:problem:body_too_large" || !strings.Contains(p.Detail, fmt.Sprint(limit)) {
			t.Errorf("%s: problem %+v", name, p)
		}
	}
}

func TestHealthAndReady(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	get := func(path string) (int, string) {
		resp, err := http.Get(h.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/health: %d %s", code, body)
	}
	if code, body := get("/ready"); code != 200 || !strings.Contains(body, `"svix":"ok"`) {
		t.Errorf("/ready: %d %s", code, body)
	}

	// Svix unreachable: /ready names it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	down := gwooktest.Start(t, map[string]string{"SVIX_SERVER_URL": deadURL}, app.Options{})
	h = down
	// Why it is down is logged, not served: /ready is unauthenticated.
	if code, body := get("/ready"); code != 503 || !strings.Contains(body, `"svix":"down"`) || strings.Contains(body, ln.Addr().String()) {
		t.Errorf("/ready with Svix down: %d %s", code, body)
	}
	if logged := down.Logs.String(); !strings.Contains(logged, `"msg":"readiness check failed","check":"svix"`) ||
		!strings.Contains(logged, ln.Addr().String()) {
		t.Errorf("the failed check was not logged with its error:\n%s", logged)
	}
	if code, _ := get("/health"); code != 200 {
		t.Errorf("/health must not depend on Svix: %d", code)
	}
}

func TestRequestLogLine(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	body := examples(t)["event-01.json"]
	req, _ := http.NewRequest(http.MethodPost, h.URL+"/notifications", bytes.NewReader(body))
	req.SetBasicAuth(gwooktest.Username, gwooktest.Password)
	req.Header.Set("X-Request-Id", "req-abc.123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "req-abc.123" {
		t.Errorf("request id not returned: %q", resp.Header.Get("X-Request-Id"))
	}
	f := fieldsOf(t, body)
	var line map[string]any
	for _, l := range strings.Split(h.Logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, "req-abc.123") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil {
		t.Fatalf("no request log line in:\n%s", h.Logs.String())
	}
	for k, want := range map[string]any{"outcome": "forwarded", "event_id": f.ID, "event_type": f.Type, "application": f.UserID,
		"svix_status": float64(202), "attempts": float64(1), "status": float64(202), "entry": "direct", "caller": "basic"} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}
	if id, _ := line["message_id"].(string); id == "" {
		t.Errorf("log line message_id = %v, want Svix's message id", line["message_id"])
	}
	if ms, ok := line["duration_ms"].(float64); !ok || ms <= 0 {
		t.Errorf("log line duration_ms = %v, want milliseconds", line["duration_ms"])
	}
	if strings.Contains(h.Logs.String(), `"data"`) {
		t.Error("payload reached the logs")
	}
}

func TestHostileHeaders(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	body := examples(t)["event-01.json"]
	req, _ := http.NewRequest(http.MethodPost, h.URL+"/notifications", bytes.NewReader(body))
	req.SetBasicAuth(gwooktest.Username, gwooktest.Password)
	req.Header.Set("X-Request-Id", strings.Repeat("A", 300)+`"}{"forged":true`)
	req.Header.Set(httpIngestHeaderDeliveryAttempt, "not-a-number")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if id := resp.Header.Get("X-Request-Id"); len(id) != 24 {
		t.Errorf("hostile request id was kept: %q", id)
	}
	if strings.Contains(h.Logs.String(), "forged") {
		t.Error("hostile header reached the logs")
	}
}

const httpIngestHeaderDeliveryAttempt = "X-Goog-Pubsub-Delivery-Attempt"

func TestGracefulShutdown(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{"HTTP_SERVER_DRAIN_DELAY": "300ms"}, app.Options{})
	h.Svix.SetDefault(svixserver.Response{Delay: 500 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.App.Serve(ctx, ln) }()

	// A request in flight when the signal comes must finish.
	inflight := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/notifications", bytes.NewReader(examples(t)["event-01.json"]))
		req.SetBasicAuth(gwooktest.Username, gwooktest.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- 0
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.Svix.Attempts() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()

	// While draining, /health answers 503.
	sawDraining := false
	for time.Now().Before(deadline) && !sawDraining {
		resp, err := http.Get(base + "/health")
		if err != nil {
			break
		}
		sawDraining = resp.StatusCode == http.StatusServiceUnavailable
		resp.Body.Close()
	}
	if !sawDraining {
		t.Error("/health never answered 503 while draining")
	}
	if code := <-inflight; code != http.StatusAccepted {
		t.Errorf("in-flight request got %d", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestHugeInvalidFieldsAreNotEchoed(t *testing.T) {
	h := gwooktest.Start(t, nil, app.Options{})
	huge := strings.Repeat("x", 512<<10) // within MAX_EVENT_BYTES
	r := h.Direct(t, []byte(`{"id":"`+huge+`","type":"t","source":"s","project":"p","user_id":"u","time":"2026-01-02T15:04:05Z","data":{}}`))
	if r.Status != http.StatusBadRequest {
		t.Fatalf("status %d", r.Status)
	}
	if len(r.Body) > 4096 {
		t.Errorf("answer is %d bytes: the id was echoed whole", len(r.Body))
	}
	if n := len(h.Logs.String()); n > 64<<10 {
		t.Errorf("logs are %d bytes: the id was logged whole", n)
	}
}

// answer is what a client got, or the error it met.
type answer struct {
	status int
	body   []byte
	err    error
}

// postTo sends body to url with header and reads the whole answer; it
// returns errors instead of failing, so goroutines can use it.
func postTo(url string, header http.Header, body []byte) answer {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, err: err}
}

func basicAuth() http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(gwooktest.Username+":"+gwooktest.Password)))
	return h
}

func pushEnvelope(body []byte) []byte {
	return fmt.Appendf(nil, `{"message":{"data":%q,"messageId":"m-%d"},"subscription":"projects/p/subscriptions/gwook"}`,
		base64.StdEncoding.EncodeToString(body), time.Now().UnixNano())
}

// TestSIGTERMDuringSvixBrownout sends SIGTERM while Svix answers every
// request slowly with 503, so requests are in the middle of their retries:
// they keep going through the drain, get their real answer once Svix
// recovers, and Serve returns nil (gwook exits 0).
func TestSIGTERMDuringSvixBrownout(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{
		"HTTP_SERVER_DRAIN_DELAY":     "200ms",
		"SVIX_RETRY_MAX_ELAPSED":      "20s",
		"SVIX_RETRY_MAX_ATTEMPTS":     "1000",
		"SVIX_RETRY_INITIAL_INTERVAL": "20ms",
		"SVIX_RETRY_MAX_INTERVAL":     "50ms",
	}, app.Options{})
	h.Svix.SetDefault(svixserver.Response{Status: http.StatusServiceUnavailable, Delay: 20 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- h.App.Serve(ctx, ln) }()

	ex := examples(t)
	direct, pushed := ex["event-01.json"], ex["event-02.json"]
	directAnswer, pushAnswer := make(chan answer, 1), make(chan answer, 1)
	go func() { directAnswer <- postTo(base+"/notifications", basicAuth(), direct) }()
	go func() {
		pushAnswer <- postTo(base+"/notifications?token="+gwooktest.PushToken,
			http.Header{"Content-Type": {"application/json"}}, pushEnvelope(pushed))
	}()

	// Both are retrying: each has had at least two 503s.
	deadline := time.Now().Add(10 * time.Second)
	for h.Svix.Tally().ByStatus[http.StatusServiceUnavailable] < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("requests did not reach Svix: %+v", h.Svix.Tally())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	// Svix still fails through the drain delay and until the listener has
	// closed (the graceful shutdown proper); only then does it recover.
	for !draining(base) {
		if time.Now().After(deadline) {
			t.Fatal("/health never answered 503 after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for listening(ln.Addr().String()) {
		if time.Now().After(deadline) {
			t.Fatal("the listener never closed after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.Svix.SetDefault(svixserver.Response{})

	if a := <-directAnswer; a.err != nil || a.status != http.StatusAccepted || !strings.Contains(string(a.body), `"outcome":"forwarded"`) {
		t.Errorf("producer's request in flight: %d %s %v", a.status, a.body, a.err)
	} else if a := attemptsIn(t, a.body); a < 3 {
		t.Errorf("the producer's event took %d attempts; it was not retrying across the signal", a)
	}
	if a := <-pushAnswer; a.err != nil || a.status != http.StatusOK {
		t.Errorf("push in flight: %d %s %v", a.status, a.body, a.err)
	}
	for _, body := range [][]byte{direct, pushed} {
		if n := len(h.Svix.MessagesFor(fieldsOf(t, body).ID)); n != 1 {
			t.Errorf("Svix has %d messages for %s", n, fieldsOf(t, body).ID)
		}
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil (exit 0)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func listening(addr string) bool {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func draining(base string) bool {
	resp, err := http.Get(base + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusServiceUnavailable
}

func attemptsIn(t *testing.T, body []byte) int {
	t.Helper()
	var ok struct {
		Attempts int `json:"attempts"`
	}
	if err := json.Unmarshal(body, &ok); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	return ok.Attempts
}

// TestGracefulTimeoutClosesWhatIsLeft: a client still sending its body
// when HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT passes is cut off, and Serve
// returns an error (gwook exits 1).
func TestGracefulTimeoutClosesWhatIsLeft(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{
		"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT": "300ms",
		"SVIX_RETRY_MAX_ELAPSED":                "100ms",
		"DEDUP_TTL":                             "0",
	}, app.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- h.App.Serve(ctx, ln) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers announce 1000 bytes; only one ever comes. The server's
	// "100 Continue" says that the handler has started reading the body.
	if _, err := fmt.Fprintf(conn, "POST /notifications HTTP/1.1\r\nHost: gwook\r\nAuthorization: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n", basicAuth().Get("Authorization")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue, got %q, %v", status, err)
	}
	if _, err := io.WriteString(conn, "{"); err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case err := <-served:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT (300ms)") {
			t.Errorf("Serve = %v, want the graceful timeout named", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
	// The connection was closed, not left to the read timeout.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Errorf("the slow client's connection is still open: %v", err)
	}
}

// TestRetryAfterAboveTheCapIsPassedOn: Svix asks to wait longer than
// SVIX_RETRY_AFTER_MAX, so Gwook stops at once and the producer's 429
// carries Svix's own Retry-After, not the cap.
func TestRetryAfterAboveTheCapIsPassedOn(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{"SVIX_RETRY_AFTER_MAX": "2s", "DEDUP_TTL": "0"}, app.Options{})
	h.Svix.SetDefault(svixserver.Response{Status: http.StatusTooManyRequests, RetryAfter: "120"})
	r := h.Direct(t, examples(t)["event-05.json"])
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "120" {
		t.Fatalf("status %d, Retry-After %q, want 429 with Svix's 120: %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if p := problemOf(t, r); p.Attempts != 1 || p.Outcome != "rate_limited" || h.Svix.Attempts() != 1 {
		t.Errorf("problem %+v after %d requests to Svix, want rate_limited after one", p, h.Svix.Attempts())
	}
}
