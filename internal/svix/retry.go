package svix

import (
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
	RetryAfterMax   time.Duration // a longer Retry-After waits this long
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

// retryAfter parses a Retry-After header value, given in seconds or as an
// HTTP date, relative to now, and caps it at p.RetryAfterMax. ok is false
// when the header is absent or unreadable.
func (p RetryPolicy) retryAfter(value string, now time.Time) (wait time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		wait = time.Duration(min(secs, int64(p.RetryAfterMax/time.Second)+1)) * time.Second
	} else if at, err := http.ParseTime(value); err == nil {
		wait = max(at.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(wait, p.RetryAfterMax), true
}
