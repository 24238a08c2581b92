package eventpb_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/event/eventpb"
	gwookv1 "github.com/gwook/gwook/proto/gwook/v1"
)

// FuzzDecode holds Decode to the JSON decoder's answers: a valid protobuf
// event's payload is a valid JSON event that decodes to the same
// Notification; an invalid one's payload, decoded as JSON, breaks the same
// rules of the string fields; and only data that is not a gwook.v1.Event
// is refused without a list of fields.
func FuzzDecode(f *testing.F) {
	valid := validMessage(f)
	f.Add(marshal(f, valid))
	f.Add([]byte{})
	f.Add(marshal(f, &gwookv1.Event{Id: "a b", Type: "t", Source: "s", Project: "p", UserId: "u/1",
		Time: &timestamppb.Timestamp{Seconds: -62135596801}, Data: &structpb.Struct{}}))
	f.Add(marshal(f, &gwookv1.Event{Id: "x", Data: &structpb.Struct{Fields: map[string]*structpb.Value{"k": {}}}}))
	f.Add([]byte("\x0a\x03a\xffb"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := eventpb.Decode(data)
		var invalid *event.InvalidError
		if err != nil && !errors.As(err, &invalid) {
			t.Fatalf("err = %#v, want an *event.InvalidError", err)
		}
		if err != nil && len(invalid.Fields) == 0 {
			if proto.Unmarshal(data, &gwookv1.Event{}) == nil {
				t.Fatalf("refused %q as not a gwook.v1.Event: %v", data, err)
			}
			return
		}
		if err == nil {
			if verr := event.Validate(&n); verr != nil {
				t.Fatalf("valid in protobuf, not by event.Validate: %v", verr)
			}
			fromJSON, jerr := event.Decode(n.Raw)
			if jerr != nil || !reflect.DeepEqual(fromJSON, n) {
				t.Fatalf("payload %s decodes as JSON to %+v, %v; want %+v", n.Raw, fromJSON, jerr, n)
			}
			return
		}
		if !json.Valid(n.Raw) {
			// data holds a value JSON cannot write: Raw is the protobuf.
			return
		}
		_, jerr := event.Decode(n.Raw)
		if got, want := stringFields(invalid.Fields), stringFields(fieldsOrNil(jerr)); !reflect.DeepEqual(got, want) {
			t.Fatalf("protobuf: %v\nits payload as JSON: %v", got, want)
		}
	})
}

// stringFields keeps the errors of the five string fields, whose rules the
// two encodings state alike.
func stringFields(fields []event.FieldError) []event.FieldError {
	var out []event.FieldError
	for _, f := range fields {
		switch f.Field {
		case "id", "type", "source", "project", "user_id":
			out = append(out, f)
		}
	}
	return out
}

func fieldsOrNil(err error) []event.FieldError {
	var invalid *event.InvalidError
	if errors.As(err, &invalid) {
		return invalid.Fields
	}
	return nil
}
