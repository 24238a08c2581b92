// Package pipeline is the one path every event takes, whichever way it came
// in: validate, filter, resolve the Svix application, send. It returns an
// Outcome; only the HTTP layer turns an outcome into a status code.
package pipeline

import (
	"context"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/svix"
)

// Outcome is what became of one event.
type Outcome string

// The outcomes of Process.
const (
	Forwarded   Outcome = "forwarded"    // Svix accepted the message
	Filtered    Outcome = "filtered"     // dropped on purpose by the type filter
	Duplicate   Outcome = "duplicate"    // Svix already has this eventId
	Invalid     Outcome = "invalid"      // the body is not a valid event
	Rejected    Outcome = "rejected"     // Svix refused the message for good (4xx other than 409 and 429)
	RateLimited Outcome = "rate_limited" // Svix answered 429 after every retry
	Unavailable Outcome = "unavailable"  // Svix failed or was unreachable after every retry
)

// Result is the Outcome of one event and what led to it.
type Result struct {
	Outcome Outcome
	// AppID is the Svix application the event was for, once resolved.
	AppID string
	// Svix reports the calls to Svix; zero when none was made.
	Svix svix.Result
	// Err explains any outcome but Forwarded and Filtered. For Invalid it is
	// an *event.InvalidError.
	Err error
}

// Pipeline processes events. It is safe for concurrent use.
type Pipeline struct {
	sender *svix.Sender
	filter TypeFilter
	// appID, when set, is the Svix application for every event; otherwise
	// each event's user_id is the application UID.
	appID string
}

// New returns a Pipeline that sends through sender.
func New(sender *svix.Sender, filter TypeFilter, appID string) *Pipeline {
	return &Pipeline{sender: sender, filter: filter, appID: appID}
}

// Process takes one decoded message through the pipeline.
func (p *Pipeline) Process(ctx context.Context, m *ingest.Message) Result {
	if m.Err != nil {
		return Result{Outcome: Invalid, Err: m.Err}
	}
	if !p.filter.Allows(m.Event.Type) {
		return Result{Outcome: Filtered}
	}
	appID, err := p.application(&m.Event)
	if err != nil {
		return Result{Outcome: Invalid, Err: err}
	}
	sent := p.sender.Send(ctx, appID, &m.Event)
	return Result{Outcome: outcomeOf(sent.Outcome), AppID: appID, Svix: sent, Err: sent.Err}
}

// application resolves the Svix application of n.
func (p *Pipeline) application(n *event.Notification) (string, error) {
	if p.appID != "" {
		return p.appID, nil
	}
	if !event.ValidSvixID(n.UserID) {
		return "", &event.InvalidError{Reason: "event failed validation", Fields: []event.FieldError{{
			Field: "user_id", Rule: "svixid",
			Detail: `is the Svix application UID here, so it must match ^[a-zA-Z0-9\-_.]+$ and be at most 256 characters`,
		}}}
	}
	return n.UserID, nil
}

func outcomeOf(o svix.Outcome) Outcome {
	switch o {
	case svix.Delivered:
		return Forwarded
	case svix.Duplicate:
		return Duplicate
	case svix.Rejected:
		return Rejected
	case svix.RateLimited:
		return RateLimited
	default:
		return Unavailable
	}
}
