package store

import "time"

// Filter is the one filter of an application: which of its events leave
// Gwook. Package filter compiles and evaluates it.
type Filter struct {
	ApplicationID string
	// IncludeTypes is nil for every type; otherwise only types matching one
	// of these patterns (an empty, non-nil list: none).
	IncludeTypes []string
	// ExcludeTypes: types matching one of these patterns never leave; nil
	// or empty for none.
	ExcludeTypes []string
	// Expression is a CEL expression over the event; empty for none.
	Expression string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}
