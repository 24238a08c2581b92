package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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

// The limits on the string fields, in characters.
const (
	maxSourceLength  = 1024
	maxProjectLength = 1024
)

// Validate checks n against the event rules and returns an *InvalidError
// listing every violation, one per field (the first rule it breaks, in the
// order required, max, then the field's form), or nil.
func Validate(n *Notification) error {
	var fields []FieldError
	check := func(field, rule string) {
		if rule != "" {
			fields = append(fields, FieldError{Field: field, Rule: rule, Detail: RuleDetail(rule, field)})
		}
	}
	check("id", svixIDRule(n.ID))
	check("type", svixIDRule(n.Type))
	check("source", lengthRule(n.Source, maxSourceLength))
	check("project", lengthRule(n.Project, maxProjectLength))
	check("user_id", lengthRule(n.UserID, MaxSvixIDLength))
	check("time", timeRule(n.Time))
	check("data", dataRule(n.Data))
	if fields == nil {
		return nil
	}
	return &InvalidError{Reason: "event failed validation", Fields: fields}
}

// lengthRule returns the rule s breaks as a required string of at most max
// characters, or "".
func lengthRule(s string, max int) string {
	switch {
	case s == "":
		return "required"
	case len(s) > max && utf8.RuneCountInString(s) > max:
		return "max"
	}
	return ""
}

func svixIDRule(s string) string {
	if rule := lengthRule(s, MaxSvixIDLength); rule != "" {
		return rule
	}
	if !ValidSvixID(s) {
		return "svixid"
	}
	return ""
}

func timeRule(s string) string {
	switch {
	case s == "":
		return "required"
	case !validRFC3339(s):
		return "rfc3339"
	}
	return ""
}

// dataRule: data that is absent (nil) is missing; data that is present,
// null included, must be an object.
func dataRule(data json.RawMessage) string {
	switch {
	case data == nil:
		return "required"
	case !isJSONObject(data):
		return "jsonobject"
	}
	return ""
}

// RuleDetail is the detail of a FieldError: what rule asks of field, in
// words. Every way in words a broken rule with it, so that an event gets
// the same answer whatever its encoding.
func RuleDetail(rule, field string) string {
	switch rule {
	case "required":
		return "is required"
	case "max":
		return fmt.Sprintf("must be at most %d characters", maxLength[field])
	case "svixid":
		return `must match ^[a-zA-Z0-9\-_.]+$`
	case "rfc3339":
		return "must be an RFC 3339 timestamp, e.g. 2026-01-02T15:04:05Z"
	case "jsonobject":
		return "must be a JSON object"
	case "type":
		return "must be a string"
	}
	return "breaks rule " + rule
}

// maxLength is each string field's limit in characters, for the message of
// rule max.
var maxLength = map[string]int{
	"id": MaxSvixIDLength, "type": MaxSvixIDLength, "user_id": MaxSvixIDLength,
	"source": maxSourceLength, "project": maxProjectLength,
}

// Decode parses raw as a Notification and validates it. Every problem is
// reported in one *InvalidError: syntax errors, fields of the wrong JSON
// type, and rule violations, listed in the order of Notification's fields.
// The returned Notification keeps raw as its payload.
//
// It is one pass of a JSON tokenizer (jsontext) over the top-level object:
//   - field names match exactly, as in the spec ("ID" or "Id" is an unknown
//     field, and unknown fields are skipped);
//   - a name given twice takes its last value, as encoding/json would;
//   - raw must be UTF-8, as RFC 8259 requires, and a string may not hold an
//     escaped lone surrogate ("\ud800"): either would reach the receiver
//     as something other than text. Both are refused, not repaired.
//
// A field of the wrong JSON type is reported with rule "type" instead of the
// rules its value could not be checked against; null counts as absent.
func Decode(raw []byte) (Notification, error) {
	n := Notification{Raw: raw}
	if !utf8.Valid(raw) {
		return n, &InvalidError{Reason: "body is not valid UTF-8"}
	}
	wrongType, err := decodeMembers(&n, raw)
	if err != nil {
		return Notification{Raw: raw}, err
	}
	err = Validate(&n)
	if wrongType == nil {
		return n, err
	}
	// A field of the wrong type replaces whatever its empty value broke.
	result := &InvalidError{Reason: "event failed validation"}
	var broken []FieldError
	if err != nil {
		broken = err.(*InvalidError).Fields
	}
	for _, field := range fieldNames {
		switch {
		case wrongType[field]:
			result.Fields = append(result.Fields, FieldError{Field: field, Rule: "type", Detail: RuleDetail("type", field)})
		default:
			if i := slices.IndexFunc(broken, func(fe FieldError) bool { return fe.Field == field }); i >= 0 {
				result.Fields = append(result.Fields, broken[i])
			}
		}
	}
	return n, result
}

// fieldNames are the event's members in the order violations are listed.
var fieldNames = [...]string{"id", "type", "source", "project", "user_id", "time", "data"}

// decodeMembers fills n from raw, a UTF-8 body, and returns the names of the
// string fields that held something other than a string or null. The error
// is an *InvalidError when raw is not one JSON object.
func decodeMembers(n *Notification, raw []byte) (wrongType map[string]bool, err error) {
	r := readers.Get().(*reader)
	defer r.release()
	dec := r.reset(raw)
	if kind := dec.PeekKind(); kind != '{' {
		// Not an object: say whether it is JSON at all.
		if _, err := dec.ReadValue(); err != nil {
			return nil, notJSON(err)
		}
		if err := atEnd(dec); err != nil {
			return nil, err
		}
		return nil, &InvalidError{Reason: "event must be a JSON object"}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, notJSON(err)
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return nil, notJSON(err)
		}
		field := knownField(name) // before the next read voids name
		if field == "" {
			if err := dec.SkipValue(); err != nil {
				return nil, notJSON(err)
			}
			continue
		}
		value, err := dec.ReadValue()
		if err != nil {
			return nil, notJSON(err)
		}
		if field == "data" {
			// value aliases raw (the decoder reads a bytes.Buffer in place),
			// but only until the next read: take the same bytes from raw.
			end := int(dec.InputOffset())
			n.Data = json.RawMessage(raw[end-len(value) : end])
			continue
		}
		target := n.stringField(field)
		*target = ""
		if !decodeString(value, target) {
			if wrongType == nil {
				wrongType = map[string]bool{}
			}
			wrongType[field] = true
			continue
		}
		delete(wrongType, field)
	}
	if _, err := dec.ReadToken(); err != nil { // the closing brace
		return nil, notJSON(err)
	}
	return wrongType, atEnd(dec)
}

// reader is a tokenizer with its input, kept in readers between events: a
// new one costs 8 allocations and 2 KiB, more than the decoding itself.
type reader struct {
	in  bytes.Buffer
	dec jsontext.Decoder
}

var readers = sync.Pool{New: func() any { return new(reader) }}

// reset makes r read raw in place (the decoder reads a bytes.Buffer without
// copying it).
func (r *reader) reset(raw []byte) *jsontext.Decoder {
	r.in = *bytes.NewBuffer(raw)
	r.dec.Reset(&r.in, jsontext.AllowDuplicateNames(true))
	return &r.dec
}

// release returns r to readers without a reference to the last input.
func (r *reader) release() {
	r.in = bytes.Buffer{}
	r.dec.Reset(&r.in)
	readers.Put(r)
}

// knownField returns which of fieldNames name, a member name as JSON,
// spells, or "".
func knownField(name jsontext.Value) string {
	unquoted := name[1 : len(name)-1]
	if bytes.IndexByte(unquoted, '\\') >= 0 {
		var s string
		if jsonv2.Unmarshal(name, &s) != nil {
			return ""
		}
		unquoted = []byte(s)
	}
	for _, f := range fieldNames {
		if string(unquoted) == f { // a comparison: no copy
			return f
		}
	}
	return ""
}

// stringField is the string member of n named name, or nil.
func (n *Notification) stringField(name string) *string {
	switch name {
	case "id":
		return &n.ID
	case "type":
		return &n.Type
	case "source":
		return &n.Source
	case "project":
		return &n.Project
	case "user_id":
		return &n.UserID
	case "time":
		return &n.Time
	}
	return nil
}

// decodeString sets *s from value, a valid JSON value, and reports whether
// it was a string (or null, which leaves *s empty). A string without escapes
// is taken as it stands.
func decodeString(value jsontext.Value, s *string) bool {
	switch value.Kind() {
	case 'n':
		return true
	case '"':
		if bytes.IndexByte(value, '\\') < 0 {
			*s = string(value[1 : len(value)-1])
			return true
		}
		return jsonv2.Unmarshal(value, s) == nil
	}
	return false
}

// atEnd returns an *InvalidError unless dec has read its whole input: a
// second value, or anything else after the first, is not one JSON value.
func atEnd(dec *jsontext.Decoder) error {
	_, err := dec.ReadToken()
	switch {
	case err == io.EOF:
		return nil
	case err == nil:
		err = fmt.Errorf("a second value at byte %d", dec.InputOffset()-1)
	}
	return notJSON(err)
}

func notJSON(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &InvalidError{Reason: "body is not valid JSON: " + err.Error()}
}
