package webhook_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/webhook"
)

// The Standard Webhooks test vector, from TestWebhookSign in
// https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/go/webhook_test.go
// (the Svix SDKs' tests carry the same one, e.g. go/webhook_test.go in
// github.com/svix/svix-webhooks).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignStandardWebhooksVector(t *testing.T) {
	got, err := webhook.Sign([]string{vectorSecret}, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Errorf("Sign = %q, want %q", got, vectorSignature)
	}
}

func TestSignOneEntryPerSecretInOrder(t *testing.T) {
	secrets := testSecrets(3)
	ts := time.Unix(1761000000, 0)
	body := []byte(`{"id":"evt_1","type":"user.signed_up"}`)
	got, err := webhook.Sign(secrets, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range secrets {
		one, err := webhook.Sign([]string{s}, "msg_1", ts, body)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, one)
	}
	if got != strings.Join(want, " ") {
		t.Errorf("Sign with 3 secrets = %q, want the single-secret entries joined: %q", got, strings.Join(want, " "))
	}
	if want[0] == want[1] || want[1] == want[2] {
		t.Errorf("different secrets gave equal entries: %q", want)
	}
}

func TestSignSecretLengths(t *testing.T) {
	for _, n := range []int{webhook.MinSecretBytes, 32, webhook.MaxSecretBytes} {
		secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(n)}, n))
		if _, err := webhook.Sign([]string{secret}, "msg_1", time.Unix(1, 0), nil); err != nil {
			t.Errorf("a secret of %d bytes: %v", n, err)
		}
	}
}

// malformedSecrets are secrets Sign, Verify and NewReceiver refuse; those
// long enough hold "SECRETMATERIAL", so that tests can check that errors
// do not quote them.
var malformedSecrets = map[string]string{
	"no prefix":        base64.StdEncoding.EncodeToString([]byte("SECRETMATERIAL-0123456789abcdef")),
	"wrong prefix":     "whsk_" + base64.StdEncoding.EncodeToString([]byte("SECRETMATERIAL-0123456789abcdef")),
	"not base64":       "whsec_SECRETMATERIAL!!!!0123456789abcdef",
	"raw base64":       "whsec_" + base64.RawStdEncoding.EncodeToString([]byte("SECRETMATERIAL-0123456789abcdef0")),
	"url base64":       "whsec_" + base64.URLEncoding.EncodeToString([]byte("SECRETMATERIAL\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")),
	"23 bytes":         "whsec_" + base64.StdEncoding.EncodeToString([]byte("SECRETMATERIAL-012345678")[:23]),
	"65 bytes":         "whsec_" + base64.StdEncoding.EncodeToString([]byte("SECRETMATERIAL-"+strings.Repeat("x", 50))),
	"far too long":     "whsec_" + base64.StdEncoding.EncodeToString([]byte("SECRETMATERIAL-"+strings.Repeat("x", 500))),
	"empty":            "whsec_",
	"prefix too short": "whse",
}

func TestSignMalformedSecret(t *testing.T) {
	for name, secret := range malformedSecrets {
		t.Run(name, func(t *testing.T) {
			secrets := append(testSecrets(1), secret)
			sig, err := webhook.Sign(secrets, "msg_1", time.Unix(1, 0), []byte("{}"))
			if !errors.Is(err, webhook.ErrMalformedSecret) || sig != "" {
				t.Fatalf("Sign = %q, %v; want ErrMalformedSecret", sig, err)
			}
			if !strings.Contains(err.Error(), "secret 2 of 2") {
				t.Errorf("error %q does not name the secret's position", err)
			}
			if strings.Contains(err.Error(), "SECRETMATERIAL") {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
}

func TestSignNoSecrets(t *testing.T) {
	if _, err := webhook.Sign(nil, "msg_1", time.Unix(1, 0), nil); !errors.Is(err, webhook.ErrNoSecrets) {
		t.Errorf("Sign without secrets: %v, want ErrNoSecrets", err)
	}
}

func TestHeaders(t *testing.T) {
	secrets := testSecrets(2)
	ts := time.Unix(1761000000, 999_000_000)
	body := []byte(`{"id":"evt_1"}`)
	h := http.Header{"Webhook-Signature": {"v1,stale"}, "X-Other": {"kept"}}
	if err := webhook.Headers(h, webhook.UserAgent("1.2.3"), secrets, "msg_1", ts, body); err != nil {
		t.Fatal(err)
	}
	sig, err := webhook.Sign(secrets, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Webhook-Id":        {"msg_1"},
		"Webhook-Timestamp": {"1761000000"},
		"Webhook-Signature": {sig},
		"Content-Type":      {"application/json"},
		"User-Agent":        {"gwook/1.2.3"},
		"X-Other":           {"kept"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
	// The values share storage; setting one again must not change another.
	h.Set("Webhook-Id", "msg_2")
	h.Add("Webhook-Timestamp", "1")
	if h.Get("Webhook-Timestamp") != "1761000000" || h.Get("Webhook-Signature") != sig || h.Get("Content-Type") != "application/json" {
		t.Errorf("changing one header changed another: %v", h)
	}
}

func TestHeadersLeavesHeaderOnError(t *testing.T) {
	h := http.Header{"Webhook-Id": {"msg_0"}}
	err := webhook.Headers(h, "gwook/dev", []string{"whsec_short"}, "msg_1", time.Unix(1, 0), nil)
	if !errors.Is(err, webhook.ErrMalformedSecret) {
		t.Fatalf("Headers with a malformed secret: %v", err)
	}
	if !reflect.DeepEqual(h, http.Header{"Webhook-Id": {"msg_0"}}) {
		t.Errorf("Headers changed the header on error: %v", h)
	}
}
