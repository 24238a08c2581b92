package dedup

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestCommandDeadline checks that every Redis command and pipeline runs
// under the command budget's deadline, and that an earlier deadline of the
// caller is kept.
func TestCommandDeadline(t *testing.T) {
	const budget = time.Hour
	hook := commandDeadline(budget)
	deadlines := func(ctx context.Context) []time.Time {
		var got []time.Time
		record := func(ctx context.Context) {
			d, ok := ctx.Deadline()
			if !ok {
				t.Error("no deadline")
			}
			got = append(got, d)
		}
		_ = hook.ProcessHook(func(ctx context.Context, _ redis.Cmder) error { record(ctx); return nil })(ctx, redis.NewStatusCmd(ctx, "ping"))
		_ = hook.ProcessPipelineHook(func(ctx context.Context, _ []redis.Cmder) error { record(ctx); return nil })(ctx, nil)
		return got
	}

	before := time.Now()
	got := deadlines(context.Background())
	after := time.Now()
	for _, d := range got {
		if d.Before(before.Add(budget)) || d.After(after.Add(budget)) {
			t.Errorf("deadline %v, want the budget from the call, between %v and %v", d, before.Add(budget), after.Add(budget))
		}
	}

	earlier, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, _ := earlier.Deadline()
	for _, d := range deadlines(earlier) {
		if !d.Equal(want) {
			t.Errorf("deadline %v, want the caller's earlier %v", d, want)
		}
	}
}
