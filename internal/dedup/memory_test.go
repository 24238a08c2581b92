package dedup

import (
	"fmt"
	"testing"
	"time"
)

func TestMemorySweepsExpiredRecords(t *testing.T) {
	tests := []struct {
		name            string
		expiring, alive int
	}{
		{"all expired", 100, 0},
		{"live claims stay", 100, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory(10 * time.Millisecond)
			t.Cleanup(func() { m.Close() })
			for i := range tt.alive {
				mustClaim(t, m, fmt.Sprint("alive-", i), "evt_a", false)
			}
			for i := range tt.expiring {
				claim(t, m, fmt.Sprint("expiring-", i), "evt_a", 20*time.Millisecond)
			}
			// Nothing looks the expired keys up again: only the sweeper can
			// remove them.
			deadline := time.Now().Add(pollTimeout)
			for m.len() != tt.alive {
				if time.Now().After(deadline) {
					t.Fatalf("%d entries after %v, want %d: expired records were not swept", m.len(), pollTimeout, tt.alive)
				}
				time.Sleep(5 * time.Millisecond)
			}
			for i := range tt.alive {
				mustFind(t, m, fmt.Sprint("alive-", i), "evt_b", InFlight, "evt_a")
			}
		})
	}
}

func TestMemoryClose(t *testing.T) {
	m := newMemory(time.Millisecond)
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Claims work after Close; only the sweeping stops.
	claim(t, m, "key", "evt_a", 10*time.Millisecond)
	claimWhenFree(t, m, "key", "evt_b")
}
