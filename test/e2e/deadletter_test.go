package e2e

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// waitTimeout bounds every wait for the emulator, Gwook or Svix.
const waitTimeout = 30 * time.Second

// quietWindow is how long nothing may change to show that the emulator
// stopped redelivering; it redelivers a nacked push about once a second.
const quietWindow = 3 * time.Second

// deadLetterSetup is a Gwook with a dead-letter topic, a pull subscription
// on that topic for tests and replays, and a source topic whose push
// subscription points at Gwook.
type deadLetterSetup struct {
	emu      *pubsubemu.Emulator
	g        *gwooktest.Gwook
	dlqTopic string // full name
	dlqSub   string // full name
	srcTopic string // full name
	pushSub  string // full name
}

// startWithDeadLetters starts Gwook for t with a fresh dead-letter topic,
// three Svix attempts within 2 s unless env says otherwise, and a push
// subscription whose ack deadline is far above that budget.
func startWithDeadLetters(t *testing.T, env map[string]string) *deadLetterSetup {
	t.Helper()
	emu := pubsubemu.FromEnv(t)
	s := &deadLetterSetup{emu: emu}
	s.dlqTopic = emu.CreateTopic(t, emu.UniqueID(t, "dead-letters"))
	s.dlqSub = emu.CreatePullSubscription(t, emu.UniqueID(t, "dead-letters-sub"), s.dlqTopic, 10*time.Second)
	vars := map[string]string{
		"DEAD_LETTER_TOPIC":       s.dlqTopic,
		"PUBSUB_PROJECT_ID":       emu.Project,
		"SVIX_RETRY_MAX_ATTEMPTS": "3",
		"SVIX_RETRY_MAX_ELAPSED":  "2s",
	}
	maps.Copy(vars, env)
	s.g = gwooktest.Start(t, vars, app.Options{})
	s.srcTopic = emu.CreateTopic(t, emu.UniqueID(t, "events"))
	s.pushSub = emu.CreatePushSubscription(t, emu.UniqueID(t, "gwook-push"), s.srcTopic, pubsubemu.PushOptions{
		Endpoint:    s.g.PushURL(),
		AckDeadline: 30 * time.Second,
	})
	return s
}

// waitDeadLetters pulls from the dead-letter subscription until it holds n
// distinct messages, then nacks them all so that they stay for replay.
func (s *deadLetterSetup) waitDeadLetters(t *testing.T, n int) []pubsubemu.ReceivedMessage {
	t.Helper()
	byID := map[string]pubsubemu.ReceivedMessage{}
	deadline := time.Now().Add(waitTimeout)
	for len(byID) < n {
		if time.Now().After(deadline) {
			s.nack(t, byID)
			t.Fatalf("%d of %d messages reached the dead-letter topic within %v", len(byID), n, waitTimeout)
		}
		msgs := s.emu.Pull(t, s.dlqSub, 100)
		for _, m := range msgs {
			byID[m.MessageID] = m
		}
		if len(msgs) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return s.nack(t, byID)
}

// peekDeadLetters returns every message ready on the dead-letter
// subscription and nacks them, leaving them there.
func (s *deadLetterSetup) peekDeadLetters(t *testing.T) []pubsubemu.ReceivedMessage {
	t.Helper()
	byID := map[string]pubsubemu.ReceivedMessage{}
	for {
		msgs := s.emu.Pull(t, s.dlqSub, 100)
		if len(msgs) == 0 {
			return s.nack(t, byID)
		}
		for _, m := range msgs {
			byID[m.MessageID] = m
		}
	}
}

func (s *deadLetterSetup) nack(t *testing.T, byID map[string]pubsubemu.ReceivedMessage) []pubsubemu.ReceivedMessage {
	t.Helper()
	msgs := slices.Collect(maps.Values(byID))
	ackIDs := make([]string, len(msgs))
	for i, m := range msgs {
		ackIDs[i] = m.AckID
	}
	s.emu.Nack(t, s.dlqSub, ackIDs...)
	return msgs
}

// requestLines returns Gwook's request log lines for POST /notifications.
func (s *deadLetterSetup) requestLines() []map[string]any {
	var out []map[string]any
	for _, l := range s.g.Logs.Lines("request") {
		if l["path"] == "/notifications" {
			out = append(out, l)
		}
	}
	return out
}

// expectQuiet fails t if, during quietWindow, Svix sees another attempt or
// Gwook another request: the emulator would redeliver a push that was not
// acked.
func (s *deadLetterSetup) expectQuiet(t *testing.T) {
	t.Helper()
	attempts, requests := s.g.Svix.Attempts(), len(s.requestLines())
	until := time.Now().Add(quietWindow)
	for time.Now().Before(until) {
		if a, r := s.g.Svix.Attempts(), len(s.requestLines()); a != attempts || r != requests {
			t.Fatalf("Svix attempts went from %d to %d and requests from %d to %d: a push was redelivered", attempts, a, requests, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventFields reads the fields of an event that dead-letter attributes
// carry.
func eventFields(t *testing.T, body []byte) (typ, userID string) {
	t.Helper()
	var ev struct {
		Type   string `json:"type"`
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Type, ev.UserID
}

// oneEvent returns a single event unique to this run, and its id.
func oneEvent(t *testing.T) (string, []byte) {
	t.Helper()
	for id, body := range uniqueEvents(t, 1) {
		return id, body
	}
	t.Fatal("uniqueEvents returned no event")
	return "", nil
}

// TestFailedPushIsDeadLetteredThenReplayed publishes an event while Svix
// fails, checks that it lands on the dead-letter topic with every attribute
// and its exact bytes and that the push is acked, then replays it with the
// gwook command once Svix is healthy.
func TestFailedPushIsDeadLetteredThenReplayed(t *testing.T) {
	t.Parallel()
	const maxAttempts = 3
	for _, tc := range []struct {
		name   string
		env    map[string]string
		svix   svixserver.Response
		reason string
		status int
		// wait is the shortest time each retry must have waited.
		wait time.Duration
	}{
		{
			name:   "svix 500",
			env:    map[string]string{"SVIX_RETRY_MAX_ELAPSED": "2s"},
			svix:   svixserver.Response{Status: http.StatusInternalServerError},
			reason: "unavailable", status: 500,
		},
		{
			name:   "svix 429 with Retry-After",
			env:    map[string]string{"SVIX_RETRY_MAX_ELAPSED": "5s"},
			svix:   svixserver.Response{Status: http.StatusTooManyRequests, RetryAfter: "1"},
			reason: "rate_limited", status: 429,
			wait: time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"SVIX_RETRY_MAX_ATTEMPTS": strconv.Itoa(maxAttempts)}
			maps.Copy(env, tc.env)
			s := startWithDeadLetters(t, env)
			s.g.Svix.SetDefault(tc.svix)
			id, body := oneEvent(t)
			typ, userID := eventFields(t, body)

			before := time.Now()
			srcID := s.emu.Publish(t, s.srcTopic, body, nil)
			dl := s.waitDeadLetters(t, 1)[0]
			after := time.Now()

			if string(dl.Data) != string(body) {
				t.Errorf("dead-letter data %q, want the event %q byte for byte", dl.Data, body)
			}
			want := map[string]string{
				"reason":              tc.reason,
				"svix_status":         strconv.Itoa(tc.status),
				"attempts":            strconv.Itoa(maxAttempts),
				"event_id":            id,
				"event_type":          typ,
				"application":         userID,
				"source_subscription": s.pushSub,
				"source_message_id":   srcID,
			}
			for k, v := range want {
				if got := dl.Attributes[k]; got != v {
					t.Errorf("attribute %s = %q, want %q", k, got, v)
				}
			}
			if dl.Attributes["error"] == "" {
				t.Error("attribute error is empty")
			}
			failedAt, err := time.Parse(time.RFC3339, dl.Attributes["failed_at"])
			if err != nil || failedAt.Before(before) || failedAt.After(after) {
				t.Errorf("attribute failed_at = %q (%v), want an RFC 3339 time between %s and %s",
					dl.Attributes["failed_at"], err, before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
			}
			wantKeys := append(slices.Collect(maps.Keys(want)), "error", "failed_at")
			if got := slices.Sorted(maps.Keys(dl.Attributes)); !slices.Equal(got, slices.Sorted(slices.Values(wantKeys))) {
				t.Errorf("attributes %v, want exactly %v", got, slices.Sorted(slices.Values(wantKeys)))
			}

			s.expectQuiet(t)
			if got := s.g.Svix.Attempts(); got != maxAttempts {
				t.Errorf("Svix saw %d attempts, want %d", got, maxAttempts)
			}
			lines := s.requestLines()
			if len(lines) != 1 {
				t.Fatalf("%d pushes reached Gwook, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			if l["status"] != float64(http.StatusOK) || l["outcome"] != tc.reason || l["dead_lettered"] != true ||
				l["push_message_id"] != srcID || l["attempts"] != float64(maxAttempts) {
				t.Errorf("request log line %v: want status 200, outcome %s, dead_lettered, attempts %d, push_message_id %s",
					l, tc.reason, maxAttempts, srcID)
			}
			ms, _ := l["duration_ms"].(float64)
			if took, minimum := time.Duration(ms*float64(time.Millisecond)), time.Duration(maxAttempts-1)*tc.wait; took <= 0 || took < minimum {
				t.Errorf("the push took %v, want at least %v: Retry-After was not honoured", took, minimum)
			}
			if left := s.peekDeadLetters(t); len(left) != 1 {
				t.Fatalf("the dead-letter subscription holds %d messages, want 1", len(left))
			}

			s.g.Svix.SetDefault(svixserver.Response{})
			r := s.replay(t, nil, "--subscription", s.dlqSub, "--idle", "2s")
			r.expect(t, 0, map[string]int{"messages": 1, "forwarded": 1, "failed": 0})
			if msgs := s.g.Svix.MessagesFor(id); len(msgs) != 1 || string(msgs[0].Payload) != string(body) {
				t.Fatalf("after replay Svix has %d messages for %s, want 1 with the event as payload", len(msgs), id)
			}

			again := s.replay(t, nil, "--subscription", s.dlqSub, "--idle", "2s")
			again.expect(t, 0, map[string]int{"messages": 0, "failed": 0})
			if n := len(s.g.Svix.MessagesFor(id)); n != 1 {
				t.Errorf("after a second replay Svix has %d messages for %s, want 1", n, id)
			}
		})
	}
}

// TestDeadLetterPublishFailure deletes the dead-letter topic under a
// running Gwook: an event that cannot be delivered is then nowhere, and the
// caller must be told to keep it.
func TestDeadLetterPublishFailure(t *testing.T) {
	t.Parallel()
	s := startWithDeadLetters(t, map[string]string{"DEAD_LETTER_PUBLISH_TIMEOUT": "3s"})
	s.emu.DeleteTopic(t, s.dlqTopic)
	s.g.Svix.SetDefault(svixserver.Response{Status: http.StatusInternalServerError})
	events := slices.Collect(maps.Values(uniqueEvents(t, 2)))

	for _, tc := range []struct {
		name    string
		send    func(testing.TB, []byte) gwooktest.Reply
		body    []byte
		status  int
		outcome string
	}{
		{"producer, svix 500", s.g.Direct, events[0], http.StatusInternalServerError, "unavailable"},
		{"push, svix 500", s.g.Push, events[1], http.StatusServiceUnavailable, "unavailable"},
		{"push, invalid event", s.g.Push, []byte("not json"), http.StatusServiceUnavailable, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send(t, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(r.Body, &p); err != nil {
				t.Fatalf("body %s: %v", r.Body, err)
			}
			if p["dead_lettered"] != false || p["layer"] != "gwook" || p["outcome"] != tc.outcome {
				t.Errorf("problem %s: want dead_lettered false, layer gwook, outcome %s", r.Body, tc.outcome)
			}
			if detail, _ := p["detail"].(string); !strings.Contains(detail, "dead-letter publish failed") {
				t.Errorf("problem detail %q does not say the dead-letter publish failed", detail)
			}
		})
	}
	if n := len(s.g.Svix.Messages()); n != 0 {
		t.Errorf("Svix stored %d messages while answering 500", n)
	}
	lines := s.requestLines()
	if len(lines) != 3 {
		t.Errorf("%d request log lines for 3 requests", len(lines))
	}
	for _, l := range lines {
		if e, _ := l["dead_letter_error"].(string); l["dead_lettered"] != false || !strings.Contains(e, s.dlqTopic) {
			t.Errorf("request log line %v: want dead_lettered false and a dead_letter_error naming %s", l, s.dlqTopic)
		}
	}
}

// TestStartupChecksDeadLetterTopic builds Gwook with a dead-letter topic
// that does not exist, which must fail at startup, naming the topic.
func TestStartupChecksDeadLetterTopic(t *testing.T) {
	t.Parallel()
	emu := pubsubemu.FromEnv(t)
	missing := emu.UniqueID(t, "missing")
	existing := emu.CreateTopic(t, emu.UniqueID(t, "existing"))
	for _, tc := range []struct {
		name, topic, wantErr string
	}{
		{"missing topic id", missing, emu.TopicName(missing)},
		{"missing full name", emu.TopicName(missing), emu.TopicName(missing)},
		{"missing in another project", "projects/other-project/topics/" + missing, "projects/other-project/topics/" + missing},
		{"existing topic", existing, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
				"SVIX_AUTH_TOKEN":   gwooktest.SvixToken,
				"SVIX_SERVER_URL":   "http://127.0.0.1:9",
				"AUTH_USERNAME":     gwooktest.Username,
				"AUTH_PASSWORD":     gwooktest.Password,
				"PUBSUB_PROJECT_ID": emu.Project,
				"DEAD_LETTER_TOPIC": tc.topic,
				"DEDUP_TTL":         "0",
				"DATA_DIR":          t.TempDir(),
			}))
			if err != nil {
				t.Fatal(err)
			}
			a, err := newApp(t, cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("app.New with the existing topic %s: %v", tc.topic, err)
				}
				a.Close()
				return
			}
			if err == nil {
				a.Close()
				t.Fatalf("app.New with DEAD_LETTER_TOPIC=%s succeeded, want an error", tc.topic)
			}
			if !strings.Contains(err.Error(), tc.wantErr+" ") || !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("error %q does not say that %s does not exist", err, tc.wantErr)
			}
		})
	}
}

// newApp calls app.New, failing t instead of the whole test binary if it
// panics.
func newApp(t *testing.T, cfg *config.Config) (a *app.App, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("app.New with DEAD_LETTER_TOPIC=%s panicked instead of returning an error: %v", cfg.DeadLetterTopic, p)
		}
	}()
	return app.New(context.Background(), cfg, app.NewLogger(io.Discard, "info", "json"), app.Options{})
}
