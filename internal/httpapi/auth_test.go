package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/googletoken"
)

const (
	audience       = "https://gwook.example.com/notifications"
	serviceAccount = "pubsub-push@proj.iam.gserviceaccount.com"
)

// authenticated answers 200 naming how the caller authenticated.
var authenticated = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte(CallerFrom(r.Context())))
})

func TestBasicAuth(t *testing.T) {
	a := &Authenticator{Realm: `gwook "prod"`, Username: "admin", Password: "s3cret"}
	h := scopeRequests(discardLogger, nil)(a.requireAuth(authenticated))
	for _, tc := range []struct {
		name       string
		user, pass string
		noAuth     bool
		want       int
	}{
		{"right", "admin", "s3cret", false, 200},
		{"wrong password", "admin", "nope", false, 401},
		{"wrong user", "root", "s3cret", false, 401},
		{"password prefix", "admin", "s3cre", false, 401},
		{"missing", "", "", true, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/notifications", nil)
			if !tc.noAuth {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d", rec.Code, tc.want)
			}
			if tc.want == 200 {
				if rec.Body.String() != string(CallerBasic) {
					t.Errorf("caller = %q", rec.Body.String())
				}
				return
			}
			assertUnauthorized(t, rec)
			if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="gwook \"prod\"", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
}

func assertUnauthorized(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	if p.Status != 401 || p.Layer != LayerGwook || p.Type != problemTypeBase+"unauthorized" || p.RequestID == "" {
		t.Errorf("problem = %+v", p)
	}
}

func TestPushOIDCAuth(t *testing.T) {
	issuer := googletoken.NewIssuer(t)
	other := googletoken.NewIssuer(t)
	a := &Authenticator{PushTokens: NewPushTokenVerifier(issuer.KeySet(), audience, serviceAccount)}
	h := scopeRequests(discardLogger, nil)(a.requireAuth(authenticated))
	valid := googletoken.PushClaims(audience, serviceAccount)
	with := func(change func(*googletoken.Claims)) googletoken.Claims {
		c := valid
		change(&c)
		return c
	}
	for _, tc := range []struct {
		name   string
		header string
		want   int
	}{
		{"right", "Bearer " + issuer.Sign(t, valid), 200},
		{"issuer without scheme", "Bearer " + issuer.Sign(t, with(func(c *googletoken.Claims) { c.Issuer = "accounts.google.com" })), 200},
		{"lower-case scheme", "bearer " + issuer.Sign(t, valid), 200},
		{"signed by another key", "Bearer " + other.Sign(t, valid), 401},
		{"wrong audience", "Bearer " + issuer.Sign(t, with(func(c *googletoken.Claims) { c.Audience = "https://elsewhere" })), 401},
		{"wrong issuer", "Bearer " + issuer.Sign(t, with(func(c *googletoken.Claims) { c.Issuer = "https://evil.example" })), 401},
		{"expired", "Bearer " + issuer.Sign(t, with(func(c *googletoken.Claims) { c.Expiry = time.Now().Add(-time.Minute).Unix() })), 401},
		{"other service account", "Bearer " + issuer.Sign(t, with(func(c *googletoken.Claims) { c.Email = "x@proj.iam.gserviceaccount.com" })), 401},
		{"email not verified", "Bearer " + issuer.Sign(t, with(func(c *googletoken.Claims) { c.EmailVerified = false })), 401},
		{"garbage token", "Bearer abc.def.ghi", 401},
		{"missing", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/notifications", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 200 && rec.Body.String() != string(CallerOIDC) {
				t.Errorf("caller = %q", rec.Body.String())
			}
			if tc.want == 401 {
				assertUnauthorized(t, rec)
				if got := rec.Header().Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			}
		})
	}
}

func TestVerificationTokenAuth(t *testing.T) {
	a := &Authenticator{Username: "admin", Password: "s3cret", VerificationToken: "tok-123"}
	h := scopeRequests(discardLogger, nil)(a.requireAuth(authenticated))
	for _, tc := range []struct {
		name, target string
		want         int
		caller       Caller
	}{
		{"right", "/notifications?token=tok-123", 200, CallerToken},
		{"wrong", "/notifications?token=tok-124", 401, ""},
		{"empty", "/notifications?token=", 401, ""},
		{"missing", "/notifications", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.target, nil))
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d", rec.Code, tc.want)
			}
			if tc.want == 200 && rec.Body.String() != string(tc.caller) {
				t.Errorf("caller = %q", rec.Body.String())
			}
			if tc.want == 401 {
				assertUnauthorized(t, rec)
			}
		})
	}
}

func TestAuthErrorNeverEchoesCredentials(t *testing.T) {
	a := &Authenticator{Username: "admin", Password: "s3cret", VerificationToken: "tok-123"}
	h := scopeRequests(discardLogger, nil)(a.requireAuth(authenticated))
	req := httptest.NewRequest(http.MethodPost, "/notifications?token=guess-tok", nil)
	req.SetBasicAuth("admin", "guess-pass")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 || strings.Contains(rec.Body.String(), "guess-pass") || strings.Contains(rec.Body.String(), "s3cret") {
		t.Errorf("status %d body %s", rec.Code, rec.Body)
	}
}

func TestRefusedPushTokenDetailIsLoggedNotServed(t *testing.T) {
	issuer := googletoken.NewIssuer(t)
	var logs bytes.Buffer
	a := &Authenticator{PushTokens: NewPushTokenVerifier(issuer.KeySet(), audience, serviceAccount),
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	h := scopeRequests(discardLogger, nil)(a.requireAuth(authenticated))
	claims := googletoken.PushClaims(audience, serviceAccount)
	claims.Audience = "https://elsewhere.example.com"
	req := httptest.NewRequest(http.MethodPost, "/notifications", nil)
	req.Header.Set("Authorization", "Bearer "+issuer.Sign(t, claims))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assertUnauthorized(t, rec)
	var p Problem
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	if p.Detail != "authentication failed: push token rejected" {
		t.Errorf("detail %q", p.Detail)
	}
	for _, detail := range []string{audience, "elsewhere", "audience", "aud"} {
		if strings.Contains(rec.Body.String(), detail) {
			t.Errorf("the 401 body echoes %q: %s", detail, rec.Body)
		}
	}
	if !strings.Contains(logs.String(), `"level":"DEBUG","msg":"push token rejected"`) || !strings.Contains(logs.String(), audience) {
		t.Errorf("the verifier's detail was not logged at debug level: %s", logs.String())
	}
}

// A bearer token that no configured method takes is named as such, not
// answered "no credentials".
func TestUnacceptedBearerTokenIsNamed(t *testing.T) {
	apiTokens := func(string) (store.Token, error) { return store.Token{}, errors.New("unknown") }
	for _, tc := range []struct {
		name   string
		a      *Authenticator
		header string
		detail string
	}{
		{"not an API token", &Authenticator{APITokens: apiTokens}, "Bearer abc.def", "authentication failed: the bearer token is not a Gwook API token (gwk_...)"},
		{"no method takes bearer tokens", &Authenticator{Username: "admin", Password: "s3cret"}, "Bearer abc.def", "authentication failed: bearer tokens are not accepted"},
		{"nothing given", &Authenticator{APITokens: apiTokens}, "", "authentication failed: no credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := scopeRequests(discardLogger, nil)(tc.a.requireAuth(authenticated))
			req := httptest.NewRequest(http.MethodPost, "/notifications", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assertUnauthorized(t, rec)
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Detail != tc.detail {
				t.Errorf("detail %q (%v), want %q", p.Detail, err, tc.detail)
			}
			if strings.Contains(rec.Body.String(), "abc.def") {
				t.Errorf("the 401 body echoes the token: %s", rec.Body)
			}
		})
	}
}
