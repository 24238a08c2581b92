package dedup

import (
	"context"
	"sync"
	"time"
)

// sweepInterval is how often NewMemory's sweeper removes expired records.
const sweepInterval = time.Minute

// Memory is a Deduper whose records live in this process only: replicas do
// not see each other's records, and a restart forgets them. It has the same
// semantics as Redis; a mutex makes each step atomic.
//
// A record stops counting as soon as it expires. A background sweeper
// removes expired records that are never looked at again, so memory holds at
// most the records written within one window plus one sweep interval. Close
// stops the sweeper.
type Memory struct {
	mu      sync.Mutex
	entries map[string]memoryEntry

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// memoryEntry is one record: the event holding the key, its state and when
// it expires.
type memoryEntry struct {
	eventID   string
	delivered bool
	expires   time.Time
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

// Claim asks for key on behalf of eventID (see Deduper.Claim).
func (m *Memory) Claim(ctx context.Context, key, eventID string, lease time.Duration) (Claim, error) {
	if err := ctx.Err(); err != nil {
		return Claim{}, err
	}
	lease, err := checkClaim(eventID, lease)
	if err != nil {
		return Claim{}, err
	}
	c := Claim{Key: key, EventID: eventID, Status: Claimed}
	now := time.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	switch {
	case !ok || !now.Before(e.expires):
		m.entries[key] = memoryEntry{eventID: eventID, expires: now.Add(lease)}
	case e.eventID == eventID:
		c.Own = true
		if !e.delivered {
			e.expires = now.Add(lease)
			m.entries[key] = e
		}
	case e.delivered:
		c.Status, c.Holder = Duplicate, e.eventID
	default:
		c.Status, c.Holder, c.Remaining = InFlight, e.eventID, e.expires.Sub(now)
	}
	return c, nil
}

// Commit marks key delivered by c.EventID for ttl, at once (see
// Deduper.Commit).
func (m *Memory) Commit(c Claim, ttl time.Duration, done func(error)) {
	done(m.commit(c, ttl))
}

func (m *Memory) commit(c Claim, ttl time.Duration) error {
	ttl, err := checkCommit(c, ttl)
	if err != nil {
		return err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[c.Key]; ok && now.Before(e.expires) && e.eventID != c.EventID {
		return ErrNotHeld
	}
	m.entries[c.Key] = memoryEntry{eventID: c.EventID, delivered: true, expires: now.Add(ttl)}
	return nil
}

// Release deletes c.Key while it is in flight for c.EventID.
func (m *Memory) Release(ctx context.Context, c Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.Status != Claimed {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[c.Key]; ok && !e.delivered && e.eventID == c.EventID {
		delete(m.entries, c.Key)
	}
	return nil
}

// Ping reports nil: the store is in memory and always answers, unless ctx is
// done.
func (m *Memory) Ping(ctx context.Context) error { return ctx.Err() }

// Close stops the sweeper. Claims keep working after Close, but expired
// records are then removed only when their key is claimed again.
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
