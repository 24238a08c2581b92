// Package event defines the Notification that Gwook forwards to Svix, its
// validation rules, and the structured list of rule violations reported to
// callers when an event is rejected.
package event

import (
	"encoding/json"
)

// Notification is one internal event. Its JSON shape is described by
// test/events/event-spec.json; a test checks that this type and the spec agree.
type Notification struct {
	// ID identifies the event. It becomes Svix's eventId and idempotency key.
	ID string `json:"id" validate:"required,max=256,svixid"`
	// Type is the event type. It becomes Svix's eventType.
	Type string `json:"type" validate:"required,max=256,svixid"`
	// Source names the system that produced the event.
	Source string `json:"source" validate:"required,max=1024"`
	// Project names the project the event belongs to.
	Project string `json:"project" validate:"required,max=1024"`
	// UserID is the customer the event is for. Without a fixed
	// SVIX_APPLICATION_ID it is the Svix application UID.
	UserID string `json:"user_id" validate:"required,max=256"`
	// Time is when the event happened, in RFC 3339.
	Time string `json:"time" validate:"required,rfc3339"`
	// Data is the event-specific body: always a JSON object.
	Data json.RawMessage `json:"data" validate:"required,jsonobject"`

	// Raw holds the event exactly as it arrived. It is the Svix payload, so
	// the bytes are passed on without a decode and re-encode.
	Raw []byte `json:"-"`
}
