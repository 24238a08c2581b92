package direct_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

// benchDatabases open a new, empty Store of each dialect for a benchmark.
var benchDatabases = []struct {
	name string
	open func(b *testing.B) *store.Store
}{
	{"SQLite", func(b *testing.B) *store.Store { return openStore(b, "", b.TempDir()) }},
	{"Postgres", func(b *testing.B) *store.Store { return openStore(b, pgtest.NewDatabase(b), "") }},
}

// startBench makes application "app" with fanout endpoints on one receiver
// in st, and a started queue with opts.
func startBench(b *testing.B, st *store.Store, fanout int, opts direct.Options) (testQueue, *receiver) {
	b.Helper()
	ctx := context.Background()
	if _, err := st.CreateApplication(ctx, store.Application{ID: "app", Name: "app"}); err != nil {
		b.Fatal(err)
	}
	secret := store.NewEndpointSecret()
	rcv := newReceiver(b, []string{secret})
	for range fanout {
		if _, err := st.CreateEndpoint(ctx, store.Endpoint{ApplicationID: "app", URL: rcv.URL, Secret: secret}); err != nil {
			b.Fatal(err)
		}
	}
	q := newQueue(b, st, fastSchedule, nil, opts)
	startQueue(b, q)
	if err := q.catalog.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	return q, rcv
}

// BenchmarkSendDeliver sends b.N events, one after another, to one
// endpoint while the workers deliver them, and waits until the receiver has
// them all. It reports events accepted and delivered per second, and the
// time one Send takes (the committed insert of the message and its job).
func BenchmarkSendDeliver(b *testing.B) {
	for _, db := range benchDatabases {
		b.Run(db.name, func(b *testing.B) {
			q, rcv := startBench(b, db.open(b), 1, direct.Options{})
			ctx := context.Background()
			var sending time.Duration
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				s := time.Now()
				if _, err := q.Queue.Send(ctx, "app", newEvent(fmt.Sprint("ev-", i), "t")); err != nil {
					b.Fatal(err)
				}
				sending += time.Since(s)
			}
			if _, err := rcv.WaitFor(b.N, 2*time.Minute); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "delivered/s")
			b.ReportMetric(float64(sending.Microseconds())/float64(b.N), "send-µs/op")
		})
	}
}

// BenchmarkSendDeliverParallel sends b.N events from 64 goroutines to
// fanout endpoints while the workers deliver them, and waits until the
// receiver has every webhook. It reports events accepted per second (while
// sending) and webhooks delivered per second (to the last).
func BenchmarkSendDeliverParallel(b *testing.B) {
	for _, fanout := range []int{1, 10} {
		for _, db := range benchDatabases {
			b.Run(fmt.Sprintf("%s/fanout=%d", db.name, fanout), func(b *testing.B) {
				q, rcv := startBench(b, db.open(b), fanout, direct.Options{MaxInFlightPerEndpoint: 1000})
				ctx := context.Background()
				const senders = 64
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range senders {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							if _, err := q.Queue.Send(ctx, "app", newEvent(fmt.Sprint("ev-", i), "t")); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				accepted := time.Since(start)
				if _, err := rcv.WaitFor(b.N*fanout, 5*time.Minute); err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
				b.ReportMetric(float64(b.N*fanout)/elapsed.Seconds(), "delivered/s")
			})
		}
	}
}
