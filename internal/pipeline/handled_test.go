package pipeline_test

import (
	"errors"
	"testing"

	"github.com/gwook/gwook/internal/pipeline"
)

// TestHandled holds Handled to the answers of POST /notifications to a
// push: 200 (ack) when the event is delivered, dropped on purpose or on
// the dead-letter topic, a nack otherwise.
func TestHandled(t *testing.T) {
	failed := errors.New("publish failed")
	for _, tc := range []struct {
		name string
		r    pipeline.Result
		want bool
	}{
		{"forwarded", pipeline.Result{Outcome: pipeline.Forwarded}, true},
		{"filtered", pipeline.Result{Outcome: pipeline.Filtered}, true},
		{"duplicate", pipeline.Result{Outcome: pipeline.Duplicate}, true},
		{"no application", pipeline.Result{Outcome: pipeline.NoApplication}, true},
		{"invalid, dead-lettered", pipeline.Result{Outcome: pipeline.Invalid, DeadLettered: true}, true},
		{"unavailable, dead-lettered", pipeline.Result{Outcome: pipeline.Unavailable, DeadLettered: true}, true},
		{"invalid without a topic", pipeline.Result{Outcome: pipeline.Invalid}, false},
		{"unavailable, dead-letter publish failed", pipeline.Result{Outcome: pipeline.Unavailable, DeadLetterErr: failed}, false},
		{"forwarded, yet a dead-letter error", pipeline.Result{Outcome: pipeline.Forwarded, DeadLetterErr: failed}, false},
		{"unavailable", pipeline.Result{Outcome: pipeline.Unavailable}, false},
		{"rejected", pipeline.Result{Outcome: pipeline.Rejected}, false},
		{"rate limited", pipeline.Result{Outcome: pipeline.RateLimited}, false},
		{"dedup unavailable", pipeline.Result{Outcome: pipeline.DedupUnavailable}, false},
		{"in flight", pipeline.Result{Outcome: pipeline.InFlight}, false},
	} {
		if got := tc.r.Handled(); got != tc.want {
			t.Errorf("%s: Handled() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
