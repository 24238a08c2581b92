package direct_test

import (
	"context"
	"fmt"
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
		{"Postgres", func(b *testing.B) *store.Store { return openStore(b, pgtest.NewDatabase(b), "") }},
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
