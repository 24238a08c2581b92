package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/test/googletoken"
	"github.com/gwook/gwook/test/svixserver"
)

// eventarcRequest returns a request recorded in internal/ingest's
// testdata/eventarc, as an Eventarc trigger sends it, carrying token.
func eventarcRequest(t *testing.T, name, token string) *http.Request {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "ingest", "testdata", "eventarc", name))
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	recorded, err := http.ReadRequest(r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/notifications", bytes.NewReader(body))
	req.Header = recorded.Header
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// eventarcSetup is a router that authenticates pushes by OIDC and sends
// events to a Svix test server, and the log its requests write.
type eventarcSetup struct {
	router http.Handler
	svix   *svixserver.Server
	logs   *bytes.Buffer
	token  string
}

func newEventarcSetup(t *testing.T) *eventarcSetup {
	t.Helper()
	issuer := googletoken.NewIssuer(t)
	svx := svixserver.New(t)
	sender := oneAttemptSender(t, svx.URL())
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	p := pipeline.New(pipeline.Config{Backend: svix.Backend{Sender: sender}, Logger: discardLogger})
	router := NewRouter(Deps{Pipeline: p, Health: NewHealth(0, discardLogger),
		Auth:         &Authenticator{PushTokens: NewPushTokenVerifier(issuer.KeySet(), audience, serviceAccount), Logger: discardLogger},
		MaxBodyBytes: 1 << 20, MaxEventBytes: 1 << 20, InFlight: InFlightLimit{MaxBodyBytes: 1 << 20}, Logger: logger})
	return &eventarcSetup{router: router, svix: svx, logs: logs,
		token: issuer.Sign(t, googletoken.PushClaims(audience, serviceAccount))}
}

// serve answers req and returns the status, the decoded body and the
// request's log line.
func (s *eventarcSetup) serve(t *testing.T, req *http.Request) (int, map[string]any, map[string]any) {
	t.Helper()
	s.logs.Reset()
	w := httptest.NewRecorder()
	s.router.ServeHTTP(w, req)
	var out, line map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer %d %q: %v", w.Code, w.Body, err)
	}
	if err := json.Unmarshal(s.logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", s.logs, err)
	}
	return w.Code, out, line
}

// TestEventarcEventsAreForwarded posts an Eventarc event in each content
// mode, as recorded from the documentation, with an OIDC token, and
// checks that its event reaches Svix and that the push is acked.
func TestEventarcEventsAreForwarded(t *testing.T) {
	const eventID = "evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C"
	event, err := os.ReadFile("../../test/events/event-01.json")
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, event); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, mode, messageID string }{
		{"binary.http", "binary", "11937923701344"},
		{"structured.http", "structured", "11937923701345"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			s := newEventarcSetup(t)
			status, out, line := s.serve(t, eventarcRequest(t, tc.file, s.token))
			if status != http.StatusOK || out["outcome"] != "forwarded" || out["event_id"] != eventID {
				t.Fatalf("%d %v, want 200 forwarded for %s", status, out, eventID)
			}
			msgs := s.svix.MessagesFor(eventID)
			if len(msgs) != 1 || msgs[0].AppID != "usr_2xK9mQ4vL7pR" || msgs[0].EventType != "user.signed_up" {
				t.Fatalf("Svix has %+v, want one user.signed_up message for usr_2xK9mQ4vL7pR", msgs)
			}
			if string(msgs[0].Payload) != compact.String() {
				t.Errorf("payload %s, want the event %s", msgs[0].Payload, compact.String())
			}
			for key, want := range map[string]any{"caller": "oidc", "entry": "push", "cloudevent": tc.mode,
				"push_message_id": tc.messageID, "outcome": "forwarded"} {
				if line[key] != want {
					t.Errorf("log line %s = %v, want %v", key, line[key], want)
				}
			}
		})
	}
}

// TestMalformedEventarcEventIsRefused posts CloudEvents Gwook cannot take,
// without a dead-letter topic: a 400 listing every problem, as for any
// push that is not a valid event, and nothing sent.
func TestMalformedEventarcEventIsRefused(t *testing.T) {
	s := newEventarcSetup(t)
	for _, tc := range []struct {
		name   string
		file   string
		change func(*http.Request)
		errors []map[string]any
	}{
		{"another type", "binary.http", func(r *http.Request) { r.Header.Set("Ce-Type", "google.cloud.storage.object.v1.finalized") },
			[]map[string]any{{"field": "ce-type", "rule": "eq", "detail": `is "google.cloud.storage.object.v1.finalized"; ` +
				`Gwook accepts only google.cloud.pubsub.topic.v1.messagePublished, the Pub/Sub messages an Eventarc trigger delivers`}}},
		{"no id, no specversion", "binary.http", func(r *http.Request) { r.Header.Del("Ce-Id"); r.Header.Del("Ce-Specversion") },
			[]map[string]any{{"field": "ce-specversion", "rule": "required", "detail": "is required"},
				{"field": "ce-id", "rule": "required", "detail": "is required"}}},
		{"structured without data", "structured.http", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"specversion":"1.0","id":"1","source":"s","type":"google.cloud.pubsub.topic.v1.messagePublished"}`))
			r.ContentLength = -1
		}, []map[string]any{{"field": "data", "rule": "required",
			"detail": `is required: the Pub/Sub message as {"message": {...}, "subscription": "..."}`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := eventarcRequest(t, tc.file, s.token)
			tc.change(req)
			status, out, line := s.serve(t, req)
			if status != http.StatusBadRequest || out["type"] != problemTypeBase+"invalid" || out["detail"] != "the CloudEvent is malformed" {
				t.Fatalf("%d %v, want 400 invalid: the CloudEvent is malformed", status, out)
			}
			got, _ := json.Marshal(out["errors"])
			want, _ := json.Marshal(tc.errors)
			if string(got) != string(want) {
				t.Errorf("errors %s, want %s", got, want)
			}
			if line["entry"] != "push" || line["outcome"] != "invalid" || line["cloudevent"] == nil {
				t.Errorf("log line %v, want an invalid Eventarc push", line)
			}
		})
	}
	if n := s.svix.Attempts(); n != 0 {
		t.Errorf("%d requests reached Svix", n)
	}
}

// TestEventarcEventNeedsThePushToken checks that a CloudEvent is
// authenticated like any push.
func TestEventarcEventNeedsThePushToken(t *testing.T) {
	s := newEventarcSetup(t)
	stranger := googletoken.NewIssuer(t).Sign(t, googletoken.PushClaims(audience, serviceAccount))
	status, out, _ := s.serve(t, eventarcRequest(t, "binary.http", stranger))
	if status != http.StatusUnauthorized || out["type"] != problemTypeBase+"unauthorized" {
		t.Errorf("%d %v, want 401", status, out)
	}
	if n := s.svix.Attempts(); n != 0 {
		t.Errorf("%d requests reached Svix", n)
	}
}

// oneAttemptSender is a Svix sender to serverURL that tries each message
// once.
func oneAttemptSender(t *testing.T, serverURL string) *svix.Sender {
	t.Helper()
	sender, err := svix.New(svix.Config{Token: "sk_test", ServerURL: serverURL, Timeout: 10 * time.Second, Logger: discardLogger,
		Retry: svix.RetryPolicy{MaxAttempts: 1, MaxElapsed: 10 * time.Second, InitialInterval: time.Millisecond,
			MaxInterval: time.Millisecond, RetryAfterMax: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return sender
}
