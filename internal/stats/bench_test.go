package stats_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/store"
)

func discard(context.Context, []store.StatsRow) error { return nil }

// appIDs returns n application ids as long as Svix's (app_ and 27
// characters).
func appIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("app_%027d", i)
	}
	return ids
}

// BenchmarkAdd measures Add of rows already held, from every core at once:
// the cost on the path of each event.
func BenchmarkAdd(b *testing.B) {
	for _, apps := range []int{1, 1000} {
		b.Run(fmt.Sprintf("apps=%d", apps), func(b *testing.B) {
			ids := appIDs(apps)
			r := stats.NewRecorder(discard, stats.Options{})
			for _, id := range ids {
				r.Add(id, stats.Forwarded)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					r.Add(ids[i%len(ids)], stats.Outcome(i%6))
					i++
				}
			})
		})
	}
}

// BenchmarkFlushBuild measures one flush of 10 s at 5,000 events/s spread
// over 1,000 applications: 50,000 events in 1,000 rows, taken from the
// live map, built into rows, sorted and given to a write that does
// nothing. The Adds are not timed.
func BenchmarkFlushBuild(b *testing.B) {
	const apps, events = 1000, 50_000
	ids := appIDs(apps)
	now := time.Date(2025, 6, 1, 12, 0, 30, 0, time.UTC)
	r := stats.NewRecorder(discard, stats.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i := range events {
			r.Add(ids[i%apps], stats.Outcome(i%6))
		}
		b.StartTimer()
		if err := r.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(apps, "rows/flush")
}

// BenchmarkPendingRowBytes measures the heap a held row keeps, to size
// MaxPendingRows: each op adds one row (a new application) and the heap
// retained is divided by the rows.
func BenchmarkPendingRowBytes(b *testing.B) {
	ids := appIDs(b.N)
	r := stats.NewRecorder(discard, stats.Options{MaxPendingRows: b.N + 1})
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		r.AddAt(ids[i], stats.Forwarded, at)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if r.Pending() != b.N {
		b.Fatalf("Pending() = %d, want %d", r.Pending(), b.N)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/row")
	runtime.KeepAlive(ids)
	runtime.KeepAlive(r)
}
