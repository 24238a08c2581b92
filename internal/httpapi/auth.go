package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/telemetry"
)

// Caller says how a request authenticated.
type Caller string

// The ways a caller can authenticate.
const (
	CallerBasic Caller = "basic" // a producer with username and password
	CallerOIDC  Caller = "oidc"  // Pub/Sub push with a Google-signed OIDC token
	CallerToken Caller = "token" // Pub/Sub push with ?token= on the push URL
	// CallerAPIToken is a producer with a Gwook API token (gwk_...) that
	// has the ingest or admin scope.
	CallerAPIToken Caller = "api_token"
	// CallerFirehoseKey is Kinesis Data Firehose with one of
	// FIREHOSE_ACCESS_KEYS in X-Amz-Firehose-Access-Key.
	CallerFirehoseKey Caller = "firehose_key"
)

// IsPush reports whether the caller is a Pub/Sub push subscription.
func (c Caller) IsPush() bool { return c == CallerOIDC || c == CallerToken }

// Authenticator checks a request against every configured method and
// accepts it when any of them does. Secrets are compared in constant time.
type Authenticator struct {
	// Realm is sent in WWW-Authenticate on failure.
	Realm string
	// Username and Password enable Basic auth when Username is set.
	Username, Password string
	// PushTokens, when set, verifies Pub/Sub push OIDC bearer tokens.
	PushTokens *PushTokenVerifier
	// VerificationToken, when set, is accepted as ?token= on the URL.
	VerificationToken string
	// APITokens, when set, verifies Gwook API tokens: a bearer token
	// starting with store.TokenPrefix. It must not query a database.
	APITokens func(value string) (store.Token, error)
	// FirehoseKeys are the access keys POST /firehose accepts in
	// X-Amz-Firehose-Access-Key (FIREHOSE_ACCESS_KEYS); none: only API
	// tokens are accepted there.
	FirehoseKeys []string
	// Metrics counts failures; nil counts nothing.
	Metrics *telemetry.Metrics
	// Logger gets why a push token was refused, at debug level; nil logs
	// nothing.
	Logger *slog.Logger
}

// authenticate returns how r authenticated, or the method it tried (empty
// when it tried none) and an error saying why it failed, in words fit for
// the caller: the verifier's own detail (the expected audience, the issuer)
// is only logged at debug level.
func (a *Authenticator) authenticate(r *http.Request) (Caller, error) {
	if user, pass, ok := r.BasicAuth(); ok && a.Username != "" {
		if secretEqual(user, a.Username)&secretEqual(pass, a.Password) == 1 {
			return CallerBasic, nil
		}
		return CallerBasic, errors.New("wrong username or password")
	}
	raw, bearer := bearerToken(r)
	if bearer && a.APITokens != nil && strings.HasPrefix(raw, store.TokenPrefix) {
		return a.apiToken(r, raw)
	}
	if bearer && a.PushTokens != nil {
		if err := a.PushTokens.Verify(r.Context(), raw); err != nil {
			if a.Logger != nil {
				a.Logger.DebugContext(r.Context(), "push token rejected", "error", err.Error(),
					"request_id", requestIDFrom(r.Context()))
			}
			return CallerOIDC, errors.New("push token rejected")
		}
		return CallerOIDC, nil
	}
	if a.VerificationToken != "" && r.URL.Query().Has("token") {
		if secretEqual(r.URL.Query().Get("token"), a.VerificationToken) == 1 {
			return CallerToken, nil
		}
		return CallerToken, errors.New("wrong verification token")
	}
	switch {
	case bearer && a.APITokens != nil:
		return "", errors.New("the bearer token is not a Gwook API token (" + store.TokenPrefix + "...)")
	case bearer:
		return "", errors.New("bearer tokens are not accepted")
	}
	return "", errors.New("no credentials")
}

// apiToken checks raw, a Gwook API token, for an ingest route: it must be
// known, unexpired, and have the ingest or admin scope. A token restricted
// to an application is recorded in the request's scope.
func (a *Authenticator) apiToken(r *http.Request, raw string) (Caller, error) {
	t, err := a.APITokens(raw)
	if err != nil {
		return CallerAPIToken, errors.New("unknown or expired API token")
	}
	TokenUsed(r.Context(), a.Metrics, t.ID)
	if s := scopeFrom(r.Context()); s != nil {
		s.application = t.ApplicationID
	}
	if !slices.Contains(t.Scopes, "ingest") && !slices.Contains(t.Scopes, "admin") {
		return CallerAPIToken, errScope
	}
	return CallerAPIToken, nil
}

// errScope refuses a valid API token without the ingest or admin scope: a
// 403, not a 401.
var errScope = errors.New("the API token lacks the ingest scope")

// challenge is the WWW-Authenticate value for a 401.
func (a *Authenticator) challenge() string {
	var parts []string
	if a.Username != "" {
		parts = append(parts, `Basic realm="`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a.Realm)+`", charset="UTF-8"`)
	}
	if a.PushTokens != nil || a.APITokens != nil {
		parts = append(parts, "Bearer")
	}
	return strings.Join(parts, ", ")
}

// secretEqual compares in time independent of where the strings differ and
// of their lengths (both are hashed to the same size first). It returns 1
// when equal, so two checks can be combined without short-circuiting.
func secretEqual(given, want string) int {
	g, w := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:])
}

func bearerToken(r *http.Request) (string, bool) { return BearerToken(r.Header.Get("Authorization")) }

// BearerToken returns the token of an Authorization header value of the
// Bearer scheme.
func BearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// TokenUsed records that the API token with the given id sent the request
// whose context ctx is: on its log line (the id, never the value) and in
// gwook_api_token_requests_total.
func TokenUsed(ctx context.Context, m *telemetry.Metrics, tokenID string) {
	requestLogFrom(ctx).Add(slog.String("token_id", tokenID))
	m.TokenRequest(tokenID)
}

// CallerFrom returns how the request in ctx authenticated.
func CallerFrom(ctx context.Context) Caller {
	if s := scopeFrom(ctx); s != nil {
		return s.caller
	}
	return ""
}

// refused counts and logs a request refused for err, which caller (""
// when no method recognised the credentials) made.
func (a *Authenticator) refused(r *http.Request, caller Caller, err error) {
	tried := string(caller)
	if tried == "" {
		tried = "none"
	}
	a.Metrics.AuthFailure(tried)
	requestLogFrom(r.Context()).Add(slog.String("auth_error", err.Error()))
}

// requireAuth answers 401 with a problem body unless a configured method
// authenticates the request. Failures are logged without the credentials.
func (a *Authenticator) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := a.authenticate(r)
		if errors.Is(err, errScope) {
			a.refused(r, caller, err)
			writeProblem(w, r, Problem{Type: problemTypeBase + "forbidden", Status: http.StatusForbidden,
				Detail: err.Error(), Layer: LayerGwook})
			return
		}
		if err != nil {
			a.refused(r, caller, err)
			if c := a.challenge(); c != "" {
				w.Header().Set("WWW-Authenticate", c)
			}
			writeProblem(w, r, Problem{Type: problemTypeBase + "unauthorized", Status: http.StatusUnauthorized,
				Detail: "authentication failed: " + err.Error(), Layer: LayerGwook})
			return
		}
		if s := scopeFrom(r.Context()); s != nil {
			s.caller = caller
			s.log.Add(slog.String("caller", string(caller)))
		}
		next.ServeHTTP(w, r)
	})
}
