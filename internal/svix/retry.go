package svix

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// RetryPolicy bounds how long and how often one event is retried.
type RetryPolicy struct {
	MaxAttempts     int           // attempts in all, the first included
	MaxElapsed      time.Duration // from the first attempt to giving up
	InitialInterval time.Duration // first backoff, doubled each time, with ±50% jitter
	MaxInterval     time.Duration // largest backoff between two attempts
	// RetryAfterMax is the longest Retry-After Send waits for; a longer
	// one ends the retries at once.
	RetryAfterMax time.Duration
}

// newBackOff returns the exponential backoff with jitter between attempts.
func (p RetryPolicy) newBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.InitialInterval
	b.MaxInterval = p.MaxInterval
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	return b
}

// maxRetryAfter bounds a Retry-After read from Svix, so that a nonsensical
// value cannot overflow a time.Duration on its way to the caller.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header value, given in seconds or as
// an HTTP date, relative to now. It returns the wait Svix asked for, not
// capped by any policy (only by maxRetryAfter); ok is false when the
// header is absent or unreadable.
func parseRetryAfter(value string, now time.Time) (wait time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	// An out-of-range number comes back as the largest (or smallest) int64.
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if at, err := http.ParseTime(value); err == nil {
		return min(max(at.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}
