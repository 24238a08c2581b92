package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/webhook"
)

// signed returns the headers of a webhook signed with secrets at
// timestamp.
func signed(t *testing.T, secrets []string, msgID string, timestamp time.Time, body []byte) http.Header {
	t.Helper()
	h := http.Header{}
	if err := webhook.Headers(h, "gwook/test", secrets, msgID, timestamp, body); err != nil {
		t.Fatal(err)
	}
	return h
}

// wantFailure fails t unless err is a *VerifyError for failure whose
// message contains detail.
func wantFailure(t *testing.T, err error, failure webhook.Failure, detail string) {
	t.Helper()
	var verr *webhook.VerifyError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v (%T), want a *VerifyError for %q", err, err, failure)
	}
	if verr.Failure != failure {
		t.Errorf("failure %q (%v), want %q", verr.Failure, err, failure)
	}
	if !strings.Contains(err.Error(), detail) {
		t.Errorf("error %q does not contain %q", err, detail)
	}
}

func TestVerifyStandardWebhooksVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", vectorMsgID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTimestamp))
	h.Set("webhook-signature", vectorSignature)
	now := time.Unix(vectorTimestamp, 0)
	if err := webhook.Verify([]string{vectorSecret}, h, []byte(vectorPayload), now, 0); err != nil {
		t.Errorf("the Standard Webhooks vector does not verify: %v", err)
	}
}

func TestVerifyFailures(t *testing.T) {
	secrets := testSecrets(1)
	now := time.Unix(1761000000, 0)
	body := []byte(`{"id":"evt_1","type":"user.signed_up"}`)
	for _, tc := range []struct {
		name    string
		change  func(h http.Header)
		body    []byte
		failure webhook.Failure
		detail  string
	}{
		{"no id", func(h http.Header) { h.Del("webhook-id") }, body, webhook.MissingHeader, "webhook-id"},
		{"empty id", func(h http.Header) { h.Set("webhook-id", "") }, body, webhook.MissingHeader, "webhook-id"},
		{"no timestamp", func(h http.Header) { h.Del("webhook-timestamp") }, body, webhook.MissingHeader, "webhook-timestamp"},
		{"no signature", func(h http.Header) { h.Del("webhook-signature") }, body, webhook.MissingHeader, "webhook-signature"},
		{"no signed headers", func(h http.Header) {
			h.Del("webhook-id")
			h.Del("webhook-timestamp")
			h.Del("webhook-signature")
		}, body, webhook.MissingHeader, "webhook-id, webhook-timestamp, webhook-signature"},
		{"timestamp not a number", func(h http.Header) { h.Set("webhook-timestamp", "yesterday") }, body, webhook.BadTimestamp, `"yesterday" is not Unix seconds`},
		{"timestamp in milliseconds", func(h http.Header) { h.Set("webhook-timestamp", "1761000000000") }, body, webhook.TooNew, "1761000000000"},
		{"timestamp with a fraction", func(h http.Header) { h.Set("webhook-timestamp", "1761000000.5") }, body, webhook.BadTimestamp, "not Unix seconds"},
		{"timestamp with a plus sign", func(h http.Header) { h.Set("webhook-timestamp", "+1761000000") }, body, webhook.BadTimestamp, "not Unix seconds"},
		{"timestamp beyond int64", func(h http.Header) { h.Set("webhook-timestamp", "99999999999999999999") }, body, webhook.BadTimestamp, "not Unix seconds"},
		{"long bad timestamp is cut", func(h http.Header) { h.Set("webhook-timestamp", strings.Repeat("9x", 100)) }, body, webhook.BadTimestamp, `"... is not Unix seconds`},
		{"too old", func(h http.Header) { h.Set("webhook-timestamp", "1760999699") }, body, webhook.TooOld, "1760999699 is 5m1s before now, more than 5m0s"},
		{"too new", func(h http.Header) { h.Set("webhook-timestamp", "1761000301") }, body, webhook.TooNew, "1761000301 is 5m1s after now, more than 5m0s"},
		{"far past", func(h http.Header) { h.Set("webhook-timestamp", "-9223372036854775808") }, body, webhook.TooOld, "is more than 100 years before now"},
		{"far future", func(h http.Header) { h.Set("webhook-timestamp", "9223372036854775807") }, body, webhook.TooNew, "is more than 100 years after now"},
		{"99 years ago", func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(1761000000-99*365*24*3600)) }, body, webhook.TooOld, "867240h0m0s before now"},
		{"101 years ago", func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(1761000000-101*365*24*3600)) }, body, webhook.TooOld, "more than 100 years before now"},
		{"in 99 years", func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(1761000000+99*365*24*3600)) }, body, webhook.TooNew, "867240h0m0s after now"},
		{"in 101 years", func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(1761000000+101*365*24*3600)) }, body, webhook.TooNew, "more than 100 years after now"},
		{"tampered body", func(h http.Header) {}, []byte(`{"id":"evt_2","type":"user.signed_up"}`), webhook.NoMatchingSignature, "1 v1 entries checked against 1 secrets"},
		{"tampered id", func(h http.Header) { h.Set("webhook-id", "msg_2") }, body, webhook.NoMatchingSignature, "checked"},
		{"tampered timestamp", func(h http.Header) { h.Set("webhook-timestamp", "1761000001") }, body, webhook.NoMatchingSignature, "checked"},
		{"empty body", func(h http.Header) {}, nil, webhook.NoMatchingSignature, "checked"},
		{"only other versions", func(h http.Header) {
			h.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v2,", 1)+" v1a,abc")
		}, body, webhook.NoMatchingSignature, "no v1 entry"},
		{"signature not separated by a comma", func(h http.Header) {
			h.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v1=", 1))
		}, body, webhook.NoMatchingSignature, "no v1 entry"},
		{"signature cut short", func(h http.Header) {
			h.Set("webhook-signature", h.Get("webhook-signature")[:30])
		}, body, webhook.NoMatchingSignature, "1 v1 entries"},
		{"signature of other content", func(h http.Header) {
			other, err := webhook.Sign(secrets, "msg_1", now, []byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			h.Set("webhook-signature", other+" v1,garbage v1,")
		}, body, webhook.NoMatchingSignature, "3 v1 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := signed(t, secrets, "msg_1", now, body)
			tc.change(h)
			wantFailure(t, webhook.Verify(secrets, h, tc.body, now, 0), tc.failure, tc.detail)
		})
	}
}

func TestVerifyHeaderFallbackIsAllOrNothing(t *testing.T) {
	secrets := testSecrets(1)
	now := time.Unix(1761000000, 0)
	svixOnly := http.Header{"Svix-Id": {"msg_1"}}
	wantFailure(t, webhook.Verify(secrets, svixOnly, nil, now, 0), webhook.MissingHeader, "svix-timestamp, svix-signature")

	// With any webhook-* header present, svix-* headers do not fill the
	// missing ones.
	h := signed(t, secrets, "msg_1", now, nil)
	h.Set("Svix-Id", h.Get("Webhook-Id"))
	h.Del("Webhook-Id")
	wantFailure(t, webhook.Verify(secrets, h, nil, now, 0), webhook.MissingHeader, "webhook-id")
}

func TestVerifyRotation(t *testing.T) {
	secrets := testSecrets(3)
	oldSecret, newSecret, unrelated := secrets[0], secrets[1], secrets[2]
	now := time.Unix(1761000000, 0)
	body := []byte(`{"id":"evt_1"}`)
	both := signed(t, []string{oldSecret, newSecret}, "msg_1", now, body)
	onlyNew := signed(t, []string{newSecret}, "msg_1", now, body)
	for _, tc := range []struct {
		name     string
		receiver []string
		header   http.Header
		ok       bool
	}{
		{"signed with both, receiver has the old", []string{oldSecret}, both, true},
		{"signed with both, receiver has the new", []string{newSecret}, both, true},
		{"signed with the new, receiver has both", []string{oldSecret, newSecret}, onlyNew, true},
		{"signed with the new, receiver has the new second", []string{unrelated, newSecret}, onlyNew, true},
		{"signed with the new, receiver has the old", []string{oldSecret}, onlyNew, false},
		{"signed with both, receiver has another", []string{unrelated}, both, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.receiver, tc.header, body, now, 0)
			if tc.ok && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tc.ok {
				wantFailure(t, err, webhook.NoMatchingSignature, "checked")
			}
		})
	}
}

func TestVerifyToleranceEdges(t *testing.T) {
	secrets := testSecrets(1)
	signedAt := time.Unix(1761000000, 0)
	h := signed(t, secrets, "msg_1", signedAt, nil)
	for _, tc := range []struct {
		name      string
		now       time.Time
		tolerance time.Duration
		failure   webhook.Failure // empty: valid
	}{
		{"now", signedAt, 0, ""},
		{"default tolerance later", signedAt.Add(5 * time.Minute), 0, ""},
		{"just past default tolerance later", signedAt.Add(5*time.Minute + time.Nanosecond), 0, webhook.TooOld},
		{"default tolerance earlier", signedAt.Add(-5 * time.Minute), 0, ""},
		{"just past default tolerance earlier", signedAt.Add(-5*time.Minute - time.Nanosecond), 0, webhook.TooNew},
		{"negative tolerance is the default", signedAt.Add(5 * time.Minute), -time.Second, ""},
		{"given tolerance later", signedAt.Add(30 * time.Second), 30 * time.Second, ""},
		{"past given tolerance later", signedAt.Add(31 * time.Second), 30 * time.Second, webhook.TooOld},
		{"given tolerance earlier", signedAt.Add(-30 * time.Second), 30 * time.Second, ""},
		{"past given tolerance earlier", signedAt.Add(-31 * time.Second), 30 * time.Second, webhook.TooNew},
		{"long tolerance", signedAt.Add(72 * time.Hour), 72 * time.Hour, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(secrets, h, nil, tc.now, tc.tolerance)
			if tc.failure == "" {
				if err != nil {
					t.Errorf("Verify: %v", err)
				}
				return
			}
			wantFailure(t, err, tc.failure, "now")
		})
	}
}

func TestVerifySecretsComeFirst(t *testing.T) {
	// A misconfigured receiver hears about its secrets, not about the
	// webhook.
	if err := webhook.Verify(nil, http.Header{}, nil, time.Now(), 0); !errors.Is(err, webhook.ErrNoSecrets) {
		t.Errorf("Verify without secrets: %v, want ErrNoSecrets", err)
	}
	for name, secret := range malformedSecrets {
		err := webhook.Verify([]string{secret}, http.Header{}, nil, time.Now(), 0)
		if !errors.Is(err, webhook.ErrMalformedSecret) {
			t.Errorf("%s: Verify: %v, want ErrMalformedSecret", name, err)
		} else if strings.Contains(err.Error(), "SECRETMATERIAL") {
			t.Errorf("%s: error %q quotes the secret", name, err)
		}
	}
}
