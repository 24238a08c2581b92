package config

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/truncate"
)

// checkForms reads every variable Config has a field for through lookuper
// and reports, in words, each value that is not of its field's form: the
// variable, what was given, and what is expected. It returns the names of
// those variables.
func checkForms(lookuper envconfig.Lookuper, p *problems) map[string]bool {
	unreadable := map[string]bool{}
	for f := range reflect.TypeFor[Config]().Fields() {
		name := variableName(f)
		value, found := lookuper.Lookup(name)
		if !found {
			continue
		}
		if expected := formProblem(f.Type, value); expected != "" {
			p.add("%s: %s %s", name, quoted(value), expected)
			unreadable[name] = true
		}
	}
	return unreadable
}

// formProblem returns what is wrong with value as a value of type t, such
// as `is not a duration; use a number with a unit, e.g. 30s`, or "".
// It reads value as envconfig does.
func formProblem(t reflect.Type, value string) string {
	if t == reflect.TypeFor[time.Duration]() {
		if _, err := time.ParseDuration(value); err != nil {
			return "is not a duration; use a number with a unit, e.g. 30s or 500ms"
		}
		return ""
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		if _, err := strconv.ParseInt(value, 0, t.Bits()); err != nil {
			return "is not a whole number (or is out of range); use e.g. 4000"
		}
	case reflect.Float64:
		if _, err := strconv.ParseFloat(value, t.Bits()); err != nil {
			return "is not a number; use e.g. 0.25"
		}
	case reflect.Bool:
		if _, err := strconv.ParseBool(value); err != nil {
			return "is not a boolean; use true or false"
		}
	}
	return ""
}

// maxQuoted bounds how much of a value an error message repeats.
const maxQuoted = 64

// quoted returns value quoted for an error message, cut to maxQuoted bytes.
func quoted(value string) string {
	return strconv.Quote(truncate.String(value, maxQuoted))
}

// variableName is the environment variable of a Config field.
// Variables returns every environment variable Config reads, with its
// default ("" when it has none), as the env tags of Config say, such as
// `env:"HTTP_SERVER_PORT, default=4000"`.
func Variables() map[string]string {
	vars := map[string]string{}
	for f := range reflect.TypeFor[Config]().Fields() {
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		// The default is the last option and may itself hold commas
		// (DEDUP_KEY_FIELDS).
		_, def, _ := strings.Cut(tag, "default=")
		vars[variableName(f)] = def
	}
	return vars
}

func variableName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return strings.TrimSpace(name)
}

// without is a lookuper that hides some variables, so that envconfig uses
// their defaults.
type without struct {
	envconfig.Lookuper
	hidden map[string]bool
}

func (w without) Lookup(key string) (string, bool) {
	if w.hidden[key] {
		return "", false
	}
	return w.Lookuper.Lookup(key)
}

// checkTypePatterns reports each entry of a type filter (FILTER_*_TYPES)
// that is neither an exact event type, by Svix's rule for event types, nor
// a prefix pattern: a type followed by ".*", such as "billing.*".
func checkTypePatterns(p *problems, name string, patterns []string) {
	for _, pattern := range patterns {
		exact, isPrefix := strings.CutSuffix(pattern, ".*")
		switch {
		case pattern == "":
			p.add("%s: an entry is empty; list event types separated by commas, e.g. user.deleted,billing.*", name)
		case event.ValidSvixID(exact):
			continue
		case isPrefix || strings.Contains(pattern, "*"):
			p.add("%s: %s is not a pattern Gwook understands; a prefix is an event type followed by .*, "+
				"e.g. billing.* (* is allowed only there)", name, quoted(pattern))
		default:
			p.add("%s: %s is not an event type; event types are 1 to %d letters, digits, '-', '_' and '.'",
				name, quoted(pattern), event.MaxSvixIDLength)
		}
	}
}
