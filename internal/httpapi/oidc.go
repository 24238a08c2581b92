package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// GoogleCertsURL serves the keys Google signs Pub/Sub push tokens with.
const GoogleCertsURL = "https://www.googleapis.com/oauth2/v3/certs"

// PushTokenVerifier checks the OIDC token Pub/Sub attaches to authenticated
// pushes: signature, audience, expiry, issuer, and that it was issued to the
// push subscription's service account with a verified email.
type PushTokenVerifier struct {
	verifier       *oidc.IDTokenVerifier
	serviceAccount string
}

// Fetching Google's key set: each fetch is bounded by keyFetchTimeout, and
// at most one goes out per keyRefetchInterval.
const (
	keyFetchTimeout    = 10 * time.Second
	keyRefetchInterval = time.Minute
	maxKeySetBytes     = 1 << 20
)

// GoogleKeySet verifies signatures with Google's signing keys. It caches
// them, and fetches them again when a token names a key id it does not
// know, which is how Google's key rotation shows, but at most once a
// minute: a forged token with a made-up key id costs no request to Google
// after the first, and a genuinely new key is known within a minute
// (Pub/Sub redelivers what was refused meanwhile).
func GoogleKeySet(ctx context.Context) oidc.KeySet {
	return newKeySet(ctx, GoogleCertsURL, keyFetchTimeout, time.Now)
}

func newKeySet(ctx context.Context, url string, timeout time.Duration, now func() time.Time) *oidc.RemoteKeySet {
	client := &http.Client{Timeout: timeout, Transport: &throttledFetch{next: http.DefaultTransport, interval: keyRefetchInterval, now: now}}
	return oidc.NewRemoteKeySet(oidc.ClientContext(ctx, client), url)
}

// throttledFetch lets one request out per interval. In between it answers
// with the last key set fetched, which the key set already holds, so an
// unknown key id stays unknown without a request; before any fetch has
// succeeded, it fails.
type throttledFetch struct {
	next     http.RoundTripper
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	fetched time.Time // when the last request went out
	keys    []byte    // the last key set Google served
	header  http.Header
}

func (t *throttledFetch) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := t.now(); t.fetched.IsZero() || now.Sub(t.fetched) >= t.interval {
		t.fetched = now
		if err := t.fetch(req); err != nil {
			return nil, err
		}
	}
	if t.keys == nil {
		return nil, fmt.Errorf("no key set yet: the last fetch failed, the next one is due %s after it", t.interval)
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: t.header.Clone(), Body: io.NopCloser(bytes.NewReader(t.keys)), ContentLength: int64(len(t.keys)), Request: req}, nil
}

// fetch requests the key set and keeps it when it came.
func (t *throttledFetch) fetch(req *http.Request) error {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching the key set: status %s", resp.Status)
	}
	t.keys, t.header = body, resp.Header
	return nil
}

// NewPushTokenVerifier verifies tokens signed by keys for audience, issued to
// serviceAccount. Production passes GoogleKeySet; tests pass a local key.
func NewPushTokenVerifier(keys oidc.KeySet, audience, serviceAccount string) *PushTokenVerifier {
	// go-oidc compares the issuer to one value; Google uses two spellings, so
	// the issuer is checked below instead.
	v := oidc.NewVerifier("", keys, &oidc.Config{ClientID: audience, SkipIssuerCheck: true})
	return &PushTokenVerifier{verifier: v, serviceAccount: serviceAccount}
}

// Verify returns nil when raw is a valid push token.
func (v *PushTokenVerifier) Verify(ctx context.Context, raw string) error {
	token, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return err
	}
	if token.Issuer != "accounts.google.com" && token.Issuer != "https://accounts.google.com" {
		return fmt.Errorf("issuer %q is not Google", token.Issuer)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := token.Claims(&claims); err != nil {
		return err
	}
	if claims.Email != v.serviceAccount {
		return fmt.Errorf("token is for %q, not the push service account", claims.Email)
	}
	if !claims.EmailVerified {
		return fmt.Errorf("token email is not verified")
	}
	return nil
}
