package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pubsubemu"
)

// BenchmarkPull measures events/s consumed from one subscription by
// streaming pull: b.N events are published first, then Gwook pulls them
// and sends each to an in-process Svix-compatible server; the clock runs
// from the start of the pull until Svix holds them all. Run it with a
// fixed count, e.g. -benchtime=5000x.
func BenchmarkPull(b *testing.B) {
	for _, outstanding := range []int{100, 1000} {
		b.Run("outstanding="+strconv.Itoa(outstanding), func(b *testing.B) {
			emu := pubsubemu.FromEnv(b)
			topic := emu.CreateTopic(b, emu.UniqueID(b, "bench-events"))
			sub := emu.CreatePullSubscription(b, emu.UniqueID(b, "bench-pull"), topic, 10*time.Second)
			g := gwooktest.Start(b, map[string]string{
				"PUBSUB_PROJECT_ID":             emu.Project,
				"PUBSUB_SUBSCRIPTIONS":          sub,
				"PULL_MAX_OUTSTANDING_MESSAGES": strconv.Itoa(outstanding),
				"LOG_LEVEL":                     "info",
			}, app.Options{})
			for _, body := range uniqueEvents(b, b.N) {
				emu.Publish(b, topic, body, nil)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			b.ResetTimer()
			started := time.Now()
			go func() {
				defer close(done)
				g.App.Pull(ctx)
			}()
			g.Svix.WaitForMessages(b, b.N, 5*time.Minute)
			elapsed := time.Since(started)
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}
