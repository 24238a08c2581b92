package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gwook/gwook/test/googletoken"
)

// keyServer serves a JSON Web Key Set, as Google's certs endpoint does, and
// counts the requests.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	keys    []jose.JSONWebKey
}

func newKeyServer(t *testing.T, keys ...jose.JSONWebKey) *keyServer {
	k := &keyServer{keys: keys}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k.fetches.Add(1)
		k.mu.Lock()
		defer k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: k.keys})
	}))
	t.Cleanup(k.Close)
	return k
}

func (k *keyServer) publish(key jose.JSONWebKey) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
}

func TestUnknownKeyIDsRefetchAtMostOnceAMinute(t *testing.T) {
	google := googletoken.NewIssuerWithKeyID(t, "google-1")
	keys := newKeyServer(t, google.JWK())
	clock := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	v := NewPushTokenVerifier(newKeySet(context.Background(), keys.URL, time.Second, now), audience, serviceAccount)
	ctx := context.Background()
	claims := googletoken.PushClaims(audience, serviceAccount)
	expectFetches := func(want int32) {
		t.Helper()
		if got := keys.fetches.Load(); got != want {
			t.Fatalf("%d fetches of the key set, want %d", got, want)
		}
	}

	if err := v.Verify(ctx, google.Sign(t, claims)); err != nil {
		t.Fatalf("a token signed with Google's key: %v", err)
	}
	expectFetches(1)

	// Forged tokens naming key ids Google never published: none of them
	// costs a request within the minute.
	for _, kid := range []string{"forged-1", "forged-2", "forged-3"} {
		forged := googletoken.NewIssuerWithKeyID(t, kid)
		for range 5 {
			if err := v.Verify(ctx, forged.Sign(t, claims)); err == nil {
				t.Fatal("a forged token was accepted")
			}
		}
	}
	if err := v.Verify(ctx, google.Sign(t, claims)); err != nil {
		t.Fatalf("Google's key after the forgeries: %v", err)
	}
	expectFetches(1)

	// A minute on, an unknown key id may fetch once more.
	advance(time.Minute)
	forged := googletoken.NewIssuerWithKeyID(t, "forged-4")
	for range 5 {
		if err := v.Verify(ctx, forged.Sign(t, claims)); err == nil {
			t.Fatal("a forged token was accepted")
		}
	}
	expectFetches(2)

	// Google rotates its keys: the new key is known at the next fetch.
	rotated := googletoken.NewIssuerWithKeyID(t, "google-2")
	keys.publish(rotated.JWK())
	if err := v.Verify(ctx, rotated.Sign(t, claims)); err == nil {
		t.Fatal("the new key was known before the key set was fetched again")
	}
	expectFetches(2)
	advance(time.Minute)
	// go-oidc hands a caller that arrives just as a fetch ends the result of
	// that fetch (here: the refused one) before it clears it, so the first
	// try may still fail without a request; a later one fetches.
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if err = v.Verify(ctx, rotated.Sign(t, claims)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the rotated key, a minute on: %v", err)
	}
	expectFetches(3)
}

func TestKeySetFetchHasATimeout(t *testing.T) {
	stuck := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stuck }))
	defer srv.Close()
	defer close(stuck)
	v := NewPushTokenVerifier(newKeySet(context.Background(), srv.URL, 100*time.Millisecond, time.Now), audience, serviceAccount)
	token := googletoken.NewIssuer(t).Sign(t, googletoken.PushClaims(audience, serviceAccount))
	// The request's own context has no deadline: only the client's timeout
	// ends the fetch.
	if err := v.Verify(context.Background(), token); err == nil {
		t.Fatal("a token was accepted without a key set")
	}
}
