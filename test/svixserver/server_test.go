package svixserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
)

func TestSDKMessageIsAcceptedAndStored(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	rawIn := rawMessageIn("user.signup", "evt-raw", `{"a":1}`)
	objectEventID := "evt-object"
	objectIn := models.MessageIn{
		EventType: "user.deleted",
		EventId:   &objectEventID,
		Payload:   map[string]any{"b": "two"},
	}

	tests := []struct {
		name        string
		appID       string
		in          models.MessageIn
		key         string
		wantPayload string
	}{
		{name: "raw payload", appID: "app_raw", in: rawIn, key: "key-raw", wantPayload: `{"a":1}`},
		{name: "object payload", appID: "app_object", in: objectIn, key: "key-object", wantPayload: `{"b":"two"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := client.Message.Create(context.Background(), tt.appID, tt.in,
				&svix.MessageCreateOptions{IdempotencyKey: &tt.key})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if !msgIDPattern.MatchString(out.Id) {
				t.Errorf("id %q does not match %s", out.Id, msgIDPattern)
			}
			if out.EventType != tt.in.EventType || out.EventId == nil || *out.EventId != *tt.in.EventId {
				t.Errorf("MessageOut = %+v, want eventType %q and eventId %q", out, tt.in.EventType, *tt.in.EventId)
			}

			got := s.MessagesFor(*tt.in.EventId)
			if len(got) != 1 {
				t.Fatalf("MessagesFor(%q) = %d messages, want 1", *tt.in.EventId, len(got))
			}
			m := got[0]
			if m.AppID != tt.appID || m.EventType != tt.in.EventType || m.IdempotencyKey != tt.key || m.MsgID != out.Id {
				t.Errorf("stored %+v, want app %q, eventType %q, key %q, msg id %q",
					m, tt.appID, tt.in.EventType, tt.key, out.Id)
			}
			if string(m.Payload) != tt.wantPayload {
				t.Errorf("stored payload %s, want %s", m.Payload, tt.wantPayload)
			}
			if m.ReceivedAt.IsZero() {
				t.Error("ReceivedAt is zero")
			}
		})
	}
	if n := len(s.Messages()); n != len(tests) {
		t.Errorf("Messages() = %d, want %d", n, len(tests))
	}
}

func TestMessageOutPayloadFollowsWithContent(t *testing.T) {
	s := New(t)
	tests := []struct {
		query       string
		wantPayload string
	}{
		{query: "", wantPayload: `{"n":1}`},
		{query: "?with_content=true", wantPayload: `{"n":1}`},
		{query: "?with_content=false", wantPayload: `{}`},
	}
	for i, tt := range tests {
		t.Run("query="+tt.query, func(t *testing.T) {
			r := do(t, s.URL(), request{
				path: "/api/v1/app/app_1/msg" + tt.query,
				auth: "Bearer test-token",
				body: messageBody("user.signup", fmt.Sprintf("evt-%d", i)),
			})
			if r.status != http.StatusAccepted {
				t.Fatalf("status %d (%s), want 202", r.status, r.body)
			}
			var out struct {
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			if string(out.Payload) != tt.wantPayload {
				t.Errorf("payload %s, want %s", out.Payload, tt.wantPayload)
			}
		})
	}
}

func TestIdempotencyKeyReplaysFirstSuccess(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()
	key := "same-key"
	opts := &svix.MessageCreateOptions{IdempotencyKey: &key}

	first, err := client.Message.Create(ctx, "app_1", rawMessageIn("user.signup", "evt-1", `{"a":1}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	// A different body under the same key still gets the first answer.
	second, err := client.Message.Create(ctx, "app_1", rawMessageIn("user.other", "evt-2", `{"b":2}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Id != first.Id || second.EventType != first.EventType || !second.Timestamp.Equal(first.Timestamp) {
		t.Errorf("replayed %+v, want %+v", second, first)
	}
	if got := s.Messages(); len(got) != 1 || got[0].MsgID != first.Id {
		t.Errorf("Messages() = %+v, want only %s", got, first.Id)
	}
	if got := s.Attempts(); got != 2 {
		t.Errorf("Attempts() = %d, want 2", got)
	}

	// Keys are scoped per application.
	other, err := client.Message.Create(ctx, "app_2", rawMessageIn("user.signup", "evt-1", `{"a":1}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	if other.Id == first.Id {
		t.Errorf("app_2 got app_1's replayed answer %s", other.Id)
	}
}

func TestFailedAnswersAreNotReplayed(t *testing.T) {
	s, url := newPlainServer(t, Options{})
	s.Script(Response{Status: http.StatusServiceUnavailable})

	if r := postMessage(t, url, "app_1", "key-1", messageBody("user.signup", "evt-1")); r.status != http.StatusServiceUnavailable {
		t.Fatalf("first status %d, want 503", r.status)
	}
	if r := postMessage(t, url, "app_1", "key-1", messageBody("user.signup", "evt-1")); r.status != http.StatusAccepted {
		t.Fatalf("retry status %d (%s), want 202", r.status, r.body)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("stored %d messages, want 1", n)
	}
}

func TestRepeatedEventIDConflicts(t *testing.T) {
	tests := []struct {
		name      string
		secondKey string
	}{
		{name: "different idempotency key", secondKey: "key-2"},
		{name: "no idempotency key", secondKey: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			if r := postMessage(t, s.URL(), "app_1", "key-1", messageBody("user.signup", "evt-1")); r.status != http.StatusAccepted {
				t.Fatalf("first status %d (%s), want 202", r.status, r.body)
			}
			r := postMessage(t, s.URL(), "app_1", tt.secondKey, messageBody("user.signup", "evt-1"))
			if r.status != http.StatusConflict {
				t.Fatalf("second status %d (%s), want 409", r.status, r.body)
			}
			if code, _ := errorBody(t, r); code != "conflict" {
				t.Errorf("code %q, want conflict", code)
			}
			if n := len(s.MessagesFor("evt-1")); n != 1 {
				t.Errorf("stored %d messages for evt-1, want 1", n)
			}
			// The same eventId is free in another application.
			if r := postMessage(t, s.URL(), "app_2", tt.secondKey, messageBody("user.signup", "evt-1")); r.status != http.StatusAccepted {
				t.Errorf("other app status %d (%s), want 202", r.status, r.body)
			}
		})
	}
}

func TestSDKSeesConflict(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	in := rawMessageIn("user.signup", "evt-1", `{"a":1}`)
	if _, err := client.Message.Create(context.Background(), "app_1", in, nil); err != nil {
		t.Fatal(err)
	}
	// Without an explicit key the SDK sends a fresh "auto_" key each time.
	_, err := client.Message.Create(context.Background(), "app_1", in, nil)
	if got := sdkStatus(err); got != http.StatusConflict {
		t.Fatalf("second Create: %v (status %d), want 409", err, got)
	}
}

func TestScriptedResponses(t *testing.T) {
	tests := []struct {
		name           string
		script         []Response
		wantStatuses   []int
		wantRetryAfter []string
		wantStored     int
	}{
		{
			name:           "429 with Retry-After then normal",
			script:         []Response{{Status: http.StatusTooManyRequests, RetryAfter: "2"}},
			wantStatuses:   []int{429, 202},
			wantRetryAfter: []string{"2", ""},
			wantStored:     1,
		},
		{
			name:           "500",
			script:         []Response{{Status: http.StatusInternalServerError}},
			wantStatuses:   []int{500, 202},
			wantRetryAfter: []string{"", ""},
			wantStored:     1,
		},
		{
			name:           "503 twice in order",
			script:         []Response{{Status: 503, RetryAfter: "1"}, {Status: 502}},
			wantStatuses:   []int{503, 502, 202},
			wantRetryAfter: []string{"1", "", ""},
			wantStored:     1,
		},
		{
			name:           "delay only handles normally",
			script:         []Response{{Delay: 5 * time.Millisecond}},
			wantStatuses:   []int{202},
			wantRetryAfter: []string{""},
			wantStored:     1,
		},
		{
			name:           "delayed failure",
			script:         []Response{{Status: 503, Delay: 5 * time.Millisecond}},
			wantStatuses:   []int{503, 202},
			wantRetryAfter: []string{"", ""},
			wantStored:     1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.Script(tt.script...)
			for i, want := range tt.wantStatuses {
				r := postMessage(t, s.URL(), "app_1", "key-1", messageBody("user.signup", "evt-1"))
				if r.status != want {
					t.Fatalf("request %d: status %d (%s), want %d", i, r.status, r.body, want)
				}
				if got := r.header.Get("Retry-After"); got != tt.wantRetryAfter[i] {
					t.Errorf("request %d: Retry-After %q, want %q", i, got, tt.wantRetryAfter[i])
				}
				if want >= 400 {
					if code, detail := errorBody(t, r); code == "" || detail == "" {
						t.Errorf("request %d: error body %s lacks code or detail", i, r.body)
					}
				}
			}
			if got := len(s.Messages()); got != tt.wantStored {
				t.Errorf("stored %d messages, want %d", got, tt.wantStored)
			}
			if got := s.Attempts(); got != len(tt.wantStatuses) {
				t.Errorf("Attempts() = %d, want %d", got, len(tt.wantStatuses))
			}
		})
	}
}

func TestSDKRetriesScripted500(t *testing.T) {
	s := New(t)
	s.Script(Response{Status: http.StatusInternalServerError})
	u := s.URL()
	// The SDK's default schedule retries 5xx answers.
	client, err := svix.New("test-token", &svix.SvixOptions{ServerUrl: mustParseURL(t, u)})
	if err != nil {
		t.Fatal(err)
	}
	key := "key-1"
	out, err := client.Message.Create(context.Background(), "app_1",
		rawMessageIn("user.signup", "evt-1", `{"a":1}`), &svix.MessageCreateOptions{IdempotencyKey: &key})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := s.Attempts(); got != 2 {
		t.Errorf("Attempts() = %d, want 2", got)
	}
	if got := s.Messages(); len(got) != 1 || got[0].MsgID != out.Id {
		t.Errorf("Messages() = %+v, want one with id %s", got, out.Id)
	}
}

func TestSetDefaultFailsUntilReset(t *testing.T) {
	s, url := newPlainServer(t, Options{})
	s.SetDefault(Response{Status: http.StatusServiceUnavailable, RetryAfter: "5"})
	for i := range 3 {
		r := postMessage(t, url, "app_1", "", messageBody("user.signup", "evt-1"))
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "5" {
			t.Fatalf("request %d: status %d, Retry-After %q; want 503, 5", i, r.status, r.header.Get("Retry-After"))
		}
	}
	s.SetDefault(Response{})
	if r := postMessage(t, url, "app_1", "", messageBody("user.signup", "evt-1")); r.status != http.StatusAccepted {
		t.Fatalf("after reset: status %d, want 202", r.status)
	}
	if got := s.Attempts(); got != 4 {
		t.Errorf("Attempts() = %d, want 4", got)
	}
}

func TestFailRandomlyIsReproducible(t *testing.T) {
	statuses := func(seed int64) []int {
		t.Helper()
		s, url := newPlainServer(t, Options{})
		s.FailRandomly(seed, Fault{Rate: 0.5, Response: Response{Status: http.StatusServiceUnavailable}})
		var got []int
		for i := range 40 {
			got = append(got, postMessage(t, url, "app_1", "", messageBody("user.signup", fmt.Sprintf("evt-%d", i))).status)
		}
		s.FailRandomly(0)
		if r := postMessage(t, url, "app_1", "", messageBody("user.signup", "evt-off")); r.status != http.StatusAccepted {
			t.Errorf("with no faults: status %d, want 202", r.status)
		}
		return got
	}

	first, second := statuses(7), statuses(7)
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("same seed gave different outcomes:\n%v\n%v", first, second)
	}
	counts := map[int]int{}
	for _, st := range first {
		counts[st]++
	}
	if counts[http.StatusAccepted] == 0 || counts[http.StatusServiceUnavailable] == 0 || len(counts) != 2 {
		t.Errorf("outcomes %v, want a mix of 202 and 503", counts)
	}
}

func TestFailRandomlyMixesFaultsAndTalliesAnswers(t *testing.T) {
	s, url := newPlainServer(t, Options{})
	started := time.Now()
	s.FailRandomly(3,
		Fault{Rate: 0.2, Response: Response{Status: http.StatusInternalServerError}},
		Fault{Rate: 0.1, Response: Response{Status: http.StatusTooManyRequests, RetryAfter: "1"}},
		Fault{Rate: 0.1, Response: Response{Delay: time.Millisecond}})
	const n = 400
	got := map[int]int{}
	for i := range n {
		r := postMessage(t, url, "app_1", "", messageBody("user.signup", fmt.Sprintf("evt-%d", i)))
		got[r.status]++
		if r.status == http.StatusTooManyRequests && r.header.Get("Retry-After") != "1" {
			t.Fatalf("429 with Retry-After %q, want 1", r.header.Get("Retry-After"))
		}
	}
	tally := s.Tally()
	if !maps.Equal(tally.ByStatus, got) {
		t.Errorf("Tally().ByStatus = %v, the client saw %v", tally.ByStatus, got)
	}
	// Each share is drawn independently; with n = 400 every count lies well
	// inside half to one and a half times its expectation.
	for _, c := range []struct {
		name  string
		count int
		rate  float64
	}{
		{"500", got[http.StatusInternalServerError], 0.2},
		{"429", got[http.StatusTooManyRequests], 0.1},
		{"delayed", tally.Delayed, 0.1},
	} {
		if want := c.rate * n; float64(c.count) < want/2 || float64(c.count) > want*1.5 {
			t.Errorf("%s: %d of %d, want about %.0f", c.name, c.count, n, want)
		}
	}
	if got[http.StatusAccepted]+got[http.StatusInternalServerError]+got[http.StatusTooManyRequests] != n {
		t.Errorf("answers %v: a delayed request must still be answered normally (202)", got)
	}
	if tally.Last.Before(started) || s.Attempts() != n {
		t.Errorf("Tally().Last = %v (test started %v), Attempts() = %d, want %d", tally.Last, started, s.Attempts(), n)
	}
}

func TestDelayStopsWhenClientGoesAway(t *testing.T) {
	s, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Script(Response{Delay: time.Hour})
	arrived := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		s.ServeHTTP(w, r)
	}))

	ctx, cancel := context.WithCancel(context.Background())
	clientErr := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/api/v1/app/app_1/msg",
			strings.NewReader(messageBody("user.signup", "evt-1")))
		if err != nil {
			clientErr <- err
			return
		}
		req.Header.Set("Authorization", "Bearer test-token")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()

	<-arrived
	cancel()
	if err := <-clientErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context.Canceled", err)
	}
	// Close waits for running handlers: it returns promptly only if the
	// delayed handler stopped waiting.
	closed := make(chan struct{})
	go func() {
		hs.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("delayed handler still running after the client went away")
	}
	if got := s.Attempts(); got != 1 {
		t.Errorf("Attempts() = %d, want 1", got)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("stored %d messages, want 0", n)
	}
}

func TestAuthorization(t *testing.T) {
	tests := []struct {
		name       string
		token      string // configured token
		auth       string // Authorization header sent
		wantStatus int
	}{
		{name: "missing", auth: "", wantStatus: http.StatusUnauthorized},
		{name: "not bearer", auth: "Basic dXNlcjpwYXNz", wantStatus: http.StatusUnauthorized},
		{name: "empty bearer", auth: "Bearer ", wantStatus: http.StatusUnauthorized},
		{name: "any token accepted", auth: "Bearer whatever", wantStatus: http.StatusAccepted},
		{name: "wrong token", token: "secret", auth: "Bearer other", wantStatus: http.StatusUnauthorized},
		{name: "right token", token: "secret", auth: "Bearer secret", wantStatus: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := newPlainServer(t, Options{Token: tt.token})
			r := do(t, url, request{
				path: "/api/v1/app/app_1/msg",
				auth: tt.auth,
				body: messageBody("user.signup", "evt-1"),
			})
			if r.status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if code, _ := errorBody(t, r); code != "authentication_failed" {
					t.Errorf("code %q, want authentication_failed", code)
				}
				if n := len(s.Messages()); n != 0 {
					t.Errorf("stored %d messages, want 0", n)
				}
			}
		})
	}
}

func TestSpecViolationsAreReported(t *testing.T) {
	tests := []struct {
		name      string
		appID     string
		query     string
		body      string
		wantInMsg string
	}{
		{
			name:      "eventType with a space",
			appID:     "app_1",
			body:      `{"eventType":"user signup","payload":{}}`,
			wantInMsg: "eventType",
		},
		{
			name:      "missing payload",
			appID:     "app_1",
			body:      `{"eventType":"user.signup"}`,
			wantInMsg: "payload",
		},
		{
			name:      "eventId with a slash",
			appID:     "app_1",
			body:      `{"eventType":"user.signup","eventId":"a/b","payload":{}}`,
			wantInMsg: "eventId",
		},
		{
			name:      "with_content not a boolean",
			appID:     "app_1",
			query:     "?with_content=maybe",
			body:      `{"eventType":"user.signup","payload":{}}`,
			wantInMsg: "with_content",
		},
		{
			name:      "app id with a colon",
			appID:     "app:1",
			body:      `{"eventType":"user.signup","payload":{}}`,
			wantInMsg: "app_id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &recordingTB{TB: t}
			s := New(fake)
			r := do(t, s.URL(), request{
				path: "/api/v1/app/" + tt.appID + "/msg" + tt.query,
				auth: "Bearer test-token",
				body: tt.body,
			})
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d (%s), want 422", r.status, r.body)
			}
			var body httpValidationError
			if err := json.Unmarshal(r.body, &body); err != nil || len(body.Detail) == 0 {
				t.Errorf("422 body %s: want a non-empty detail list (err %v)", r.body, err)
			}
			errs := fake.Errors()
			if len(errs) != 1 {
				t.Fatalf("Errorf called %d times, want once: %q", len(errs), errs)
			}
			if !strings.Contains(errs[0], tt.wantInMsg) {
				t.Errorf("violation %q does not mention %q", errs[0], tt.wantInMsg)
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("stored %d messages, want 0", n)
			}
		})
	}
}

func TestSDKBadRequestIsReported(t *testing.T) {
	fake := &recordingTB{TB: t}
	s := New(fake)
	client := newSDKClient(t, s.URL(), "test-token")
	in := rawMessageIn("user.signup", "evt-1", `{"a":1}`)
	in.Payload = nil // the SDK sends "payload":null

	_, err := client.Message.Create(context.Background(), "app_1", in, nil)
	if got := sdkStatus(err); got != http.StatusUnprocessableEntity {
		t.Fatalf("Create: %v (status %d), want 422", err, got)
	}
	if errs := fake.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "payload") {
		t.Errorf("violations %q, want one about payload", errs)
	}
}

func TestValidRequestsReportNothing(t *testing.T) {
	fake := &recordingTB{TB: t}
	s := New(fake)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()
	contentType := "text/plain"
	withHeaders := svix.NewMessageInRaw("user.signup", "plain text", &contentType)
	full := rawMessageIn("user.signup", "evt-full", `{"a":1}`)
	full.Channels = []string{"project_1"}
	full.Tags = []string{"tag-1"}

	if err := client.Health.Get(ctx); err != nil {
		t.Errorf("Health.Get: %v", err)
	}
	for _, in := range []models.MessageIn{*withHeaders, full} {
		if _, err := client.Message.Create(ctx, "app_1", in, nil); err != nil {
			t.Errorf("Create(%+v): %v", in, err)
		}
	}
	if errs := fake.Errors(); len(errs) != 0 {
		t.Errorf("unexpected violations: %q", errs)
	}
}

func TestHealthAndUnknownRoutes(t *testing.T) {
	s := New(t)
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		wantStatus int
	}{
		{name: "health", method: http.MethodGet, path: "/api/v1/health", auth: "Bearer t", wantStatus: http.StatusNoContent},
		{name: "health with slash", method: http.MethodGet, path: "/api/v1/health/", wantStatus: http.StatusNoContent},
		{name: "unknown path", method: http.MethodGet, path: "/api/v1/app/app_1/endpoint", auth: "Bearer t", wantStatus: http.StatusNotFound},
		{name: "list messages", method: http.MethodGet, path: "/api/v1/app/app_1/msg", auth: "Bearer t", wantStatus: http.StatusNotFound},
		{name: "nested app id", method: http.MethodPost, path: "/api/v1/app/a/b/msg", auth: "Bearer t", wantStatus: http.StatusNotFound},
		{name: "health POST", method: http.MethodPost, path: "/api/v1/health", wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s.URL(), request{method: tt.method, path: tt.path, auth: tt.auth})
			if r.status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusNotFound {
				if code, _ := errorBody(t, r); code != "not_found" {
					t.Errorf("code %q, want not_found", code)
				}
			}
		})
	}
	if got := s.Attempts(); got != 0 {
		t.Errorf("Attempts() = %d, want 0", got)
	}
}

func TestConcurrentCreates(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	const workers, perWorker = 8, 10
	sharedKey := "shared-key"

	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*2)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				eventID := fmt.Sprintf("evt-%d-%d", w, i)
				if _, err := client.Message.Create(context.Background(), "app_1",
					rawMessageIn("user.signup", eventID, `{"a":1}`), nil); err != nil {
					errs <- fmt.Errorf("%s: %w", eventID, err)
				}
				// Every worker also sends the same idempotent request.
				if _, err := client.Message.Create(context.Background(), "app_2",
					rawMessageIn("user.signup", "evt-shared", `{"a":1}`),
					&svix.MessageCreateOptions{IdempotencyKey: &sharedKey}); err != nil {
					errs <- fmt.Errorf("shared: %w", err)
				}
				_ = s.Messages()
				_ = s.Attempts()
			}
		})
	}
	got := s.WaitForMessages(t, workers*perWorker+1, 10*time.Second)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(got) != workers*perWorker+1 {
		t.Errorf("got %d messages, want %d", len(got), workers*perWorker+1)
	}
	if n := len(s.MessagesFor("evt-shared")); n != 1 {
		t.Errorf("stored %d idempotent messages, want 1", n)
	}
	if got := s.Attempts(); got != 2*workers*perWorker {
		t.Errorf("Attempts() = %d, want %d", got, 2*workers*perWorker)
	}
}

func TestWaitForMessagesTimesOut(t *testing.T) {
	s, _ := newPlainServer(t, Options{})
	fake := &recordingTB{TB: t}
	if got := s.WaitForMessages(fake, 1, 10*time.Millisecond); got != nil {
		t.Errorf("got %v, want nil", got)
	}
	if fatals := fake.Fatals(); len(fatals) != 1 {
		t.Errorf("Fatalf called %d times, want once", len(fatals))
	}
}

func TestReset(t *testing.T) {
	s, url := newPlainServer(t, Options{})
	postMessage(t, url, "app_1", "key-1", messageBody("user.signup", "evt-1"))
	s.Script(Response{Status: 500})
	s.SetDefault(Response{Status: 503})
	s.FailRandomly(1, Fault{Rate: 1, Response: Response{Status: 502}})

	s.Reset()
	if n, a := len(s.Messages()), s.Attempts(); n != 0 || a != 0 {
		t.Fatalf("after Reset: %d messages, %d attempts; want 0, 0", n, a)
	}
	// The same key and eventId are accepted afresh, with no failures left.
	if r := postMessage(t, url, "app_1", "key-1", messageBody("user.signup", "evt-1")); r.status != http.StatusAccepted {
		t.Fatalf("status %d (%s), want 202", r.status, r.body)
	}
}

func TestOnMessage(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	_, url := newPlainServer(t, Options{OnMessage: func(m Message) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m.EventID)
	}})
	postMessage(t, url, "app_1", "key-1", messageBody("user.signup", "evt-1"))
	postMessage(t, url, "app_1", "key-1", messageBody("user.signup", "evt-1")) // replay
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[evt-1]" {
		t.Errorf("OnMessage saw %v, want [evt-1]", seen)
	}
}

// appIDPattern is ApplicationOut.id's pattern in the OpenAPI document.
var appIDPattern = regexp.MustCompile(`^app_[A-Za-z0-9]{27}$`)

func TestListApplications(t *testing.T) {
	fake := &recordingTB{TB: t}
	s := New(fake)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()
	limit := func(n uint64) *svix.ApplicationListOptions { return &svix.ApplicationListOptions{Limit: &n} }

	empty, err := client.Application.List(ctx, limit(1))
	if err != nil || len(empty.Data) != 0 || !empty.Done {
		t.Fatalf("List before any message = %+v, %v; want no applications, done", empty, err)
	}
	for i, app := range []string{"usr_b", "usr_a", "usr_b"} {
		if _, err := client.Message.Create(ctx, app, rawMessageIn("user.signup", fmt.Sprintf("evt-%d", i), `{}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	all, err := client.Application.List(ctx, limit(10))
	if err != nil || len(all.Data) != 2 || !all.Done {
		t.Fatalf("List(limit 10) = %+v, %v; want two applications, done", all, err)
	}
	uids := map[string]bool{}
	for i, a := range all.Data {
		if !appIDPattern.MatchString(a.Id) || a.Uid == nil || a.CreatedAt.IsZero() {
			t.Errorf("application %+v: want an app_ id, a uid and a creation time", a)
			continue
		}
		uids[*a.Uid] = true
		if i > 0 && all.Data[i-1].Id >= a.Id {
			t.Errorf("applications not in id order: %s before %s", all.Data[i-1].Id, a.Id)
		}
	}
	if !uids["usr_a"] || !uids["usr_b"] {
		t.Errorf("uids %v, want usr_a and usr_b", uids)
	}
	one, err := client.Application.List(ctx, limit(1))
	if err != nil || len(one.Data) != 1 || one.Done || one.Data[0].Id != all.Data[0].Id {
		t.Errorf("List(limit 1) = %+v, %v; want the first application, not done", one, err)
	}
	if errs := fake.Errors(); len(errs) != 0 {
		t.Errorf("violations: %q", errs)
	}
}

func TestSetTokenRevokesTheOldOne(t *testing.T) {
	s, url := newPlainServer(t, Options{Token: "old"})
	ctx := context.Background()
	oldClient, newClient := newSDKClient(t, url, "old"), newSDKClient(t, url, "new")
	if _, err := oldClient.Application.List(ctx, nil); err != nil {
		t.Fatalf("List with the configured token: %v", err)
	}
	if _, err := newClient.Application.List(ctx, nil); sdkStatus(err) != http.StatusUnauthorized {
		t.Fatalf("List with another token: %v, want 401", err)
	}
	s.SetToken("new")
	if _, err := oldClient.Application.List(ctx, nil); sdkStatus(err) != http.StatusUnauthorized {
		t.Errorf("List with the revoked token: %v, want 401", err)
	}
	if _, err := oldClient.Message.Create(ctx, "app_1", rawMessageIn("user.signup", "evt-1", `{}`), nil); sdkStatus(err) != http.StatusUnauthorized {
		t.Errorf("Create with the revoked token: %v, want 401", err)
	}
	if _, err := newClient.Application.List(ctx, nil); err != nil {
		t.Errorf("List with the new token: %v", err)
	}
}
