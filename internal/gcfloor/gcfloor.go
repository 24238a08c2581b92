// Package gcfloor keeps Go's garbage collector from collecting a small heap
// over and over: it gives the heap goal a floor.
//
// With the default GOGC=100, the collector runs each time the heap doubles
// the live heap it last marked. Gwook's live heap under load is a few MiB,
// so at thousands of requests a second it collected many times a second,
// and each collection's fixed work (scanning every goroutine's stack) cost
// gwook a fifth of its CPU. A floor of 64 MiB lets garbage pile up to that
// before a collection while the live heap is small, and changes nothing
// once the live heap is past half of it (10,000 idle connections hold about
// 100 MiB), where the collector already waits as long.
//
// The floor is set by raising GOGC after each collection to what makes the
// next goal max(2 × live heap, floor). GOMEMLIMIT, when set, still bounds
// the heap as it always does.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the GOGC the floor sets, so that a live heap that grows
// many times over between two collections cannot move the goal past
// maxPercent/100 + 1 times that live heap.
const maxPercent = 1000

// Floor keeps the heap goal at or above floor bytes until stop is called,
// which puts GOGC back to what it was. It adjusts GOGC at the end of each
// collection.
func Floor(floor uint64) (stop func()) {
	f := &floorKeeper{floor: floor, initial: int(read("/gc/gogc:percent"))}
	f.adjust()
	f.arm()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.stopped {
			f.stopped = true
			debug.SetGCPercent(f.initial)
		}
	}
}

type floorKeeper struct {
	floor   uint64
	initial int

	mu      sync.Mutex // orders adjust and stop, so that stop has the last word
	stopped bool
}

// arm makes the next collection call adjust: the collector finds the
// sentinel unreachable and runs its finalizer once the cycle ends.
func (f *floorKeeper) arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) {
		if f.adjust() {
			f.arm()
		}
	})
}

// sentinel is large enough to get an allocation of its own: the runtime
// may never finalize an object that shares a tiny allocation block.
type sentinel struct{ _ [16]byte }

// adjust sets GOGC from the live heap the last collection marked, unless
// the floor was stopped, and reports whether it did.
func (f *floorKeeper) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	debug.SetGCPercent(Percent(read("/gc/heap/live:bytes"), f.floor, f.initial))
	return true
}

// read returns the runtime metric name, which must be a uint64.
func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Percent is the GOGC that makes the heap goal max(live × (1 + base/100),
// floor), at most maxPercent.
func Percent(live, floor uint64, base int) int {
	if live == 0 || live >= floor {
		return base
	}
	p := int(floor*100/live) - 100
	return min(max(p, base), max(base, maxPercent))
}
