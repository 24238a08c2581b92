package direct_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

// BenchmarkSendDeliver sends b.N events, one after another, to one
// endpoint while the workers deliver them, and waits until the receiver has
// them all. It reports events accepted and delivered per second, and the
// time one Send takes (the committed insert of the message and its job).
func BenchmarkSendDeliver(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(b *testing.B) *store.Store
	}{
		{"SQLite", func(b *testing.B) *store.Store { return openStore(b, "", b.TempDir()) }},
		{"Postgres", func(b *testing.B) *store.Store {
			return openStore(b, pgtest.NewDatabase(b)+os.Getenv("BENCH_PG_QUERY"), "")
		}},
	} {
		b.Run(db.name, func(b *testing.B) {
			st := db.open(b)
			ctx := context.Background()
			if _, err := st.CreateApplication(ctx, store.Application{ID: "app", Name: "app"}); err != nil {
				b.Fatal(err)
			}
			secret := store.NewEndpointSecret()
			rcv := newReceiver(b, []string{secret})
			if _, err := st.CreateEndpoint(ctx, store.Endpoint{ApplicationID: "app", URL: rcv.URL, Secret: secret}); err != nil {
				b.Fatal(err)
			}
			q := newQueue(b, st, fastSchedule, nil, direct.Options{})
			startQueue(b, q)
			var sending time.Duration
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				s := time.Now()
				if _, err := q.Send(ctx, "app", newEvent(fmt.Sprint("ev-", i), "t")); err != nil {
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
// receivers have every webhook. It reports events accepted per second
// (while sending) and webhooks delivered per second (to the last).
func BenchmarkSendDeliverParallel(b *testing.B) {
	for _, fanout := range []int{1, 10} {
		for _, db := range []struct {
			name string
			open func(b *testing.B) *store.Store
		}{
			{"SQLite", func(b *testing.B) *store.Store { return openStore(b, "", b.TempDir()) }},
			{"Postgres", func(b *testing.B) *store.Store {
				return openStore(b, pgtest.NewDatabase(b)+os.Getenv("BENCH_PG_QUERY"), "")
			}},
		} {
			b.Run(fmt.Sprintf("%s/fanout=%d", db.name, fanout), func(b *testing.B) {
				st := db.open(b)
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
				q := newQueue(b, st, fastSchedule, nil, direct.Options{MaxInFlightPerEndpoint: 1000})
				startQueue(b, q)
				const senders = 64
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range senders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							if _, err := q.Send(ctx, "app", newEvent(fmt.Sprint("ev-", i), "t")); err != nil {
								b.Error(err)
								return
							}
						}
					}()
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
