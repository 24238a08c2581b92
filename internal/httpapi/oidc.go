package httpapi

import (
	"context"
	"fmt"

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

// GoogleKeySet fetches and caches Google's signing keys.
func GoogleKeySet(ctx context.Context) oidc.KeySet {
	return oidc.NewRemoteKeySet(ctx, GoogleCertsURL)
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
