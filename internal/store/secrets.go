package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"math/big"
	"strings"
)

// TokenPrefix starts every API token.
const TokenPrefix = "gwk_"

// EndpointSecretPrefix starts every endpoint secret.
const EndpointSecretPrefix = "whsec_"

// tokenChars is the length of a token after its prefix: 43 base-62 digits
// hold 256 bits (62^43 > 2^256 > 62^42).
const tokenChars = 43

// idChars is the length of an id after its prefix: 22 base-62 digits hold
// the 128 random bits of an id.
const idChars = 22

// endpointSecretBytes is how many random bytes a generated endpoint secret
// holds.
const endpointSecretBytes = 24

// base62 encodes b as a number in base 62 (digits 0-9a-zA-Z), left-padded
// with zeros to width characters.
func base62(b []byte, width int) string {
	s := new(big.Int).SetBytes(b).Text(62)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// randomBytes returns n bytes from crypto/rand, which never fails (Go 1.24+).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newID returns prefix followed by 128 random bits in base 62.
func newID(prefix string) string { return prefix + base62(randomBytes(16), idChars) }

// NewTokenValue returns a new API token: TokenPrefix and 43 characters of
// [0-9A-Za-z] carrying 256 random bits. Store only its HashToken.
func NewTokenValue() string { return TokenPrefix + base62(randomBytes(32), tokenChars) }

// HashToken is the SHA-256 of a token's value: what the store keeps and
// TokenByHash looks up.
func HashToken(value string) []byte {
	h := sha256.Sum256([]byte(value))
	return h[:]
}

// TokenHashEqual reports whether two token hashes are equal, in time that
// does not depend on where they differ.
func TokenHashEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// NewEndpointID returns a new endpoint id, "ep_" and 22 characters.
func NewEndpointID() string { return newID("ep_") }

// NewEndpointSecret returns a new endpoint secret: EndpointSecretPrefix and
// the standard base64 of 24 random bytes.
func NewEndpointSecret() string {
	return EndpointSecretPrefix + base64.StdEncoding.EncodeToString(randomBytes(endpointSecretBytes))
}
