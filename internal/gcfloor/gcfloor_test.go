package gcfloor_test

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/gcfloor"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 4 * mib, floor: 64 * mib, base: 100, want: 1000},  // 1500 would be the floor's, capped
		{live: 8 * mib, floor: 64 * mib, base: 100, want: 700},   // goal 8 × 8 MiB = 64 MiB
		{live: 16 * mib, floor: 64 * mib, base: 100, want: 300},  // goal 4 × 16 MiB
		{live: 32 * mib, floor: 64 * mib, base: 100, want: 100},  // 2 × live is the floor already
		{live: 48 * mib, floor: 64 * mib, base: 100, want: 100},  // past the floor's reach: GOGC's own
		{live: 200 * mib, floor: 64 * mib, base: 100, want: 100}, // a large heap: unchanged
		{live: 8 * mib, floor: 64 * mib, base: 2000, want: 2000}, // never below the base
		{live: 0, floor: 64 * mib, base: 100, want: 100},         // nothing marked yet
	} {
		if got := gcfloor.Percent(c.live, c.floor, c.base); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB, %d) = %d, want %d", c.live/mib, c.floor/mib, c.base, got, c.want)
		}
	}
}

// TestFloorFollowsTheLiveHeap runs the floor in this test's process: GOGC
// rises while the live heap is small, falls back to 100 once a live slice
// holds the heap past half the floor, and is restored by stop.
func TestFloorFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 256 << 20
	stop := gcfloor.Floor(floor)

	waitForGOGC(t, func(p uint64) bool { return p > 100 }, "above 100 with a small live heap")

	live := make([]byte, floor/2+(16<<20))
	for i := range live {
		live[i] = 1 // touched, so it is not one page mapped many times
	}
	waitForGOGC(t, func(p uint64) bool { return p == 100 }, "100 with a live heap past half the floor")
	runtime.KeepAlive(live)

	stop()
	if p := gogc(); p != 100 {
		t.Errorf("GOGC after stop = %d, want 100", p)
	}
}

// waitForGOGC collects until GOGC satisfies ok, for at most 10 s.
func waitForGOGC(t *testing.T, ok func(uint64) bool, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(gogc()) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d, want %s", gogc(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine's turn
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
