// Package dedup is the store behind Gwook's duplicate suppression: before an
// event is sent to Svix, a claim is taken on a key derived from the event, so
// that a second copy of the event arriving while the key is held is dropped
// instead of being sent again.
//
// The protocol has three steps:
//
//   - Claim before sending. A Claim either succeeds, and the caller now holds
//     the key for a TTL, or fails with ErrDuplicate because someone else holds
//     it and the event is a duplicate. Any other error means the store could
//     not answer; it is not evidence of a duplicate.
//   - Keep the claim when the send succeeds. The key stays held until its TTL
//     runs out, and every copy that arrives in the meantime is suppressed.
//   - Release the claim when the send fails. A failed attempt must not
//     suppress the retry, redelivery or replay that follows it, so the key is
//     given up at once instead of being left to expire.
//
// A release removes only the caller's own claim. Every claim carries a random
// token, and Release deletes the key only while it still holds that token
// (an atomic compare-and-delete). A caller whose claim expired during a slow
// send and was then taken by another replica therefore cannot remove the new
// holder's claim.
//
// Two stores implement Deduper: Redis, which replicas share, and Memory,
// which suppresses duplicates within one process only. Key derives the key
// from the event fields chosen by DEDUP_KEY_FIELDS (see ParseKeyFields).
package dedup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Deduper is the store behind duplicate suppression. Two implementations
// exist: Redis, shared by replicas, and Memory, for one process only.
type Deduper interface {
	// Claim takes key for ttl. It returns a Claim when the caller now holds
	// the key, ErrDuplicate when someone else holds it, or another error when
	// the store failed. ttl must be positive; it is rounded up to a whole
	// millisecond.
	Claim(ctx context.Context, key string, ttl time.Duration) (Claim, error)
	// Release gives the key up if, and only if, it is still held by c
	// (compare-and-delete, atomic). Releasing a claim that expired or was
	// taken over by someone else is a no-op, not an error, and so is
	// releasing the zero Claim.
	Release(ctx context.Context, c Claim) error
	// Ping reports whether the store answers (used by /ready).
	Ping(ctx context.Context) error
}

// Claim is a held key: the value Claim returns and Release takes back.
type Claim struct {
	// Key is the claimed key.
	Key string
	// Token is random and unique per claim: 16 bytes from crypto/rand, in
	// hex. It tells this claim apart from later claims of the same key.
	Token string
}

// ErrDuplicate is returned by Claim when the key is held by someone else.
var ErrDuplicate = errors.New("dedup: duplicate: key is already claimed")

// newToken returns a fresh claim token: 16 random bytes, hex-encoded.
func newToken() string {
	var b [16]byte
	// crypto/rand.Read never returns an error; it crashes the program when
	// the system's random source fails.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// claimTTL checks that ttl is positive and rounds it up to a whole
// millisecond, the resolution of Redis's PX option, so that a short ttl is
// never cut to zero.
func claimTTL(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("dedup: claim ttl must be positive, got %v", ttl)
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl, nil
}
