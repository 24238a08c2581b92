package svix

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	svixgo "github.com/svix/svix-webhooks/go"

	"github.com/gwook/gwook/internal/event"
)

// capturedRequest is what a server saw of one request.
type capturedRequest struct {
	method, path, query string
	header              http.Header
	body                any
}

// TestMessageRequestIsTheSDKs sends the same event through the SDK's
// Message.Create and through messageCreator, and compares what the server
// received: method, URL (under a server URL with a path), headers and the
// body as JSON.
func TestMessageRequestIsTheSDKs(t *testing.T) {
	seen := make(chan capturedRequest, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("body %q: %v", raw, err)
		}
		seen <- capturedRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"msg_2","eventType":"t","payload":{},"timestamp":"2026-01-02T15:04:05Z"}`)
	}))
	defer srv.Close()
	serverURL, _ := url.Parse(srv.URL + "/svix")
	const token = "sk_test_token.eu"
	sdk, err := svixgo.New(token, &svixgo.SvixOptions{ServerUrl: serverURL, RetrySchedule: &[]time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := newMessageCreator(srv.Client().Transport, token, serverURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []event.Notification{
		testEvent,
		{ID: "evt_2", Type: "invoice.paid", Raw: []byte(`{"s":"<a href=\"x\">&amp;</a> é ✓ \u2028 \\ \/","n":1.50,"e":"\u00e9"}`)},
	} {
		withoutContent := false
		msg := svixgo.NewMessageInRaw(n.Type, string(n.Raw), nil)
		msg.EventId = &n.ID
		if _, err := sdk.Message.Create(context.Background(), "app_1", *msg,
			&svixgo.MessageCreateOptions{IdempotencyKey: &n.ID, WithContent: &withoutContent}); err != nil {
			t.Fatal(err)
		}
		want := <-seen
		id, err := mc.create(context.Background(), "app_1", n.ID, messageBody(&n))
		if err != nil || id != "msg_2" {
			t.Fatalf("create = %q, %v", id, err)
		}
		got := <-seen
		if got.method != want.method || got.path != want.path || got.query != want.query {
			t.Errorf("%s %s?%s, the SDK's %s %s?%s", got.method, got.path, got.query, want.method, want.path, want.query)
		}
		if !reflect.DeepEqual(got.body, want.body) {
			t.Errorf("body %v\nthe SDK's %v", got.body, want.body)
		}
		for _, name := range []string{"Authorization", "User-Agent", "Content-Type", "Idempotency-Key"} {
			if got.header.Get(name) != want.header.Get(name) || got.header.Get(name) == "" {
				t.Errorf("%s: %q, the SDK's %q", name, got.header.Get(name), want.header.Get(name))
			}
		}
		if _, err := strconv.ParseUint(got.header.Get("Svix-Req-Id"), 10, 64); err != nil {
			t.Errorf("svix-req-id %q: %v", got.header.Get("Svix-Req-Id"), err)
		}
	}
}

// TestMessageCreatorFollowsTheSDKsRegion: without a server URL, messages go
// to the regional API the SDK picks from the token.
func TestMessageCreatorFollowsTheSDKsRegion(t *testing.T) {
	for token, want := range map[string]string{
		"sk_test_token.eu": "https://api.eu.svix.com",
		"sk_test_token.us": "https://api.us.svix.com",
		"sk_test_token":    "https://api.svix.com",
	} {
		mc, err := newMessageCreator(http.DefaultTransport, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		if mc.base != want || mc.header.Get("Authorization") != "Bearer "+token {
			t.Errorf("token %s: base %q, authorization %q; want %q", token, mc.base, mc.header.Get("Authorization"), want)
		}
	}
}
