package pubsubemu_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/test/pubsubemu"
)

// waitTimeout bounds every wait for the emulator to deliver something.
const waitTimeout = 30 * time.Second

func TestFromEnvFailsLoudly(t *testing.T) {
	notEmulator := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notEmulator.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := closed.Listener.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name, host, want string
	}{
		{"unset", "", "PUBSUB_EMULATOR_HOST is not set"},
		{"not answering", closedHost, "does not answer"},
		{"not the emulator", notEmulator.Listener.Addr().String(), "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PUBSUB_EMULATOR_HOST", tc.host)
			rec := &fatalRecorder{TB: t}
			if e := pubsubemu.FromEnv(rec); e != nil {
				t.Fatalf("FromEnv returned %+v, want nil", e)
			}
			for _, want := range []string{tc.want, "scripts/test-services start", "make test"} {
				if !strings.Contains(rec.msg, want) {
					t.Errorf("FromEnv failed with %q, want it to mention %q", rec.msg, want)
				}
			}
		})
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the first message
// instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	if r.msg == "" {
		r.msg = fmt.Sprintf(format, args...)
	}
}

var validID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)

func TestUniqueID(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)

	check := func(t *testing.T, prefix string) string {
		t.Helper()
		id := e.UniqueID(t, prefix)
		if !validID.MatchString(id) || strings.HasPrefix(strings.ToLower(id), "goog") {
			t.Fatalf("UniqueID(%q) = %q (%d chars), not a valid Pub/Sub id", prefix, id, len(id))
		}
		if again := e.UniqueID(t, prefix); again == id {
			t.Fatalf("UniqueID(%q) returned %q twice", prefix, id)
		}
		// The emulator is the judge of validity.
		e.CreateTopic(t, id)
		return id
	}

	for _, prefix := range []string{"topic", "", "9lives", "goog-x", "a b/c%d", strings.Repeat("p", 300)} {
		t.Run("prefix "+prefix[:min(len(prefix), 10)], func(t *testing.T) {
			id := check(t, prefix)
			if p := prefix; validID.MatchString(p) && len(p) < 200 && !strings.HasPrefix(p, "goog") &&
				!strings.HasPrefix(id, p+"-") {
				t.Errorf("UniqueID(%q) = %q, want it to start with the prefix", p, id)
			}
		})
	}
	t.Run("name: with spaces, colons and ünïcode", func(t *testing.T) {
		check(t, "topic")
	})
	t.Run("long "+strings.Repeat("n", 300)+" end", func(t *testing.T) {
		if id := check(t, "topic"); !strings.Contains(id, "n_end-") {
			t.Errorf("UniqueID = %q, want it to keep the end of the test name", id)
		}
	})
}

func TestPublishPullAck(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)
	topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
	if want := "projects/" + e.Project + "/topics/"; !strings.HasPrefix(topic, want) {
		t.Fatalf("CreateTopic returned %q, want a name starting with %q", topic, want)
	}
	sub := e.CreatePullSubscription(t, e.UniqueID(t, "sub"), topic, 0)

	before := time.Now().Add(-time.Minute)
	published := map[string]string{
		e.Publish(t, topic, []byte(`{"n":1}`), map[string]string{"kind": "first"}):  "first",
		e.Publish(t, topic, []byte(`{"n":2}`), map[string]string{"kind": "second"}): "second",
	}
	if len(published) != 2 {
		t.Fatalf("Publish returned the same message id twice: %v", published)
	}

	msgs := pullN(t, e, sub, 2)
	for _, m := range msgs {
		kind, ok := published[m.MessageID]
		if !ok {
			t.Errorf("pulled unexpected message %q", m.MessageID)
			continue
		}
		if m.Attributes["kind"] != kind {
			t.Errorf("message %s attributes = %v, want kind=%s", m.MessageID, m.Attributes, kind)
		}
		if !json.Valid(m.Data) || !bytes.HasPrefix(m.Data, []byte(`{"n":`)) {
			t.Errorf("message %s data = %q", m.MessageID, m.Data)
		}
		if m.AckID == "" || m.PublishTime.Before(before) {
			t.Errorf("message %s: ack id %q, publish time %v", m.MessageID, m.AckID, m.PublishTime)
		}
		if m.DeliveryAttempt != 0 {
			t.Errorf("message %s: delivery attempt %d without a dead-letter policy", m.MessageID, m.DeliveryAttempt)
		}
	}
	e.Ack(t, sub, msgs[0].AckID, msgs[1].AckID)
	e.Ack(t, sub) // no ids: nothing to do

	if left := e.Pull(t, sub, 10); len(left) != 0 {
		t.Errorf("after ack, pulled %d more messages", len(left))
	}
}

func TestUnackedMessageIsRedelivered(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)
	topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
	// The emulator accepts ack deadlines below the service's 10 s minimum.
	sub := e.CreatePullSubscription(t, e.UniqueID(t, "sub"), topic, 4*time.Second)

	acked := e.Publish(t, topic, []byte("acked"), nil)
	unacked := e.Publish(t, topic, []byte("unacked"), nil)
	for _, m := range pullN(t, e, sub, 2) {
		if m.MessageID == acked {
			e.Ack(t, sub, m.AckID)
		}
	}

	// Both ack deadlines expired together, so whatever else is redelivered
	// arrives right after the first redelivery.
	again := pullN(t, e, sub, 1)
	e.Ack(t, sub, again[0].AckID)
	again = append(again, e.DrainFor(t, sub, time.Second, waitTimeout)...)
	if len(again) != 1 || again[0].MessageID != unacked || string(again[0].Data) != "unacked" {
		for _, m := range again {
			t.Errorf("redelivered %s %q", m.MessageID, m.Data)
		}
		t.Fatalf("want only the unacked message %s redelivered", unacked)
	}
}

func TestNackRedeliversAtOnce(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)
	topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
	// Without the nack, nothing could come back within the ack deadline.
	const ackDeadline = 60 * time.Second
	sub := e.CreatePullSubscription(t, e.UniqueID(t, "sub"), topic, ackDeadline)

	nacked := e.Publish(t, topic, []byte("nacked"), map[string]string{"kind": "nacked"})
	kept := e.Publish(t, topic, []byte("kept"), nil)
	first := pullN(t, e, sub, 2)
	for _, m := range first {
		if m.MessageID == nacked {
			e.Nack(t, sub, m.AckID)
		}
	}
	e.Nack(t, sub) // no ids: nothing to do

	start := time.Now()
	again := pullN(t, e, sub, 1)
	if waited := time.Since(start); waited > ackDeadline/2 {
		t.Errorf("the nacked message came back after %v", waited)
	}
	if m := again[0]; m.MessageID != nacked || string(m.Data) != "nacked" || m.Attributes["kind"] != "nacked" {
		t.Fatalf("after nack, pulled %s %q %v; want message %s back whole", m.MessageID, m.Data, m.Attributes, nacked)
	}
	e.Ack(t, sub, again[0].AckID)
	// The other message is still leased: nothing else arrives.
	if rest := e.DrainFor(t, sub, 500*time.Millisecond, waitTimeout); len(rest) != 0 {
		t.Errorf("pulled %d more messages; message %s should still be leased", len(rest), kept)
	}
}

func TestDeleteTopic(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)
	topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
	sub := e.CreatePullSubscription(t, e.UniqueID(t, "sub"), topic, 0)

	e.DeleteTopic(t, topic)
	rec := &fatalRecorder{TB: t}
	e.DeleteTopic(rec, topic)
	if !strings.Contains(rec.msg, "404") {
		t.Errorf("deleting the topic again failed with %q, want a 404: the first delete did not happen", rec.msg)
	}
	rec = &fatalRecorder{TB: t}
	e.Publish(rec, topic, []byte("lost"), nil)
	if !strings.Contains(rec.msg, "404") {
		t.Errorf("publishing to the deleted topic failed with %q, want a 404", rec.msg)
	}
	// The subscription outlives its topic.
	if msgs := e.Pull(t, sub, 10); len(msgs) != 0 {
		t.Errorf("pulled %d messages from the detached subscription", len(msgs))
	}
}

func TestDrainFor(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)
	topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
	sub := e.CreatePullSubscription(t, e.UniqueID(t, "sub"), topic, 0)

	want := map[string]bool{}
	for i := range 5 {
		want[e.Publish(t, topic, fmt.Appendf(nil, "m%d", i), nil)] = true
	}
	got := e.DrainFor(t, sub, 500*time.Millisecond, waitTimeout)
	if len(got) != len(want) {
		t.Fatalf("DrainFor returned %d messages, want %d", len(got), len(want))
	}
	for _, m := range got {
		if !want[m.MessageID] {
			t.Errorf("DrainFor returned unexpected message %s", m.MessageID)
		}
		delete(want, m.MessageID)
	}

	start := time.Now()
	if rest := e.DrainFor(t, sub, 200*time.Millisecond, waitTimeout); len(rest) != 0 {
		t.Errorf("second DrainFor returned %d messages, want none", len(rest))
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("DrainFor on an empty subscription took %v", waited)
	}
}

func TestWrappedPush(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)
	srv := startPushServer(t, func(int) int { return http.StatusNoContent })
	topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
	sub := e.CreatePushSubscription(t, e.UniqueID(t, "sub"), topic, pubsubemu.PushOptions{
		Endpoint:   srv.url + "/notifications",
		Attributes: map[string]string{"x-goog-version": "v1"},
	})

	data := []byte(`{"event":"created"}`)
	id := e.Publish(t, topic, data, map[string]string{"type": "order.created"})
	req := srv.next(t)

	if req.method != http.MethodPost || req.path != "/notifications" {
		t.Errorf("push request %s %s, want POST /notifications", req.method, req.path)
	}
	if ct := req.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var env struct {
		Subscription string                     `json:"subscription"`
		Message      map[string]json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(req.body, &env); err != nil {
		t.Fatalf("push body is not a JSON envelope: %v\n%s", err, req.body)
	}
	if env.Subscription != sub {
		t.Errorf("subscription = %q, want %q", env.Subscription, sub)
	}
	str := func(key string) string {
		var s string
		if err := json.Unmarshal(env.Message[key], &s); err != nil {
			t.Errorf("message.%s = %s, want a string (%v)", key, env.Message[key], err)
		}
		return s
	}
	if got, err := base64.StdEncoding.DecodeString(str("data")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("message.data decodes to %q (%v), want %q", got, err, data)
	}
	for _, key := range []string{"messageId", "message_id"} {
		if got := str(key); got != id {
			t.Errorf("message.%s = %q, want %q", key, got, id)
		}
	}
	for _, key := range []string{"publishTime", "publish_time"} {
		if _, err := time.Parse(time.RFC3339Nano, str(key)); err != nil {
			t.Errorf("message.%s: %v", key, err)
		}
	}
	var attrs map[string]string
	if err := json.Unmarshal(env.Message["attributes"], &attrs); err != nil || attrs["type"] != "order.created" {
		t.Errorf("message.attributes = %s (%v), want type=order.created", env.Message["attributes"], err)
	}
}

func TestUnwrappedPush(t *testing.T) {
	t.Parallel()
	for _, writeMetadata := range []bool{true, false} {
		t.Run(fmt.Sprintf("writeMetadata=%v", writeMetadata), func(t *testing.T) {
			t.Parallel()
			e := pubsubemu.FromEnv(t)
			srv := startPushServer(t, func(int) int { return http.StatusOK })
			topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
			sub := e.CreatePushSubscription(t, e.UniqueID(t, "sub"), topic, pubsubemu.PushOptions{
				Endpoint:      srv.url + "/notifications",
				Unwrapped:     true,
				WriteMetadata: writeMetadata,
			})

			data := []byte(`{"event":"deleted"}`)
			id := e.Publish(t, topic, data, map[string]string{"type": "order.deleted"})
			req := srv.next(t)

			if !bytes.Equal(req.body, data) {
				t.Errorf("body = %q, want the raw message data %q", req.body, data)
			}
			if !writeMetadata {
				for key := range req.header {
					if strings.HasPrefix(strings.ToLower(key), "x-goog-pubsub-") {
						t.Errorf("unexpected header %s without writeMetadata", key)
					}
				}
				return
			}
			for key, want := range map[string]string{
				"X-Goog-Pubsub-Message-Id":        id,
				"X-Goog-Pubsub-Subscription-Name": sub,
				"Type":                            "order.deleted",
			} {
				if got := req.header.Get(key); got != want {
					t.Errorf("header %s = %q, want %q", key, got, want)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, req.header.Get("X-Goog-Pubsub-Publish-Time")); err != nil {
				t.Errorf("header X-Goog-Pubsub-Publish-Time: %v", err)
			}
		})
	}
}

func TestPushRedeliversOn202(t *testing.T) {
	t.Parallel()
	e := pubsubemu.FromEnv(t)
	const attempts = 3
	// The emulator treats 202 Accepted as a nack; the third delivery is acked.
	srv := startPushServer(t, func(n int) int {
		if n < attempts {
			return http.StatusAccepted
		}
		return http.StatusNoContent
	})
	topic := e.CreateTopic(t, e.UniqueID(t, "topic"))
	e.CreatePushSubscription(t, e.UniqueID(t, "sub"), topic, pubsubemu.PushOptions{Endpoint: srv.url})

	id := e.Publish(t, topic, []byte("retry me"), nil)
	for i := 1; i <= attempts; i++ {
		req := srv.next(t)
		var env struct {
			Message struct {
				MessageID string `json:"messageId"`
			} `json:"message"`
		}
		if err := json.Unmarshal(req.body, &env); err != nil || env.Message.MessageID != id {
			t.Fatalf("delivery %d: message id %q (%v), want %q", i, env.Message.MessageID, err, id)
		}
	}
}

// pullN pulls until it has n messages, failing the test after waitTimeout.
// The messages are not acknowledged.
func pullN(t *testing.T, e *pubsubemu.Emulator, sub string, n int) []pubsubemu.ReceivedMessage {
	t.Helper()
	var msgs []pubsubemu.ReceivedMessage
	deadline := time.Now().Add(waitTimeout)
	for len(msgs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("pulled %d of %d messages from %s within %v", len(msgs), n, sub, waitTimeout)
		}
		got := e.Pull(t, sub, n-len(msgs))
		if len(got) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		msgs = append(msgs, got...)
	}
	return msgs
}

// pushRequest is one push delivery as the endpoint saw it.
type pushRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

// pushServer is a push endpoint that records deliveries.
type pushServer struct {
	url      string
	requests chan pushRequest
}

// startPushServer starts a push endpoint that answers the n-th delivery
// (counting from 1) with status(n). It stops when the test ends, after the
// subscriptions created later in the test have been deleted.
func startPushServer(t *testing.T, status func(n int) int) *pushServer {
	t.Helper()
	ps := &pushServer{requests: make(chan pushRequest, 100)}
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		if _, err := body.ReadFrom(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := int(count.Add(1))
		select {
		case ps.requests <- pushRequest{r.Method, r.URL.Path, r.Header.Clone(), body.Bytes()}:
		default: // The test is no longer listening.
		}
		w.WriteHeader(status(n))
	}))
	t.Cleanup(srv.Close)
	ps.url = srv.URL
	return ps
}

// next waits for the next delivery, failing the test after waitTimeout.
func (ps *pushServer) next(t *testing.T) pushRequest {
	t.Helper()
	select {
	case req := <-ps.requests:
		return req
	case <-time.After(waitTimeout):
		t.Fatalf("no push delivery within %v", waitTimeout)
		return pushRequest{}
	}
}
