package app_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// bigEvent is a valid event of about size bytes.
func bigEvent(id string, size int) []byte {
	return []byte(`{"id":"` + id + `","type":"t","source":"s","project":"p","user_id":"usr_1","time":"2026-01-02T15:04:05Z","data":{"pad":"` +
		strings.Repeat("x", size) + `"}}`)
}

func TestEventAboveMaxEventBytes(t *testing.T) {
	const limit = 2048
	env := map[string]string{"MAX_EVENT_BYTES": fmt.Sprint(limit), "DEDUP_TTL": "0"}
	h := gwooktest.Start(t, env, app.Options{})
	body := bigEvent("evt_too_big", limit)

	r := h.Direct(t, body)
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("producer: status %d %s", r.Status, r.Body)
	}
	if p := problemOf(t, r); p.Type != "urn:gwook:problem:event_too_large" || p.Outcome != "invalid" ||
		!strings.Contains(p.Detail, fmt.Sprint(len(body))) || !strings.Contains(p.Detail, "MAX_EVENT_BYTES") {
		t.Errorf("producer: problem %+v", p)
	}
	// Without a dead-letter topic, a push is refused too, for the
	// subscription's own dead-letter policy.
	if r := h.Push(t, body); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("push without a dead-letter topic: %d %s", r.Status, r.Body)
	}
	if r := h.Direct(t, bigEvent("evt_fits", limit-200)); r.Status != http.StatusAccepted {
		t.Errorf("an event within the limit: %d %s", r.Status, r.Body)
	}
	if n := h.Svix.Attempts(); n != 1 {
		t.Errorf("Svix got %d requests, want only the one within the limit", n)
	}
}

func TestThePushOfTheLargestEventIsRead(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0"}, app.Options{}) // the default limits
	body := bigEvent("evt_largest", 0)
	body = bigEvent("evt_largest", 1<<20-len(body)) // exactly MAX_EVENT_BYTES
	attrs := map[string]string{}
	for i := range 100 { // as many attributes as Pub/Sub allows, each as long as it allows
		attrs[fmt.Sprintf("%0256d", i)] = strings.Repeat("v", 1024)
	}
	attrJSON, _ := json.Marshal(attrs)
	env := `{"message":{"data":"` + base64.StdEncoding.EncodeToString(body) + `","attributes":` + string(attrJSON) +
		`,"messageId":"m-1","publishTime":"2026-01-02T15:04:05Z"},"subscription":"projects/p/subscriptions/gwook","deliveryAttempt":1}`
	r := h.Post(t, "/notifications?token="+gwooktest.PushToken, nil, []byte(env))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"outcome":"forwarded"`) {
		t.Fatalf("a push of %d bytes carrying an event of %d: status %d %s", len(env), len(body), r.Status, r.Body)
	}
}

func TestPushAboveMaxEventBytesIsDeadLettered(t *testing.T) {
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "dead-letters"))
	sub := emu.CreatePullSubscription(t, emu.UniqueID(t, "dead-letters-sub"), topic, 10*time.Second)
	const limit = 2048
	h := gwooktest.Start(t, map[string]string{"MAX_EVENT_BYTES": fmt.Sprint(limit), "DEAD_LETTER_TOPIC": topic,
		"PUBSUB_PROJECT_ID": emu.Project}, app.Options{})
	body := bigEvent("evt_pushed_too_big", limit)

	// Acked once it is safe on the dead-letter topic: never redelivered in
	// a loop.
	r := h.Push(t, body)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"dead_lettered":true`) {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	var got []pubsubemu.ReceivedMessage
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
		got = emu.Pull(t, sub, 10)
	}
	if len(got) != 1 {
		t.Fatalf("%d messages on the dead-letter topic, want 1", len(got))
	}
	if m := got[0]; string(m.Data) != string(body) || m.Attributes["reason"] != "invalid_event" ||
		!strings.Contains(m.Attributes["error"], "above the limit") {
		t.Errorf("dead letter: reason %q, error %q, data of %d bytes (want the event, %d bytes)",
			m.Attributes["reason"], m.Attributes["error"], len(m.Data), len(body))
	}
	if n := h.Svix.Attempts(); n != 0 {
		t.Errorf("Svix got %d requests", n)
	}
}

func TestRequestsAboveMaxInFlightAreShed(t *testing.T) {
	h := gwooktest.Start(t, map[string]string{"MAX_IN_FLIGHT": "1", "DEDUP_TTL": "0"}, app.Options{})
	h.Svix.SetDefault(svixserver.Response{Delay: 3 * time.Second})
	held := make(chan gwooktest.Reply, 1)
	go func() { held <- h.Direct(t, eventWithKey(uniqueTag(t), "evt_held")) }()
	for deadline := time.Now().Add(5 * time.Second); h.Svix.Attempts() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached Svix")
		}
		time.Sleep(5 * time.Millisecond)
	}

	for name, send := range map[string]func(*gwooktest.Gwook, testing.TB, []byte) gwooktest.Reply{
		"producer": (*gwooktest.Gwook).Direct, "push": (*gwooktest.Gwook).Push,
	} {
		r := send(h, t, eventWithKey(uniqueTag(t), "evt_shed_"+name))
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "1" {
			t.Errorf("%s: status %d, Retry-After %q", name, r.Status, r.Header.Get("Retry-After"))
			continue
		}
		if p := problemOf(t, r); p.Outcome != "overloaded" {
			t.Errorf("%s: problem %+v", name, p)
		}
	}
	// Authentication comes first: a caller without credentials gets its
	// 401, and takes no slot.
	if r := h.Post(t, "/notifications", nil, []byte(`{}`)); r.Status != http.StatusUnauthorized {
		t.Errorf("without credentials: %d", r.Status)
	}
	if r := <-held; r.Status != http.StatusAccepted {
		t.Errorf("the request within the limit: %d %s", r.Status, r.Body)
	}
	if got := h.MetricFamilies(t)["gwook_requests_shed_total"].GetMetric()[0].GetCounter().GetValue(); got != 2 {
		t.Errorf("gwook_requests_shed_total = %v, want 2", got)
	}
	if n := h.Svix.Attempts(); n != 1 {
		t.Errorf("Svix got %d requests, want 1", n)
	}
}

func TestErrorBodiesCarryNoGoText(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	h := gwooktest.Start(t, map[string]string{"SVIX_SERVER_URL": deadURL, "SVIX_RETRY_MAX_ATTEMPTS": "2"}, app.Options{})
	for _, tc := range []struct {
		name string
		r    gwooktest.Reply
	}{
		{"Svix unreachable", h.Direct(t, eventWithKey(uniqueTag(t), "evt_nowhere"))},
		{"envelope with a number for data", h.Post(t, "/notifications?token="+gwooktest.PushToken, nil, []byte(`{"message":{"data":5}}`))},
		{"envelope with broken base64", h.Post(t, "/notifications", http.Header{"Authorization": {"Basic " +
			base64.StdEncoding.EncodeToString([]byte(gwooktest.Username+":"+gwooktest.Password))}}, []byte(`{"message":{"data":"a$b"}}`))},
		{"bearer token without OIDC", h.Post(t, "/notifications", http.Header{"Authorization": {"Bearer x.y.z"}}, []byte(`{}`))},
	} {
		p := problemOf(t, tc.r)
		if p.Detail == "" {
			t.Errorf("%s: no detail", tc.name)
		}
		for _, goText := range []string{"dial tcp", "connect:", "Post \"", ln.Addr().String(), "json:", "Go struct", "illegal base64", "strconv", "http: "} {
			if strings.Contains(string(tc.r.Body), goText) {
				t.Errorf("%s: body has %q: %s", tc.name, goText, tc.r.Body)
			}
		}
	}
}

// serve runs h's App on a real listener, with the server's own limits and
// timeouts, until the test ends.
func serve(t *testing.T, h *gwooktest.Gwook) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.App.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawRequest writes request on a new connection to addr and reads the
// answer.
func rawRequest(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestHTTPEdges(t *testing.T) {
	const headerLimit = 8192
	h := gwooktest.Start(t, map[string]string{"HTTP_SERVER_MAX_HEADER_BYTES": fmt.Sprint(headerLimit),
		"HTTP_SERVER_READ_TIMEOUT": "1s"}, app.Options{})
	addr := serve(t, h)
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(gwooktest.Username+":"+gwooktest.Password)) + "\r\n"

	t.Run("headers over the limit", func(t *testing.T) {
		// Beyond what net/http itself would let through at the limit (it
		// allows 4 KiB more), within twice the limit.
		resp, body := rawRequest(t, addr, "GET /health HTTP/1.1\r\nHost: gwook\r\nX-Request-Id: req-big-headers\r\nX-Padding: "+
			strings.Repeat("p", headerLimit+6000)+"\r\n\r\n")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var p map[string]any
		if err := json.Unmarshal(body, &p); err != nil || p["request_id"] != "req-big-headers" || p["type"] != "urn:gwook:problem:headers_too_large" {
			t.Errorf("problem %s (%v)", body, err)
		}
	})
	t.Run("headers far over the limit", func(t *testing.T) {
		// Beyond twice the limit net/http answers before any handler runs,
		// with its own plain-text 431 and without a request id.
		resp, _ := rawRequest(t, addr, "GET /health HTTP/1.1\r\nHost: gwook\r\nX-Padding: "+strings.Repeat("p", 3*headerLimit+4096)+"\r\n\r\n")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("body that does not arrive in time", func(t *testing.T) {
		resp, body := rawRequest(t, addr, "POST /notifications HTTP/1.1\r\nHost: gwook\r\n"+auth+"Content-Length: 500\r\n\r\n{\"id\":")
		if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if strings.Contains(string(body), "timeout:") || strings.Contains(string(body), "i/o") {
			t.Errorf("body has Go's own text: %s", body)
		}
	})
	t.Run("HEAD /health and /ready", func(t *testing.T) {
		for _, path := range []string{"/health", "/ready"} {
			resp, err := http.Head("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("HEAD %s: %d", path, resp.StatusCode)
			}
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		resp, body := rawRequest(t, addr, "DELETE /notifications HTTP/1.1\r\nHost: gwook\r\n\r\n")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("status %d, Allow %q: %s", resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	})
}

func TestDeadLetterTopicGoneDegradesReadiness(t *testing.T) {
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "dead-letters"))
	h := gwooktest.Start(t, map[string]string{"DEAD_LETTER_TOPIC": topic, "PUBSUB_PROJECT_ID": emu.Project}, app.Options{})
	emu.DeleteTopic(t, topic)
	resp, err := http.Get(h.URL + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"degraded"`) ||
		!strings.Contains(string(body), `"dead_letter_topic":"down"`) {
		t.Errorf("/ready without the dead-letter topic: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), topic) || strings.Contains(string(body), "NotFound") {
		t.Errorf("/ready serves the error: %s", body)
	}
}
