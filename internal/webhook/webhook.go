// Package webhook signs the webhooks Gwook sends and verifies received
// ones, following the Standard Webhooks specification (the scheme Svix
// uses). Each attempt carries the headers webhook-id (the message id, the
// same on every attempt), webhook-timestamp (Unix seconds of the attempt)
// and webhook-signature: space-separated "v1,<base64>" entries, one per
// active endpoint secret, each the HMAC-SHA256 keyed with the secret's
// decoded bytes over "{webhook-id}.{webhook-timestamp}.{body}".
//
// Sign and Headers are the sender's side, Verify and Receiver the
// receiver's. Errors name a malformed secret by its position, never by its
// value.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The headers of a webhook, in the canonical form http.Header keys take.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// SecretPrefix starts every endpoint secret; the standard base64 of the
// key follows it.
const SecretPrefix = "whsec_"

// The length bounds of a secret's key in bytes, as the Standard Webhooks
// specification sets them.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// maxSecretChars is the longest base64 text a valid secret can hold after
// its prefix: MaxSecretBytes bytes with padding.
const maxSecretChars = (MaxSecretBytes + 2) / 3 * 4

// signatureVersion starts every signature entry.
const signatureVersion = "v1,"

// signatureEntryLen is the length of one signature entry: "v1," and the
// base64 of a SHA-256 HMAC.
const signatureEntryLen = len(signatureVersion) + (sha256.Size+2)/3*4

// ErrMalformedSecret is wrapped by the error for a secret that is not
// SecretPrefix followed by the standard base64 of MinSecretBytes to
// MaxSecretBytes bytes.
var ErrMalformedSecret = errors.New("malformed webhook secret")

// ErrNoSecrets is the error for signing or verifying with no secret at
// all.
var ErrNoSecrets = errors.New("no webhook secret")

// decodeSecret decodes the key of secrets[i] into dst, which has room for
// MaxSecretBytes+2 bytes (base64 decoding may write 2 bytes past the key),
// and returns its length. The error names the secret by its position
// only.
func decodeSecret(dst []byte, secrets []string, i int) (int, error) {
	s := secrets[i]
	if len(s) < len(SecretPrefix) || s[:len(SecretPrefix)] != SecretPrefix {
		return 0, fmt.Errorf("%w: secret %d of %d does not start with %s", ErrMalformedSecret, i+1, len(secrets), SecretPrefix)
	}
	s = s[len(SecretPrefix):]
	if len(s) > maxSecretChars {
		return 0, fmt.Errorf("%w: secret %d of %d holds more than %d bytes", ErrMalformedSecret, i+1, len(secrets), MaxSecretBytes)
	}
	var text [128]byte // maxSecretChars is 88; the copy keeps the decoding off the heap
	n, err := base64.StdEncoding.Decode(dst, text[:copy(text[:], s)])
	if err != nil {
		return 0, fmt.Errorf("%w: secret %d of %d is not standard base64 after %s", ErrMalformedSecret, i+1, len(secrets), SecretPrefix)
	}
	if n < MinSecretBytes || n > MaxSecretBytes {
		return 0, fmt.Errorf("%w: secret %d of %d holds %d bytes, want %d to %d", ErrMalformedSecret, i+1, len(secrets), n, MinSecretBytes, MaxSecretBytes)
	}
	return n, nil
}

// keyRoom is the room decodeSecret needs.
const keyRoom = MaxSecretBytes + 2

// eachMAC calls f with the HMAC-SHA256 of "{msgID}.{unix}.{body}" under
// each of secrets, in order. The slice f is given is reused for the next.
func eachMAC(secrets []string, msgID string, unix int64, body []byte, f func(mac []byte)) error {
	if len(secrets) == 0 {
		return ErrNoSecrets
	}
	// One buffer holds the decoded key, the HMAC and what precedes the
	// body in the signed content.
	scratch := make([]byte, keyRoom+sha256.Size, keyRoom+sha256.Size+len(msgID)+22)
	key, sum := scratch[:keyRoom], scratch[keyRoom:keyRoom]
	prefix := append(scratch[keyRoom+sha256.Size:], msgID...)
	prefix = append(prefix, '.')
	prefix = strconv.AppendInt(prefix, unix, 10)
	prefix = append(prefix, '.')
	for i := range secrets {
		n, err := decodeSecret(key, secrets, i)
		if err != nil {
			return err
		}
		mac := hmac.New(sha256.New, key[:n])
		mac.Write(prefix)
		mac.Write(body)
		f(mac.Sum(sum))
	}
	return nil
}

// appendSignature appends to dst the webhook-signature header value of
// one attempt: one entry per secret, in order, separated by spaces.
func appendSignature(dst []byte, secrets []string, msgID string, unix int64, body []byte) ([]byte, error) {
	start := len(dst)
	err := eachMAC(secrets, msgID, unix, body, func(mac []byte) {
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		dst = append(dst, signatureVersion...)
		dst = base64.StdEncoding.AppendEncode(dst, mac)
	})
	return dst, err
}

// Sign returns the webhook-signature header value for one attempt: one v1
// entry per secret, in order. Each secret is SecretPrefix followed by the
// standard base64 of its key; a malformed one is an error wrapping
// ErrMalformedSecret, and no secret at all is ErrNoSecrets.
func Sign(secrets []string, msgID string, timestamp time.Time, body []byte) (string, error) {
	var out [2*signatureEntryLen + 1]byte // two entries without a heap buffer
	sig, err := appendSignature(out[:0], secrets, msgID, timestamp.Unix(), body)
	if err != nil {
		return "", err
	}
	return string(sig), nil
}

// UserAgent is the User-Agent header of the webhooks a given version of
// Gwook sends: "gwook/" and the version.
func UserAgent(version string) string { return "gwook/" + version }

// Headers sets on h the headers of one attempt to deliver body: webhook-id
// (msgID), webhook-timestamp (timestamp in Unix seconds),
// webhook-signature (as Sign makes it), Content-Type application/json and
// User-Agent userAgent (see UserAgent: make it once, not per attempt). It
// replaces values those headers had, and leaves h unchanged on error.
// Beyond the HMACs it allocates three times: the values share one string
// and one slice, so set them again rather than append to them.
func Headers(h http.Header, userAgent string, secrets []string, msgID string, timestamp time.Time, body []byte) error {
	var out [20 + 2*signatureEntryLen + 1]byte // the timestamp and two entries without a heap buffer
	unix := timestamp.Unix()
	text := strconv.AppendInt(out[:0], unix, 10)
	tsLen := len(text)
	text, err := appendSignature(text, secrets, msgID, unix, body)
	if err != nil {
		return err
	}
	both := string(text)
	values := make([]string, 5)
	values[0], values[1], values[2], values[3], values[4] = msgID, both[:tsLen], both[tsLen:], "application/json", userAgent
	h[HeaderID] = values[0:1:1]
	h[HeaderTimestamp] = values[1:2:2]
	h[HeaderSignature] = values[2:3:3]
	h["Content-Type"] = values[3:4:4]
	h["User-Agent"] = values[4:5:5]
	return nil
}
