package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"
)

// svixIDPattern is Svix's own rule for eventId, eventType and application
// UIDs. Checking it here means Svix never answers 422 for something Gwook
// could have caught.
const svixIDPattern = `^[a-zA-Z0-9\-_.]+$`

// svixIDChars is svixIDPattern as a table of the bytes it allows, which is
// checked several times faster than the regular expression.
var svixIDChars = func() (allowed [256]bool) {
	for _, r := range []string{"az", "AZ", "09", "--", "__", ".."} {
		for c := r[0]; c <= r[1]; c++ {
			allowed[c] = true
		}
	}
	return allowed
}()

// rfc3339Pattern is the form of an RFC 3339 date-time, the same pattern the
// spec gives for time. time.Parse(time.RFC3339, ...) on its own is looser:
// it takes a one-digit hour, a comma before the fractional seconds and an
// offset of +24:00, none of which RFC 3339 allows.
var rfc3339Pattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`)

// MaxSvixIDLength is Svix's limit on eventId, eventType and application UIDs.
const MaxSvixIDLength = 256

// FieldError is one broken rule: which field, which rule, and what it means.
type FieldError struct {
	Field  string `json:"field"`
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

// InvalidError says why an event cannot be forwarded. Fields lists every
// violated rule, not only the first.
type InvalidError struct {
	Reason string       `json:"reason"`
	Fields []FieldError `json:"fields,omitempty"`
}

func (e *InvalidError) Error() string {
	if len(e.Fields) == 0 {
		return e.Reason
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Detail
	}
	return e.Reason + ": " + strings.Join(parts, "; ")
}

// validate is built once: go-playground/validator caches each struct's rules
// on first use, so per-request validation does no reflection-heavy setup.
var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	must(v.RegisterValidation("svixid", func(fl validator.FieldLevel) bool {
		return ValidSvixID(fl.Field().String())
	}))
	must(v.RegisterValidation("rfc3339", func(fl validator.FieldLevel) bool {
		return validRFC3339(fl.Field().String())
	}))
	must(v.RegisterValidation("jsonobject", func(fl validator.FieldLevel) bool {
		return isJSONObject(fl.Field().Bytes())
	}))
	return v
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// ValidSvixID reports whether s is acceptable to Svix as an eventId,
// eventType or application UID.
func ValidSvixID(s string) bool {
	if s == "" || len(s) > MaxSvixIDLength {
		return false
	}
	for i := range len(s) {
		if !svixIDChars[s[i]] {
			return false
		}
	}
	return true
}

// validRFC3339 reports whether s is an RFC 3339 date-time: of the form
// rfc3339Pattern states, and naming a date that exists (not 2026-02-30).
func validRFC3339(s string) bool {
	if !rfc3339Pattern.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// isJSONObject reports whether b, already known to be valid JSON, is an object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// Validate checks n against the event rules and returns an *InvalidError
// listing every violation, or nil.
func Validate(n *Notification) error {
	err := validate.Struct(n)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return &InvalidError{Reason: "event failed validation", Fields: []FieldError{{Rule: "validator", Detail: err.Error()}}}
	}
	fields := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		fields = append(fields, FieldError{Field: fe.Field(), Rule: fe.Tag(), Detail: ruleDetail(fe)})
	}
	return &InvalidError{Reason: "event failed validation", Fields: fields}
}

func ruleDetail(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "max":
		return fmt.Sprintf("must be at most %s characters", fe.Param())
	case "svixid":
		return `must match ^[a-zA-Z0-9\-_.]+$`
	case "rfc3339":
		return "must be an RFC 3339 timestamp, e.g. 2026-01-02T15:04:05Z"
	case "jsonobject":
		return "must be a JSON object"
	default:
		return "breaks rule " + fe.Tag()
	}
}

// Decode parses raw as a Notification and validates it. Every problem is
// reported in one *InvalidError: syntax errors, fields of the wrong JSON type,
// and rule violations, listed in the order of Notification's fields. The
// returned Notification keeps raw as its payload.
//
// Field names match exactly, as in the spec: encoding/json alone would also
// fill ID from "ID" or "Id", which the spec treats as unknown fields. raw must
// be UTF-8, as RFC 8259 requires: encoding/json would quietly replace invalid
// bytes in the decoded fields but leave them in the payload forwarded to Svix.
//
// A well-formed event takes the fast path, one strict pass of JSON v2 (exact
// names, no duplicates, no invalid escapes). Anything that pass refuses is
// decoded member by member instead, which keeps encoding/json's answers and
// lists every field of the wrong type. A fuzz test holds the two paths to the
// same result.
func Decode(raw []byte) (Notification, error) {
	n := Notification{Raw: raw}
	if !utf8.Valid(raw) {
		return n, &InvalidError{Reason: "body is not valid UTF-8"}
	}
	if decodeStrict(&n, raw) {
		return n, Validate(&n)
	}
	return decodeMembers(raw)
}

// strictEvent is an event's members as JSON v2 reads them in one pass.
type strictEvent struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Source  string         `json:"source"`
	Project string         `json:"project"`
	UserID  string         `json:"user_id"`
	Time    string         `json:"time"`
	Data    jsontext.Value `json:"data"`
}

// decodeStrict fills n from raw and reports whether raw was a JSON object
// whose members JSON v2 read without complaint.
func decodeStrict(n *Notification, raw []byte) bool {
	var e strictEvent
	if !isJSONObject(raw) || jsonv2.Unmarshal(raw, &e) != nil {
		return false
	}
	n.ID, n.Type, n.Source, n.Project, n.UserID, n.Time = e.ID, e.Type, e.Source, e.Project, e.UserID, e.Time
	n.Data = json.RawMessage(e.Data)
	return true
}

// decodeMembers is Decode's path for what the strict pass refused: raw is
// split into its members with encoding/json and each is examined on its own.
func decodeMembers(raw []byte) (Notification, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Notification{Raw: raw}, DecodeError(raw, err)
	}
	return DecodeObject(raw, fields)
}

// DecodeObject is Decode for a caller that has already parsed raw into its
// members, so the body is parsed only once. fields is nil when raw is not a
// JSON object.
func DecodeObject(raw []byte, fields map[string]json.RawMessage) (Notification, error) {
	n := Notification{Raw: raw}
	if fields == nil {
		return n, &InvalidError{Reason: "event must be a JSON object"}
	}
	return n, decodeFields(&n, fields)
}

// DecodeError turns an encoding/json error for raw into an *InvalidError.
// encoding/json reports only the first field of the wrong type, so for type
// errors raw is examined field by field to list all of them.
func DecodeError(raw []byte, err error) error {
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) || !isJSONObject(raw) {
		if !json.Valid(raw) {
			return &InvalidError{Reason: "body is not valid JSON: " + err.Error()}
		}
		return &InvalidError{Reason: "event must be a JSON object"}
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return &InvalidError{Reason: "body is not valid JSON: " + err.Error()}
	}
	var n Notification
	if verr := decodeFields(&n, fields); verr != nil {
		return verr
	}
	return &InvalidError{Reason: "event failed validation"}
}

// decodeString sets *s from value, a valid JSON value, and reports whether
// it was a string (or null, which leaves *s empty). A string without escapes
// is taken as it stands, which spares encoding/json for the common case.
func decodeString(value json.RawMessage, s *string) bool {
	if len(value) >= 2 && value[0] == '"' && bytes.IndexByte(value, '\\') < 0 {
		*s = string(value[1 : len(value)-1])
		return true
	}
	return json.Unmarshal(value, s) == nil
}

// fieldOrder is the position of each field in Notification, the order in
// which violations are listed.
var fieldOrder = map[string]int{"id": 0, "type": 1, "source": 2, "project": 3, "user_id": 4, "time": 5, "data": 6}

// decodeFields fills n from the members of a JSON object and validates it. A
// member of the wrong JSON type is reported with rule "type" instead of the
// rules its value could not be checked against.
func decodeFields(n *Notification, fields map[string]json.RawMessage) error {
	var typeErrs []FieldError
	for _, f := range [...]struct {
		name   string
		target *string
	}{
		{"id", &n.ID}, {"type", &n.Type}, {"source", &n.Source}, {"project", &n.Project},
		{"user_id", &n.UserID}, {"time", &n.Time},
	} {
		value, ok := fields[f.name]
		if !ok {
			continue
		}
		if !decodeString(value, f.target) {
			typeErrs = append(typeErrs, FieldError{Field: f.name, Rule: "type", Detail: "must be a string"})
		}
	}
	n.Data = fields["data"]
	err := Validate(n)
	if len(typeErrs) == 0 {
		return err
	}
	result := &InvalidError{Reason: "event failed validation", Fields: typeErrs}
	if err != nil {
		for _, fe := range err.(*InvalidError).Fields {
			if !slices.ContainsFunc(typeErrs, func(te FieldError) bool { return te.Field == fe.Field }) {
				result.Fields = append(result.Fields, fe)
			}
		}
	}
	slices.SortStableFunc(result.Fields, func(a, b FieldError) int { return fieldOrder[a.Field] - fieldOrder[b.Field] })
	return result
}
