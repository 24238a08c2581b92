package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/webhook"
)

// FuzzVerify gives Verify arbitrary headers and bodies: it never panics,
// refuses with a *VerifyError, and accepts what Sign signed with the
// fuzzed id, timestamp and body.
func FuzzVerify(f *testing.F) {
	secrets := testSecrets(2)
	now := time.Unix(vectorTimestamp, 0)
	f.Add(vectorMsgID, strconv.Itoa(vectorTimestamp), vectorSignature, []byte(vectorPayload), int64(vectorTimestamp))
	f.Add("msg_1", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v2,x v1,", []byte("{}"), int64(0))
	f.Add("", "", "", []byte(nil), int64(-1))
	f.Add("m", "-9223372036854775808", "v1", []byte("\x00"), int64(9223372036854775807))
	f.Add("m", "99999999999999999999", " , v1,, ,v1", []byte("x"), int64(-9223372036854775808))
	f.Fuzz(func(t *testing.T, id, timestamp, signature string, body []byte, unix int64) {
		h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {timestamp}, "Webhook-Signature": {signature}}
		for _, s := range [][]string{{vectorSecret}, secrets} {
			if err := webhook.Verify(s, h, body, now, 0); err != nil {
				var verr *webhook.VerifyError
				if !errors.As(err, &verr) {
					t.Fatalf("Verify: %v (%T), want a *VerifyError", err, err)
				}
			}
		}

		if id == "" {
			return
		}
		at := time.Unix(unix, 0)
		sig, err := webhook.Sign(secrets, id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		h = http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(unix, 10)}, "Webhook-Signature": {sig}}
		if err := webhook.Verify(secrets[1:], h, body, at, 0); err != nil {
			t.Fatalf("Verify refuses what Sign signed: %v", err)
		}
	})
}
