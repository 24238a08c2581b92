package webhook_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/webhook"
)

// post sends body with headers h to url and returns the status and the
// answer's body.
func post(t *testing.T, url string, h http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(answer)
}

func newReceiver(t *testing.T, secrets []string, opts webhook.ReceiverOptions) (*webhook.Receiver, *httptest.Server) {
	t.Helper()
	r, err := webhook.NewReceiver(secrets, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func TestReceiverAcceptsAndRecords(t *testing.T) {
	secrets := testSecrets(2)
	var mu sync.Mutex
	var reported []webhook.Webhook
	r, srv := newReceiver(t, secrets[1:], webhook.ReceiverOptions{Keep: true, OnReceive: func(w webhook.Webhook) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, w)
	}})
	body := []byte(`{"id":"evt_1","type":"user.signed_up"}`)
	signedAt := time.Unix(time.Now().Unix(), 0)
	h := signed(t, secrets, "msg_1", signedAt, body)

	status, answer := post(t, srv.URL+"/webhooks", h, body)
	if status != http.StatusNoContent || answer != "" {
		t.Errorf("answer %d %q, want 204 and no body", status, answer)
	}
	got, err := r.WaitFor(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := got[0]
	if !w.Verified() || w.Err != nil || w.Status != http.StatusNoContent || w.ID != "msg_1" || !w.Timestamp.Equal(signedAt) || !bytes.Equal(w.Body, body) {
		t.Errorf("recorded %+v", w)
	}
	if w.Header.Get("Webhook-Signature") != h.Get("Webhook-Signature") || w.Header.Get("User-Agent") != "gwook/test" {
		t.Errorf("recorded headers %v", w.Header)
	}
	if time.Since(w.At) > time.Minute || w.At.After(time.Now()) {
		t.Errorf("received at %v", w.At)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0].ID != "msg_1" || !reported[0].Verified() {
		t.Errorf("OnReceive was given %+v", reported)
	}
}

func TestReceiverRefuses(t *testing.T) {
	secrets := testSecrets(2)
	now := time.Unix(1761000000, 0)
	r, srv := newReceiver(t, secrets[:1], webhook.ReceiverOptions{Keep: true, Now: func() time.Time { return now }})
	body := []byte(`{"id":"evt_1"}`)
	for i, tc := range []struct {
		name    string
		header  http.Header
		body    []byte
		failure webhook.Failure
	}{
		{"unsigned", http.Header{}, body, webhook.MissingHeader},
		{"bad timestamp", http.Header{"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {"soon"}, "Webhook-Signature": {"v1,x"}}, body, webhook.BadTimestamp},
		{"too old", signed(t, secrets, "msg_1", now.Add(-time.Hour), body), body, webhook.TooOld},
		{"too new", signed(t, secrets, "msg_1", now.Add(time.Hour), body), body, webhook.TooNew},
		{"another secret", signed(t, secrets[1:], "msg_1", now, body), body, webhook.NoMatchingSignature},
		{"tampered body", signed(t, secrets, "msg_1", now, body), []byte(`{"id":"evt_2"}`), webhook.NoMatchingSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := post(t, srv.URL+"/any/path", tc.header, tc.body)
			if status != http.StatusUnauthorized || !strings.HasPrefix(answer, string(tc.failure)) {
				t.Errorf("answer %d %q, want 401 saying %q", status, answer, tc.failure)
			}
			for _, secret := range secrets {
				if strings.Contains(answer, strings.TrimPrefix(secret, "whsec_")) {
					t.Errorf("the answer %q holds a secret", answer)
				}
			}
			got, err := r.WaitFor(i+1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var verr *webhook.VerifyError
			if w := got[i]; w.Verified() || w.Status != http.StatusUnauthorized || !errors.As(w.Err, &verr) || verr.Failure != tc.failure || !bytes.Equal(w.Body, tc.body) {
				t.Errorf("recorded %+v, want the failure %q", w, tc.failure)
			}
		})
	}
}

func TestReceiverStatusOption(t *testing.T) {
	secrets := testSecrets(1)
	for _, status := range []int{200, 410, 500} {
		_, srv := newReceiver(t, secrets, webhook.ReceiverOptions{Status: status})
		body := []byte(`{}`)
		if got, _ := post(t, srv.URL, signed(t, secrets, "msg_1", time.Now(), body), body); got != status {
			t.Errorf("a valid webhook answered %d, want %d", got, status)
		}
		if got, _ := post(t, srv.URL, http.Header{}, body); got != http.StatusUnauthorized {
			t.Errorf("with status %d, an unsigned request answered %d, want 401", status, got)
		}
	}
	for _, status := range []int{99, 199, 600} {
		if _, err := webhook.NewReceiver(secrets, webhook.ReceiverOptions{Status: status}); err == nil {
			t.Errorf("NewReceiver accepts status %d", status)
		}
	}
}

func TestReceiverOnlyTakesPost(t *testing.T) {
	r, srv := newReceiver(t, testSecrets(1), webhook.ReceiverOptions{Keep: true})
	resp, err := http.Get(srv.URL + "/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET answered %d, Allow %q; want 405 allowing POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if got := r.Received(); len(got) != 0 {
		t.Errorf("a GET was recorded: %+v", got)
	}
}

func TestReceiverTooLargeBody(t *testing.T) {
	r, srv := newReceiver(t, testSecrets(1), webhook.ReceiverOptions{Keep: true})
	body := bytes.Repeat([]byte("x"), 16<<20+1)
	status, answer := post(t, srv.URL, http.Header{}, body)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(answer, "body larger than") {
		t.Errorf("answer %d %q, want 413", status, answer)
	}
	if got, err := r.WaitFor(1, 5*time.Second); err != nil || got[0].Verified() || got[0].Status != http.StatusRequestEntityTooLarge {
		t.Errorf("recorded %v, %v", got, err)
	}
}

func TestNewReceiverSecrets(t *testing.T) {
	if _, err := webhook.NewReceiver(nil, webhook.ReceiverOptions{}); !errors.Is(err, webhook.ErrNoSecrets) {
		t.Errorf("NewReceiver without secrets: %v", err)
	}
	for name, secret := range malformedSecrets {
		if _, err := webhook.NewReceiver([]string{secret}, webhook.ReceiverOptions{}); !errors.Is(err, webhook.ErrMalformedSecret) {
			t.Errorf("%s: NewReceiver: %v", name, err)
		}
	}
}

func TestReceiverWaitFor(t *testing.T) {
	secrets := testSecrets(1)
	r, srv := newReceiver(t, secrets, webhook.ReceiverOptions{Keep: true})
	if got, err := r.WaitFor(1, 10*time.Millisecond); err == nil || len(got) != 0 {
		t.Errorf("WaitFor on an empty receiver: %v, %v; want a timeout", got, err)
	}
	body := []byte(`{}`)
	done := make(chan error)
	go func() {
		_, err := r.WaitFor(3, 10*time.Second)
		done <- err
	}()
	for i := range 3 {
		post(t, srv.URL, signed(t, secrets, "msg_"+string(rune('a'+i)), time.Now(), body), body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := r.Received()
	if len(got) != 3 || got[0].ID != "msg_a" || got[2].ID != "msg_c" {
		t.Errorf("Received = %+v", got)
	}

	noKeep, err := webhook.NewReceiver(secrets, webhook.ReceiverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noKeep.WaitFor(1, time.Hour); err == nil {
		t.Error("WaitFor on a receiver that keeps nothing did not fail at once")
	}
}
