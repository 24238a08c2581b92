// Package dedup is the store behind Gwook's duplicate suppression: an event
// is suppressed when another event with the same key was delivered to Svix
// within the window (DEDUP_TTL). Key derives the key from the resolved Svix
// application and the event fields chosen by DEDUP_KEY_FIELDS (see
// ParseKeyFields), so two applications never suppress each other.
//
// The store keeps one record per key. The record names the event that holds
// the key (its event id) and its state: in flight (being sent) or delivered
// (Svix accepted it). The protocol has three steps:
//
//   - Claim before sending, in one atomic step (a Lua script in Redis, a
//     mutex in Memory). When the key is free (no record, or an expired one),
//     the record becomes "in flight" for the event, for a lease, and the
//     answer is Claimed. When the record already names the same event id,
//     whatever its state, the answer is Claimed too (Own): an event is never
//     a duplicate of itself, so a Pub/Sub redelivery, a producer's retry, the
//     redelivery after a crashed holder, or a claim that a Redis client
//     re-sent after its reply timed out goes on to Svix, whose idempotency
//     key (the event id) keeps it to one message; an in-flight record's
//     lease is then renewed. When the record names another event, the answer
//     is Duplicate if that event was delivered, and InFlight if it is still
//     being sent: only a delivered event makes another a duplicate.
//   - Commit after Svix accepted the message, or answered that it already has
//     this event id: the record becomes "delivered" for the event, for the
//     window. Commit writes only while the record names the event or is gone
//     (its lease ran out and nobody took the key); a key another event took
//     in the meantime is left alone and Commit returns ErrNotHeld. A copy of
//     a delivered event that is sent again commits again, which restarts
//     the window.
//   - Release after the send failed: the record is deleted only while it is
//     still "in flight" for the event, so that the retry, redelivery or
//     replay that follows is not held up, and a record that another event
//     took, or that a copy of the same event already delivered, is kept.
//
// Copies of one event share its record: when one copy fails and releases
// while another is still being sent, the key is free for that moment, and
// an event with the same key arriving then is sent too. That can let a
// duplicate through; it never suppresses an event that was not delivered.
//
// The lease is the send budget, not the window: a holder that dies without
// committing or releasing (an OOM kill, a lost node) frees the key within
// seconds, and its own redelivery is never held up at all.
//
// Any error from a store means it could not answer: it is never evidence
// of a duplicate.
//
// Two stores implement Deduper: Redis, which replicas share, and Memory,
// which suppresses duplicates within one process only.
package dedup

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Deduper is the store behind duplicate suppression. Two implementations
// exist: Redis, shared by replicas, and Memory, for one process only.
type Deduper interface {
	// Claim asks for key on behalf of the event eventID, in one atomic step.
	// Status says what the record held (see Status); with Claimed the record
	// is now "in flight" for eventID and expires after lease, unless it was
	// already delivered by eventID (Own), which it stays. An error means the
	// store failed, never that the event is a duplicate. lease must be
	// positive and eventID not empty; lease is rounded up to a whole
	// millisecond.
	Claim(ctx context.Context, key, eventID string, lease time.Duration) (Claim, error)
	// Commit records that c's event was delivered: the record becomes
	// "delivered" for c.EventID and expires after ttl. It writes only while
	// the record names c.EventID or is gone. Commit takes the step before
	// it returns, so that a Claim of the key that starts afterwards sees
	// it, but it may write it later (Redis sends it with the next pipeline,
	// within CommitDelay): done gets the outcome once written: nil,
	// ErrNotHeld when another event holds the key, or the store's error.
	// done must not block. c must be Claimed.
	Commit(c Claim, ttl time.Duration, done func(error))
	// Release gives the key up after a failed send: it deletes the record
	// only while it is "in flight" for c.EventID (compare-and-delete,
	// atomic). Anything else, and a c that is not Claimed, is a no-op, not
	// an error.
	Release(ctx context.Context, c Claim) error
	// Ping reports whether the store answers (used by /ready).
	Ping(ctx context.Context) error
}

// Status is what a claim found.
type Status int

// The answers of Claim.
const (
	// Claimed: the key was free, or its record already named this event
	// (Claim.Own). The caller sends, then commits or releases.
	Claimed Status = iota + 1
	// Duplicate: another event with this key was delivered within the
	// window.
	Duplicate
	// InFlight: another event holds the key and is still being sent; its
	// outcome is not known yet.
	InFlight
)

func (s Status) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Duplicate:
		return "duplicate"
	case InFlight:
		return "in_flight"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Claim is the answer of Deduper.Claim and, when Claimed, what Commit and
// Release take back.
type Claim struct {
	// Key is the claimed key.
	Key string
	// EventID is the event the claim was made for.
	EventID string
	Status  Status
	// Own is true, with Claimed, when the record already named EventID: the
	// event is a retry or a redelivery of one that was claimed before.
	Own bool
	// Holder is the event id the record names, with Duplicate and InFlight.
	Holder string
	// Remaining is, with InFlight, how long the holder's lease has left: the
	// latest the key is settled (committed, released or expired).
	Remaining time.Duration
}

// SettleTimeout bounds the Release that ends a claim after a failed send.
// It runs even when the caller has gone away, and it is one term of the
// request budget that the server's timeouts must cover. A Commit is not in
// the request: Redis writes it with the next pipeline, and Close waits for
// the commits taken.
const SettleTimeout = time.Second

// ErrNotHeld is returned by Commit when another event holds the key: the
// claim's lease ran out before the commit and another event claimed the key.
var ErrNotHeld = errors.New("dedup: the key is held by another event")

// checkClaim checks the arguments of Claim and returns lease rounded up to
// a whole millisecond.
func checkClaim(eventID string, lease time.Duration) (time.Duration, error) {
	if eventID == "" {
		return 0, errors.New("dedup: claim needs an event id")
	}
	return roundTTL(lease)
}

// checkCommit checks the arguments of Commit and returns ttl rounded up to a
// whole millisecond.
func checkCommit(c Claim, ttl time.Duration) (time.Duration, error) {
	if c.Status != Claimed || c.EventID == "" {
		return 0, fmt.Errorf("dedup: commit of a claim that is not held (%s)", c.Status)
	}
	return roundTTL(ttl)
}

// roundTTL checks that ttl is positive and rounds it up to a whole
// millisecond, the resolution of Redis's PX option, so that a short ttl is
// never cut to zero.
func roundTTL(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("dedup: ttl must be positive, got %v", ttl)
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl, nil
}
