package pipeline

import "strings"

// TypeFilter decides from its type whether an event leaves Gwook at all.
// A pattern is an exact type ("user.deleted") or a prefix ending in "*"
// ("internal.*"). With Include set, only matching types pass; Exclude then
// removes types from what is left.
type TypeFilter struct {
	Include []string
	Exclude []string
}

// Allows reports whether events of type eventType are forwarded.
func (f TypeFilter) Allows(eventType string) bool {
	if len(f.Include) > 0 && !matchesAny(f.Include, eventType) {
		return false
	}
	return !matchesAny(f.Exclude, eventType)
}

func matchesAny(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(eventType, prefix) {
				return true
			}
		} else if p == eventType {
			return true
		}
	}
	return false
}
