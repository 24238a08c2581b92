package pipeline

import (
	"context"
	"time"

	"github.com/gwook/gwook/internal/event"
)

// Backend takes an event for delivery to the application appID: the Svix
// sender, or Gwook's own delivery queue. Its Sent says what became of the
// event.
type Backend interface {
	Send(ctx context.Context, appID string, n *event.Notification) Sent
}

// BackendName names the backend that reported a Sent.
type BackendName string

// The backends.
const (
	// BackendSvix is Svix: it takes the event over HTTP and delivers it.
	BackendSvix BackendName = "svix"
	// BackendDirect is Gwook's own delivery queue in its database.
	BackendDirect BackendName = "direct"
)

// Sent is what a Backend reports of one event.
type Sent struct {
	// Backend is the backend that reported it.
	Backend BackendName
	// Outcome is one of:
	//   - Forwarded: accepted for delivery (Svix created the message, or
	//     the queue stored it with its delivery jobs);
	//   - Duplicate: the backend has a message with the event's id already
	//     (Svix's 409), which counts as delivered;
	//   - Rejected: refused for good (Svix's 4xx other than 401, 403, 409
	//     and 429; the application is gone from the queue's database);
	//   - RateLimited: the backend kept asking to slow down (Svix's 429);
	//   - Unavailable: the backend could not be reached or failed (Svix's
	//     5xx, a timeout, the database).
	// Any other value, the zero value included, is taken as Unavailable.
	Outcome Outcome
	// Unauthorized, with Outcome Unavailable, says that the backend
	// refused Gwook's own credentials (Svix's 401 or 403): Gwook is
	// misconfigured and the event may well be fine, so it is left with
	// the caller rather than dead-lettered.
	Unauthorized bool
	// MessageID is the backend's id of the message: Svix's, or Gwook's own
	// msg_ id. For a Duplicate from the queue it is the message that has
	// the event id already.
	MessageID string
	// Attempts is how many requests were made, the first included; 0 for
	// the queue, which makes none.
	Attempts int
	// Status is the backend's last HTTP status (Svix only); 0 when none was
	// received.
	Status int
	// RetryAfter is the last Retry-After the backend asked for (Svix only).
	RetryAfter time.Duration
	// Body is the backend's last error body, truncated, for logs (Svix
	// only).
	Body string
	// Err is the last error; nil when Forwarded.
	Err error
}
