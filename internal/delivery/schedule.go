package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultSchedule is DELIVERY_RETRY_SCHEDULE's default: the waits before
// the second to the eighth attempt.
const DefaultSchedule = "5s,5m,30m,2h,5h,10h,10h"

// jitter is the largest fraction by which a schedule step is lengthened or
// shortened.
const jitter = 0.2

// Verdict is what follows an attempt.
type Verdict int

// The verdicts.
const (
	// Delivered: the receiver answered 2xx; nothing more to do.
	Delivered Verdict = iota + 1
	// Retry: attempt again after the returned delay.
	Retry
	// Gone: the receiver answered 410; the endpoint is to be disabled and
	// not attempted again.
	Gone
	// Failed: the schedule is exhausted; the message failed for the
	// endpoint.
	Failed
)

func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Gone:
		return "gone"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Schedule is the waits between attempts: steps[i] is the wait after
// attempt i+1 failed. The zero Schedule allows a single attempt.
type Schedule struct {
	steps []time.Duration
}

// ParseSchedule reads a schedule written as comma-separated positive
// durations, like DefaultSchedule. There must be at least one.
func ParseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return Schedule{}, errors.New("retry schedule is empty; want durations like " + DefaultSchedule)
	}
	parts := strings.Split(s, ",")
	steps := make([]time.Duration, 0, len(parts))
	for i, part := range parts {
		part = strings.TrimSpace(part)
		d, err := time.ParseDuration(part)
		if err != nil {
			return Schedule{}, fmt.Errorf("retry schedule step %d (%q) is not a duration like 5m or 2h", i+1, part)
		}
		if d <= 0 {
			return Schedule{}, fmt.Errorf("retry schedule step %d (%q) is not positive", i+1, part)
		}
		steps = append(steps, d)
	}
	return Schedule{steps: steps}, nil
}

// String writes the schedule as ParseSchedule reads it.
func (s Schedule) String() string {
	parts := make([]string, len(s.steps))
	for i, d := range s.steps {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// Longest is the longest step, which also caps a wait asked for with
// Retry-After.
func (s Schedule) Longest() time.Duration {
	var longest time.Duration
	for _, d := range s.steps {
		longest = max(longest, d)
	}
	return longest
}

// Attempts is how many attempts the schedule allows: one plus one per
// step.
func (s Schedule) Attempts() int { return 1 + len(s.steps) }

// Next decides what follows attempt number attempt (1-based; a smaller
// number counts as 1) that ended with r:
//
//   - Delivered for a 2xx;
//   - Gone for a 410, whatever the attempt;
//   - Failed once attempt is Attempts() or more;
//   - otherwise Retry, after the Retry-After wait of a 429 or 5xx capped by
//     Longest (without jitter), or after the attempt's step changed by at
//     most ±20 %: step × (0.8 + 0.4 × rnd()), where rnd returns a number in
//     [0, 1) (math/rand/v2's Float64).
//
// The delay is 0 for every verdict but Retry.
func (s Schedule) Next(attempt int, r Result, rnd func() float64) (Verdict, time.Duration) {
	switch {
	case r.OK():
		return Delivered, 0
	case r.Status == http.StatusGone:
		return Gone, 0
	}
	attempt = max(attempt, 1)
	if attempt > len(s.steps) {
		return Failed, 0
	}
	if r.RetryAfter > 0 && (r.Status == http.StatusTooManyRequests || r.Status >= 500) {
		return Retry, min(r.RetryAfter, s.Longest())
	}
	step := s.steps[attempt-1]
	factor := 1 - jitter + 2*jitter*min(max(rnd(), 0), 1)
	return Retry, time.Duration(float64(step) * factor)
}
