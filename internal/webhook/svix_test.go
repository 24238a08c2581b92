package webhook_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/gwook/gwook/internal/webhook"
)

// The official Svix SDK's verifier, which follows the same specification,
// accepts what Headers signs, for each secret of a rotation, and refuses
// a tampered body, id or timestamp. The SDK checks timestamps against the
// real clock, so these webhooks are signed now.
func TestSvixSDKVerifiesSignedWebhooks(t *testing.T) {
	body := []byte(`{"id":"evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C","type":"user.signed_up","data":{"plan":"pro"}}`)
	for _, n := range []int{1, 2} {
		secrets := testSecrets(n)
		h := http.Header{}
		if err := webhook.Headers(h, webhook.UserAgent("test"), secrets, "msg_2mP8a1QxL9vR7tY3nB5cD0eF", time.Now(), body); err != nil {
			t.Fatal(err)
		}
		signedAt, err := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		for i, secret := range secrets {
			wh, err := svix.NewWebhook(secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(body, h); err != nil {
				t.Errorf("%d secrets: the SDK refuses the webhook with secret %d: %v", n, i+1, err)
			}

			tampered := append([]byte(nil), body...)
			tampered[len(tampered)-3] = 'X'
			if err := wh.Verify(tampered, h); err == nil {
				t.Errorf("%d secrets, secret %d: the SDK accepts a tampered body", n, i+1)
			}
			for name, value := range map[string]string{
				webhook.HeaderID:        "msg_other",
				webhook.HeaderTimestamp: strconv.FormatInt(signedAt-1, 10),
			} {
				changed := h.Clone()
				changed.Set(name, value)
				if err := wh.Verify(body, changed); err == nil {
					t.Errorf("%d secrets, secret %d: the SDK accepts a changed %s", n, i+1, name)
				}
			}
		}
		other, err := svix.NewWebhook(testSecrets(3)[2])
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Verify(body, h); err == nil {
			t.Errorf("%d secrets: the SDK accepts the webhook with a secret it was not signed with", n)
		}
	}
}

// Verify accepts what the SDK signs, under the webhook-* headers and under
// the svix-* ones Svix sends by default.
func TestVerifyAcceptsSvixSDKSignatures(t *testing.T) {
	secret := testSecrets(1)[0]
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"evt_1","type":"user.signed_up"}`)
	now := time.Unix(1761000000, 0)
	sig, err := wh.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"Webhook-", "Svix-"} {
		h := http.Header{prefix + "Id": {"msg_1"}, prefix + "Timestamp": {"1761000000"}, prefix + "Signature": {sig}}
		if err := webhook.Verify([]string{secret}, h, body, now, 0); err != nil {
			t.Errorf("%s* headers: %v", prefix, err)
		}
	}
}
