package filter

import (
	"strconv"
	"strings"
)

// Limits on type patterns, checked by Compile.
const (
	// MaxPatterns is the largest number of patterns in include_types or
	// exclude_types.
	MaxPatterns = 100
	// MaxPatternLength is the longest pattern, in bytes.
	MaxPatternLength = 256
)

// Types decides from its type alone whether an event passes.
//
// A pattern is an exact type ("user.deleted"), a prefix followed by "*"
// ("invoice.*" matches "invoice.paid" but not "invoice"), or "*" alone, which
// matches every type.
type Types struct {
	// Include lists the types that pass. Nil lets every type pass; a non-nil
	// empty list lets none pass.
	Include []string
	// Exclude lists the types that never pass, whatever Include says.
	Exclude []string
}

// GlobalTypes returns the Types of Gwook's own FILTER_INCLUDE_TYPES and
// FILTER_EXCLUDE_TYPES settings, where an unset or empty include list means
// every type (and never "no type").
func GlobalTypes(include, exclude []string) Types {
	if len(include) == 0 {
		include = nil
	}
	return Types{Include: include, Exclude: exclude}
}

// Allows reports whether events of type eventType pass.
func (t Types) Allows(eventType string) bool {
	if t.Include != nil {
		if _, ok := matchingPattern(t.Include, eventType); !ok {
			return false
		}
	}
	_, excluded := matchingPattern(t.Exclude, eventType)
	return !excluded
}

// decide returns the rule that stops events of type eventType, with its
// reason, or "" when the type passes.
func (t Types) decide(eventType string) (Rule, string) {
	if t.Include != nil {
		if len(t.Include) == 0 {
			return RuleIncludeTypes, "include_types is empty, so no event type is delivered"
		}
		if _, ok := matchingPattern(t.Include, eventType); !ok {
			return RuleIncludeTypes, "event type " + strconv.Quote(eventType) + " matches no include_types pattern"
		}
	}
	if p, ok := matchingPattern(t.Exclude, eventType); ok {
		return RuleExcludeTypes, "event type " + strconv.Quote(eventType) +
			" matches exclude_types pattern " + strconv.Quote(p)
	}
	return RuleNone, ""
}

// matchingPattern returns the first pattern that eventType matches.
func matchingPattern(patterns []string, eventType string) (string, bool) {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(eventType, prefix) {
				return p, true
			}
		} else if p == eventType {
			return p, true
		}
	}
	return "", false
}

// checkPatterns reports what is wrong with a list of patterns, naming the
// list field (e.g. "include_types") and each bad entry by index.
func checkPatterns(field string, patterns []string) []Problem {
	var problems []Problem
	if len(patterns) > MaxPatterns {
		problems = append(problems, Problem{
			Field:  field,
			Rule:   ProblemTooMany,
			Detail: "at most " + strconv.Itoa(MaxPatterns) + " patterns are allowed, got " + strconv.Itoa(len(patterns)),
		})
	}
	for i, p := range patterns {
		entry := field + "[" + strconv.Itoa(i) + "]"
		switch {
		case len(p) > MaxPatternLength:
			problems = append(problems, Problem{
				Field:  entry,
				Rule:   ProblemTooLong,
				Detail: "a pattern is at most " + strconv.Itoa(MaxPatternLength) + " characters, got " + strconv.Itoa(len(p)),
			})
		case !validPattern(p):
			problems = append(problems, Problem{
				Field: entry,
				Rule:  ProblemPattern,
				Detail: strconv.Quote(p) + " is not a pattern: use an event type of letters, digits, '-', '_' and '.', " +
					"optionally followed by a single '*' (e.g. invoice.*), or '*' alone",
			})
		}
	}
	return problems
}

// validPattern reports whether p is "*" or matches ^[a-zA-Z0-9\-_.]+\*?$.
func validPattern(p string) bool {
	if p == "*" {
		return true
	}
	p = strings.TrimSuffix(p, "*")
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
