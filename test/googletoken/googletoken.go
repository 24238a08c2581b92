// Package googletoken mints OIDC tokens shaped like the ones Google attaches
// to authenticated Pub/Sub pushes, signed with a key made for the test, so
// Gwook's verifier can be tested without Google's real keys.
package googletoken

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Issuer signs tokens with its own RSA key.
type Issuer struct {
	key    *rsa.PrivateKey
	keyID  string
	signer jose.Signer
}

// NewIssuer makes a fresh signing key, with the key id "test-key".
func NewIssuer(tb testing.TB) *Issuer {
	return NewIssuerWithKeyID(tb, "test-key")
}

// NewIssuerWithKeyID makes a fresh signing key whose tokens name keyID.
func NewIssuerWithKeyID(tb testing.TB, keyID string) *Issuer {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", keyID))
	if err != nil {
		tb.Fatal(err)
	}
	return &Issuer{key: key, keyID: keyID, signer: signer}
}

// JWK is the public key as Google publishes its keys, for a key set served
// over HTTP.
func (i *Issuer) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &i.key.PublicKey, KeyID: i.keyID, Algorithm: string(jose.RS256), Use: "sig"}
}

// KeySet verifies what this Issuer signs; pass it where Google's keys go.
func (i *Issuer) KeySet() oidc.KeySet {
	return &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&i.key.PublicKey}}
}

// Claims of a push token. Zero Expiry means an hour from now.
type Claims struct {
	Issuer        string `json:"iss"`
	Audience      string `json:"aud"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Subject       string `json:"sub"`
	IssuedAt      int64  `json:"iat"`
	Expiry        int64  `json:"exp"`
}

// PushClaims returns the claims Google sets for a push to audience on
// behalf of serviceAccount.
func PushClaims(audience, serviceAccount string) Claims {
	now := time.Now()
	return Claims{Issuer: "https://accounts.google.com", Audience: audience, Email: serviceAccount,
		EmailVerified: true, Subject: "1234567890", IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix()}
}

// Sign returns the compact JWT for c.
func (i *Issuer) Sign(tb testing.TB, c Claims) string {
	tb.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return token
}
