// Package eventpb decodes an event sent as binary protobuf, a
// gwook.v1.Event (proto/gwook/v1/event.proto), into the same
// event.Notification a JSON event gives, checked by the same rules.
//
// The rules are the message's protovalidate annotations, which state
// event.Validate's rules for protobuf; each violation becomes the
// event.FieldError a JSON event breaking the same rule gets: the field's
// JSON name, the rule (required, max, svixid) and the same detail, listed
// in the fields' order with at most one rule per field, as in JSON. Two
// rules protobuf states by its types are checked here: a Timestamp that
// RFC 3339 cannot write (before year 1, after 9999, nanos out of range)
// breaks rule rfc3339 of time, and a Struct holding a value JSON cannot
// write (NaN, an infinity, a Value with no kind) breaks rule jsonobject of
// data.
//
// The webhook payload stays JSON. Notification.Raw of a protobuf event is
// its canonical JSON: the seven members in the order of the spec
// (id, type, source, project, user_id, time, data), time in RFC 3339 in UTC
// with as many fractional digits as it has (time.RFC3339Nano), data with
// its members sorted by name, numbers as encoding/json writes a float64,
// no insignificant whitespace. Unknown protobuf fields are dropped: they
// have no JSON name.
package eventpb

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gwook/gwook/internal/event"
	gwookv1 "github.com/gwook/gwook/proto/gwook/v1"
)

// ContentType is the media type of a request body holding one binary
// protobuf event.
const ContentType = "application/protobuf"

// MessageName is the full name of the protobuf message of an event, the
// message of a Pub/Sub topic schema for protobuf events.
const MessageName = "gwook.v1.Event"

// validator is built on first use with the rules of gwook.v1.Event
// compiled, so per-event validation compiles nothing.
var validator = sync.OnceValues(func() (protovalidate.Validator, error) {
	return protovalidate.New(protovalidate.WithMessages(&gwookv1.Event{}))
})

// eventFieldsOnly has protovalidate check the fields of the event and not
// walk into data: google.protobuf.Struct has no rules, and walking every
// member of data took a third of the time of a typical event.
var eventFieldsOnly = protovalidate.WithFilter(protovalidate.FilterFunc(
	func(m protoreflect.Message, _ protoreflect.Descriptor) bool {
		return m.Descriptor().FullName() == MessageName
	}))

// Decode parses data as a binary gwook.v1.Event and validates it. Every
// problem is reported in one *event.InvalidError. A valid event's
// Notification has the fields of a JSON event and Raw its canonical JSON;
// an invalid one keeps what could be read, for logs and the dead-letter
// topic, and Raw is data itself when data is not a gwook.v1.Event at all.
func Decode(data []byte) (event.Notification, error) {
	var e gwookv1.Event
	if err := proto.Unmarshal(data, &e); err != nil {
		// The protobuf library's error text is unstable on purpose and
		// names no field: the reason says what was expected instead.
		return event.Notification{Raw: data}, &event.InvalidError{
			Reason: "body is not a binary protobuf " + MessageName + " (proto/gwook/v1/event.proto)"}
	}
	return fromMessage(&e, data)
}

// fromMessage is Decode for an event already unmarshalled. data, the
// event's bytes as they came, is Raw when e cannot be written as JSON.
func fromMessage(e *gwookv1.Event, data []byte) (event.Notification, error) {
	n := event.Notification{
		ID: e.GetId(), Type: e.GetType(), Source: e.GetSource(), Project: e.GetProject(), UserID: e.GetUserId(),
	}
	fields, err := violations(e)
	if err != nil {
		return event.Notification{Raw: data}, err
	}
	if ts := e.GetTime(); ts != nil {
		if ts.CheckValid() == nil {
			n.Time = ts.AsTime().Format(time.RFC3339Nano)
		} else {
			fields = append(fields, event.FieldError{Field: "time", Rule: "rfc3339",
				Detail: "must be a google.protobuf.Timestamp that RFC 3339 can write: from 0001-01-01 to 9999-12-31, nanos from 0 to 999999999"})
		}
	}
	raw, dataStart, ok := appendPayload(make([]byte, 0, payloadSize(len(data))), &n, e.GetData())
	if ok {
		n.Raw = raw
		if e.GetData() != nil {
			n.Data = raw[dataStart : len(raw)-1]
		}
	} else {
		n.Raw = data
		fields = append(fields, event.FieldError{Field: "data", Rule: "jsonobject",
			Detail: "must be a JSON object: it holds a value JSON cannot write (NaN, an infinity, or a Value with no kind)"})
	}
	if len(fields) == 0 {
		return n, nil
	}
	return n, &event.InvalidError{Reason: "event failed validation", Fields: firstPerField(fields)}
}

// violations returns the protovalidate violations of e as field errors.
// An error is returned only when validation itself could not run.
func violations(e *gwookv1.Event) ([]event.FieldError, error) {
	v, err := validator()
	if err != nil {
		return nil, &event.InvalidError{Reason: "event failed validation",
			Fields: []event.FieldError{{Rule: "validator", Detail: err.Error()}}}
	}
	err = v.Validate(e, eventFieldsOnly)
	var verr *protovalidate.ValidationError
	switch {
	case err == nil:
		return nil, nil
	case !errors.As(err, &verr):
		return nil, &event.InvalidError{Reason: "event failed validation",
			Fields: []event.FieldError{{Rule: "validator", Detail: err.Error()}}}
	}
	fields := make([]event.FieldError, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		fields = append(fields, fieldError(v))
	}
	return fields, nil
}

// fieldError is the event.FieldError of one violation: the JSON event's
// rule that the protovalidate rule states, worded by event.RuleDetail.
func fieldError(v *protovalidate.Violation) event.FieldError {
	fe := event.FieldError{Rule: v.Proto.GetRuleId(), Detail: v.Proto.GetMessage()}
	if v.FieldDescriptor != nil {
		fe.Field = v.FieldDescriptor.JSONName()
	}
	switch fe.Rule {
	case "string.max_len":
		fe.Rule = "max"
	case "string.pattern":
		fe.Rule = "svixid"
	}
	if rule := fe.Rule; rule == "required" || rule == "max" || rule == "svixid" {
		fe.Detail = event.RuleDetail(rule, fe.Field)
	}
	return fe
}

// fieldOrder is each field's place in an event, the order in which
// violations are listed, and ruleOrder the order of one field's rules. A
// JSON event reports the first rule a field breaks, in the order its
// validate tag lists them; so does a protobuf event.
var (
	fieldOrder = map[string]int{"id": 0, "type": 1, "source": 2, "project": 3, "user_id": 4, "time": 5, "data": 6}
	ruleOrder  = map[string]int{"required": 0, "max": 1, "svixid": 2, "rfc3339": 3, "jsonobject": 4}
)

// firstPerField sorts fields by field, then rule, and keeps each field's
// first.
func firstPerField(fields []event.FieldError) []event.FieldError {
	slices.SortStableFunc(fields, func(a, b event.FieldError) int {
		if d := fieldOrder[a.Field] - fieldOrder[b.Field]; d != 0 {
			return d
		}
		return ruleOrder[a.Rule] - ruleOrder[b.Rule]
	})
	return slices.CompactFunc(fields, func(a, b event.FieldError) bool { return a.Field == b.Field })
}

// payloadSize estimates the length of the canonical JSON of an event of
// size bytes in protobuf, to allocate it once in the common case: the
// member names, quotes and the time are what JSON adds.
func payloadSize(size int) int {
	return 128 + size + size/2
}

// appendPayload appends the canonical JSON of the event n holds, with data
// as its data, to b. It returns where data's value starts in the result,
// and false when data holds a value JSON cannot write. A nil data is
// written as null, as the event it came from had none.
func appendPayload(b []byte, n *event.Notification, data *structpb.Struct) ([]byte, int, bool) {
	for _, f := range [...]struct{ name, value string }{
		{`{"id":`, n.ID}, {`,"type":`, n.Type}, {`,"source":`, n.Source}, {`,"project":`, n.Project},
		{`,"user_id":`, n.UserID}, {`,"time":`, n.Time},
	} {
		b = append(b, f.name...)
		b = appendString(b, f.value)
	}
	b = append(b, `,"data":`...)
	start := len(b)
	if data == nil {
		b = append(b, "null"...)
	} else {
		var ok bool
		if b, ok = appendStruct(b, data); !ok {
			return nil, 0, false
		}
	}
	return append(b, '}'), start, true
}

// appendStruct appends s as a JSON object, its members sorted by name.
func appendStruct(b []byte, s *structpb.Struct) ([]byte, bool) {
	fields := s.GetFields()
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = appendValue(b, fields[k]); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}

// appendValue appends v as JSON, or reports false when JSON cannot write
// it.
func appendValue(b []byte, v *structpb.Value) ([]byte, bool) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		return append(b, "null"...), true
	case *structpb.Value_BoolValue:
		return strconv.AppendBool(b, k.BoolValue), true
	case *structpb.Value_NumberValue:
		return appendFloat(b, k.NumberValue)
	case *structpb.Value_StringValue:
		return appendString(b, k.StringValue), true
	case *structpb.Value_StructValue:
		if k.StructValue == nil {
			return append(b, "{}"...), true
		}
		return appendStruct(b, k.StructValue)
	case *structpb.Value_ListValue:
		b = append(b, '[')
		for i, item := range k.ListValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, item); !ok {
				return nil, false
			}
		}
		return append(b, ']'), true
	}
	return nil, false
}

// appendString appends s as a JSON string. Strings from a decoded message
// are valid UTF-8: protobuf refuses a string field that is not. Were one
// not, AppendQuote would write U+FFFD for the invalid bytes and report it.
func appendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}

// appendFloat appends f as encoding/json writes a float64: the shortest
// decimal that reads back as f, in exponent form below 1e-6 and from 1e21.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7, as in encoding/json.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}
