package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/webhook"
	"github.com/gwook/gwook/test/gwooktest"
)

// TestDirectDelivery runs Gwook with DELIVERY_BACKEND=direct: an event of
// an application with an endpoint is answered forwarded once queued, and
// the endpoint receives it signed with its secret, under the message id.
func TestDirectDelivery(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{
		"DELIVERY_BACKEND":                "direct",
		"DELIVERY_ALLOW_PRIVATE_NETWORKS": "true",
		"DELIVERY_RETRY_SCHEDULE":         "50ms,100ms",
	}, app.Options{Version: "test"})
	if g.Svix.Attempts() != 0 {
		t.Fatal("Svix was called")
	}
	_, admin := createToken(t, g, store.NewToken{Name: "admin", Scopes: []string{"admin"}})
	call := func(method, path string, body any) map[string]any {
		t.Helper()
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r := g.Post(t, path, http.Header{"Authorization": {"Bearer " + admin}, "Content-Type": {"application/json"}}, raw)
		if r.Status != http.StatusCreated {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	call(http.MethodPost, "/api/v1/applications", map[string]any{"id": "usr_1", "name": "Direct"})
	secret := store.NewEndpointSecret()
	receiver, err := webhook.NewReceiver([]string{secret}, webhook.ReceiverOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(receiver)
	t.Cleanup(srv.Close)
	call(http.MethodPost, "/api/v1/applications/usr_1/endpoints", map[string]any{"url": srv.URL + "/webhooks", "secret": secret})

	body := event(t, "evt_direct_1", "order.paid")
	r := postWithToken(t, g, admin, body)
	var answer struct {
		Outcome       string  `json:"outcome"`
		MessageID     string  `json:"message_id"`
		SvixMessageID *string `json:"svix_message_id"`
	}
	if err := json.Unmarshal(r.Body, &answer); err != nil || r.Status != http.StatusAccepted || answer.Outcome != "forwarded" ||
		answer.SvixMessageID != nil {
		t.Fatalf("the event: %d %s, want 202 forwarded with a message_id and no svix_message_id", r.Status, r.Body)
	}
	got, err := receiver.WaitFor(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Verified() || got[0].ID != answer.MessageID || !bytes.Equal(got[0].Body, body) {
		t.Errorf("received %+v (verified %v), want the event's body under webhook-id %s", got[0], got[0].Verified(), answer.MessageID)
	}
	if ua := got[0].Header.Get("User-Agent"); ua != "gwook/test" {
		t.Errorf("User-Agent %q, want gwook/test", ua)
	}

	// The same event again is a duplicate; an event of an application
	// Gwook does not know has nowhere to go.
	if r := postWithToken(t, g, admin, body); r.Status != http.StatusConflict {
		t.Errorf("the same event again: %d %s, want 409", r.Status, r.Body)
	}
	other := bytes.Replace(event(t, "evt_direct_2", "order.paid"), []byte(`"usr_1"`), []byte(`"usr_unknown"`), 1)
	if r := postWithToken(t, g, admin, other); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"no_application"`)) {
		t.Errorf("an event of an unknown application: %d %s", r.Status, r.Body)
	}
	if g.Svix.Attempts() != 0 {
		t.Errorf("Svix was called %d times with direct delivery", g.Svix.Attempts())
	}
}
