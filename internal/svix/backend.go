package svix

import (
	"context"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

// Backend is a Sender as the pipeline's backend.
type Backend struct{ Sender *Sender }

// Send sends n to the application appID through the Sender and reports
// the result in the pipeline's terms.
func (b Backend) Send(ctx context.Context, appID string, n *event.Notification) pipeline.Sent {
	return b.Sender.Send(ctx, appID, n).Sent()
}

// Sent is r in the pipeline's terms: Delivered is Forwarded, and
// Unauthorized is Unavailable with Sent.Unauthorized set.
func (r Result) Sent() pipeline.Sent {
	s := pipeline.Sent{Backend: pipeline.BackendSvix, MessageID: r.MessageID, Attempts: r.Attempts,
		Status: r.Status, RetryAfter: r.RetryAfter, Body: r.Body, Err: r.Err}
	switch r.Outcome {
	case Delivered:
		s.Outcome = pipeline.Forwarded
	case Duplicate:
		s.Outcome = pipeline.Duplicate
	case Rejected:
		s.Outcome = pipeline.Rejected
	case RateLimited:
		s.Outcome = pipeline.RateLimited
	case Unauthorized:
		s.Outcome, s.Unauthorized = pipeline.Unavailable, true
	default:
		s.Outcome = pipeline.Unavailable
	}
	return s
}
