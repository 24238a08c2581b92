package dedup

import (
	"context"
	"sync"
	"time"
)

// sweepInterval is how often NewMemory's sweeper removes expired claims.
const sweepInterval = time.Minute

// Memory is a Deduper whose claims live in this process only: replicas do
// not see each other's claims, and a restart forgets them. It has the same
// semantics as Redis.
//
// A claim stops counting as soon as it expires. A background sweeper
// removes the entries of expired claims that are never looked at again, so
// memory holds at most the claims taken within one TTL plus one sweep
// interval. Close stops the sweeper.
type Memory struct {
	mu      sync.Mutex
	entries map[string]memoryEntry

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// memoryEntry is one claim: its token and when it expires.
type memoryEntry struct {
	token   string
	expires time.Time
}

var _ Deduper = (*Memory)(nil)

// NewMemory returns an empty Memory deduper and starts its sweeper. Call
// Close when it is no longer needed.
func NewMemory() *Memory { return newMemory(sweepInterval) }

// newMemory is NewMemory with the sweep interval given.
func newMemory(interval time.Duration) *Memory {
	m := &Memory{
		entries: make(map[string]memoryEntry),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go m.sweepEvery(interval)
	return m
}

// Claim takes key for ttl unless an unexpired claim holds it.
func (m *Memory) Claim(ctx context.Context, key string, ttl time.Duration) (Claim, error) {
	if err := ctx.Err(); err != nil {
		return Claim{}, err
	}
	ttl, err := claimTTL(ttl)
	if err != nil {
		return Claim{}, err
	}
	c := Claim{Key: key, Token: newToken()}
	now := time.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok && now.Before(e.expires) {
		return Claim{}, ErrDuplicate
	}
	m.entries[key] = memoryEntry{token: c.Token, expires: now.Add(ttl)}
	return c, nil
}

// Release removes c.Key if it still holds c.Token.
func (m *Memory) Release(ctx context.Context, c Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.Token == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[c.Key]; ok && e.token == c.Token {
		delete(m.entries, c.Key)
	}
	return nil
}

// Ping reports nil: the store is in memory and always answers, unless ctx is
// done.
func (m *Memory) Ping(ctx context.Context) error { return ctx.Err() }

// Close stops the sweeper. Claims keep working after Close, but the entries
// of expired claims are then removed only when their key is claimed again.
// Close may be called more than once.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

// sweepEvery removes expired entries every interval until Close.
func (m *Memory) sweepEvery(interval time.Duration) {
	defer close(m.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.sweep(now)
		}
	}
}

// sweep removes the entries that expired by now.
func (m *Memory) sweep(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		if !now.Before(e.expires) {
			delete(m.entries, k)
		}
	}
}

// len returns the number of entries, expired or not.
func (m *Memory) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
