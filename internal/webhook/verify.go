package webhook

import (
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a webhook's timestamp may be from the
// receiver's clock, in either direction, when Verify is given no
// tolerance.
const DefaultTolerance = 5 * time.Minute

// Failure names the check a received webhook failed.
type Failure string

// The checks Verify makes, in the order it makes them.
const (
	MissingHeader       Failure = "missing header"        // webhook-id, webhook-timestamp or webhook-signature is absent or empty
	BadTimestamp        Failure = "bad timestamp"         // webhook-timestamp is not an integer of Unix seconds
	TooOld              Failure = "timestamp too old"     // webhook-timestamp is more than the tolerance before now
	TooNew              Failure = "timestamp too new"     // webhook-timestamp is more than the tolerance after now
	NoMatchingSignature Failure = "no matching signature" // no v1 entry of webhook-signature is the HMAC of any secret
)

// VerifyError is the error Verify returns for a webhook that fails a
// check: which one, and a short detail that holds no secret.
type VerifyError struct {
	Failure Failure
	Detail  string
}

func (e *VerifyError) Error() string {
	if e.Detail == "" {
		return string(e.Failure)
	}
	return string(e.Failure) + ": " + e.Detail
}

// farSeconds, 100 years, bounds the timestamps compared with the clock as
// time.Time values; one further away is refused whatever the tolerance.
// (A time.Duration spans 292 years, and time arithmetic on Unix seconds
// near the ends of int64 overflows.)
const farSeconds = 100 * 365 * 24 * 60 * 60

// maxQuoted is how much of a received header value an error quotes.
const maxQuoted = 40

// quote quotes a received value for an error, cut to maxQuoted bytes.
func quote(v string) string {
	if len(v) > maxQuoted {
		return strconv.Quote(v[:maxQuoted]) + "..."
	}
	return strconv.Quote(v)
}

// signedHeaderValues returns the id, timestamp and signature headers of
// h, and the prefix of their names: the webhook-* ones, or when those are
// all absent the svix-* ones that Svix sends by default, so that webhooks
// from Svix verify too.
func signedHeaderValues(h http.Header) (prefix, id, timestamp, signature string) {
	id, timestamp, signature = h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" && timestamp == "" && signature == "" {
		if id, timestamp, signature = h.Get("Svix-Id"), h.Get("Svix-Timestamp"), h.Get("Svix-Signature"); id != "" || timestamp != "" || signature != "" {
			return "svix-", id, timestamp, signature
		}
	}
	return "webhook-", id, timestamp, signature
}

// signedHeaders returns the values of signedHeaderValues, or a
// MissingHeader error naming those that are absent or empty.
func signedHeaders(h http.Header) (id, timestamp, signature string, err error) {
	prefix, id, timestamp, signature := signedHeaderValues(h)
	var missing []string
	for _, header := range []struct{ name, value string }{{"id", id}, {"timestamp", timestamp}, {"signature", signature}} {
		if header.value == "" {
			missing = append(missing, prefix+header.name)
		}
	}
	if missing != nil {
		return "", "", "", &VerifyError{MissingHeader, strings.Join(missing, ", ")}
	}
	return id, timestamp, signature, nil
}

// parseTimestamp parses a webhook-timestamp header value: decimal digits,
// optionally after a minus sign.
func parseTimestamp(v string) (int64, error) {
	if v[0] == '+' {
		return 0, &VerifyError{BadTimestamp, quote(v) + " is not Unix seconds"}
	}
	unix, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, &VerifyError{BadTimestamp, quote(v) + " is not Unix seconds"}
	}
	return unix, nil
}

// Verify checks a received webhook: its webhook-id, webhook-timestamp and
// webhook-signature headers are present (or, in their absence, Svix's
// svix-id, svix-timestamp and svix-signature), its timestamp is within
// tolerance of now in either direction (DefaultTolerance when tolerance
// is not positive), and one v1 entry of its signature is the HMAC of the
// id, timestamp and body with one of secrets. Signatures are compared in
// constant time.
//
// A webhook failing a check is a *VerifyError saying which. Secrets are
// checked first: none is ErrNoSecrets, a malformed one an error wrapping
// ErrMalformedSecret.
func Verify(secrets []string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secrets) == 0 {
		return ErrNoSecrets
	}
	var key [keyRoom]byte
	for i := range secrets {
		if _, err := decodeSecret(key[:], secrets, i); err != nil {
			return err
		}
	}
	id, timestampText, signature, err := signedHeaders(header)
	if err != nil {
		return err
	}
	unix, err := parseTimestamp(timestampText)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// The differences are taken in uint64, where they cannot overflow.
	switch nowUnix := now.Unix(); {
	case unix > nowUnix && uint64(unix)-uint64(nowUnix) > farSeconds:
		return &VerifyError{TooNew, fmt.Sprintf("%d is more than 100 years after now", unix)}
	case unix < nowUnix && uint64(nowUnix)-uint64(unix) > farSeconds:
		return &VerifyError{TooOld, fmt.Sprintf("%d is more than 100 years before now", unix)}
	}
	timestamp := time.Unix(unix, 0)
	if age := now.Sub(timestamp); age > tolerance {
		return &VerifyError{TooOld, fmt.Sprintf("%d is %v before now, more than %v", unix, age.Round(time.Second), tolerance)}
	}
	if ahead := timestamp.Sub(now); ahead > tolerance {
		return &VerifyError{TooNew, fmt.Sprintf("%d is %v after now, more than %v", unix, ahead.Round(time.Second), tolerance)}
	}

	var entries int
	for entry := range strings.FieldsSeq(signature) {
		if strings.HasPrefix(entry, signatureVersion) {
			entries++
		}
	}
	if entries == 0 {
		return &VerifyError{NoMatchingSignature, "webhook-signature holds no v1 entry"}
	}
	matched := false
	err = eachMAC(secrets, id, unix, body, func(mac []byte) {
		var want [signatureEntryLen - len(signatureVersion)]byte
		base64.StdEncoding.Encode(want[:], mac)
		for entry := range strings.FieldsSeq(signature) {
			if got, ok := strings.CutPrefix(entry, signatureVersion); ok && hmac.Equal([]byte(got), want[:]) {
				matched = true
			}
		}
	})
	if err != nil {
		return err
	}
	if !matched {
		return &VerifyError{NoMatchingSignature, fmt.Sprintf("%d v1 entries checked against %d secrets", entries, len(secrets))}
	}
	return nil
}
