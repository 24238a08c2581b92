package eventpb_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/event/eventpb"
	gwookv1 "github.com/gwook/gwook/proto/gwook/v1"
)

// validMessage returns a valid event, fresh for each caller to change.
func validMessage(t testing.TB) *gwookv1.Event {
	t.Helper()
	data, err := structpb.NewStruct(map[string]any{
		"plan": "pro", "seats": 3, "ratio": 0.25, "trial": false, "coupon": nil,
		"tags": []any{"a", 1.5, map[string]any{"z": "last", "a": "first"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &gwookv1.Event{
		Id: "evt_1", Type: "user.signed_up", Source: "accounts", Project: "p1", UserId: "cust_1",
		Time: timestamppb.New(time.Date(2026, 1, 2, 15, 4, 5, 120_000_000, time.UTC)),
		Data: data,
	}
}

// validPayload is validMessage's canonical JSON.
const validPayload = `{"id":"evt_1","type":"user.signed_up","source":"accounts","project":"p1","user_id":"cust_1",` +
	`"time":"2026-01-02T15:04:05.12Z","data":{"coupon":null,"plan":"pro","ratio":0.25,"seats":3,` +
	`"tags":["a",1.5,{"a":"first","z":"last"}],"trial":false}}`

func marshal(t testing.TB, e *gwookv1.Event) []byte {
	t.Helper()
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeValid(t *testing.T) {
	n, err := eventpb.Decode(marshal(t, validMessage(t)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if string(n.Raw) != validPayload {
		t.Errorf("Raw =\n%s\nwant\n%s", n.Raw, validPayload)
	}
	// The payload is a JSON event that decodes to the same Notification.
	fromJSON, err := event.Decode(n.Raw)
	if err != nil {
		t.Fatalf("event.Decode(Raw): %v", err)
	}
	if !reflect.DeepEqual(fromJSON, n) {
		t.Errorf("from protobuf %+v\nfrom its JSON %+v", n, fromJSON)
	}
	if want := `2026-01-02T15:04:05.12Z`; n.Time != want {
		t.Errorf("Time = %q, want %q", n.Time, want)
	}
	if !strings.HasPrefix(string(n.Data), `{"coupon":null`) || !json.Valid(n.Data) {
		t.Errorf("Data = %s", n.Data)
	}
}

// An event's protojson form (what a topic with the schema and JSON
// encoding carries) is a JSON event Gwook accepts as the same event.
func TestProtoJSONIsAJSONEvent(t *testing.T) {
	e := validMessage(t)
	js, err := protojson.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := event.Decode(js)
	if err != nil {
		t.Fatalf("event.Decode(%s): %v", js, err)
	}
	fromProto, err := eventpb.Decode(marshal(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if fromJSON.ID != fromProto.ID || fromJSON.UserID != fromProto.UserID || fromJSON.Project != fromProto.Project {
		t.Errorf("protojson %+v, protobuf %+v", fromJSON, fromProto)
	}
	var a, b any
	if json.Unmarshal(fromJSON.Data, &a) != nil || json.Unmarshal(fromProto.Data, &b) != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("data: protojson %s, protobuf %s", fromJSON.Data, fromProto.Data)
	}
}

func TestDecodeNotProtobuf(t *testing.T) {
	for name, data := range map[string][]byte{
		"truncated":    marshal(t, validMessage(t))[:10],
		"garbage":      {0xff, 0xff, 0xff, 0xff},
		"JSON":         []byte(validPayload),
		"invalid UTF8": {0x0a, 0x02, 0xc3, 0x28}, // id = "\xc3("
	} {
		t.Run(name, func(t *testing.T) {
			n, err := eventpb.Decode(data)
			var invalid *event.InvalidError
			if !errors.As(err, &invalid) || len(invalid.Fields) != 0 || !strings.Contains(invalid.Reason, "gwook.v1.Event") {
				t.Fatalf("err = %#v, want an InvalidError naming gwook.v1.Event", err)
			}
			if string(n.Raw) != string(data) {
				t.Errorf("Raw = %q, want the bytes as they came", n.Raw)
			}
		})
	}
}

// Each rule of the JSON event, broken in a protobuf event, gives the
// answer a JSON event breaking it gets.
func TestDecodeRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name   string
		change func(*gwookv1.Event)
		want   []event.FieldError
		// noJSON: the broken rule has no JSON counterpart to compare with.
		noJSON bool
	}{
		{"id required", func(e *gwookv1.Event) { e.Id = "" }, fe("id", "required", "is required"), false},
		{"id max", func(e *gwookv1.Event) { e.Id = long(257) }, fe("id", "max", "must be at most 256 characters"), false},
		{"id max in characters", func(e *gwookv1.Event) { e.Id = strings.Repeat("é", 200) }, fe("id", "svixid", svixDetail), false},
		{"id svixid", func(e *gwookv1.Event) { e.Id = "evt/1" }, fe("id", "svixid", svixDetail), false},
		{"id max before svixid", func(e *gwookv1.Event) { e.Id = long(300) + "/" }, fe("id", "max", "must be at most 256 characters"), false},
		{"type required", func(e *gwookv1.Event) { e.Type = "" }, fe("type", "required", "is required"), false},
		{"type max", func(e *gwookv1.Event) { e.Type = long(257) }, fe("type", "max", "must be at most 256 characters"), false},
		{"type svixid", func(e *gwookv1.Event) { e.Type = "user signed up" }, fe("type", "svixid", svixDetail), false},
		{"source required", func(e *gwookv1.Event) { e.Source = "" }, fe("source", "required", "is required"), false},
		{"source max", func(e *gwookv1.Event) { e.Source = long(1025) }, fe("source", "max", "must be at most 1024 characters"), false},
		{"source any characters", func(e *gwookv1.Event) { e.Source = "//a b/c" }, nil, false},
		{"project required", func(e *gwookv1.Event) { e.Project = "" }, fe("project", "required", "is required"), false},
		{"project max", func(e *gwookv1.Event) { e.Project = strings.Repeat("ü", 1025) }, fe("project", "max", "must be at most 1024 characters"), false},
		{"user_id required", func(e *gwookv1.Event) { e.UserId = "" }, fe("user_id", "required", "is required"), false},
		{"user_id max", func(e *gwookv1.Event) { e.UserId = long(257) }, fe("user_id", "max", "must be at most 256 characters"), false},
		{"user_id has no pattern", func(e *gwookv1.Event) { e.UserId = "cust 1/2" }, nil, false},
		{"time required", func(e *gwookv1.Event) { e.Time = nil }, fe("time", "required", "is required"), false},
		{"time beyond RFC 3339", func(e *gwookv1.Event) { e.Time = &timestamppb.Timestamp{Seconds: 253402300800} }, fe("time", "rfc3339", timeDetail), true},
		{"time nanos", func(e *gwookv1.Event) { e.Time.Nanos = 1_000_000_000 }, fe("time", "rfc3339", timeDetail), true},
		{"time year 1", func(e *gwookv1.Event) { e.Time = timestamppb.New(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)) }, nil, false},
		{"data required", func(e *gwookv1.Event) { e.Data = nil }, fe("data", "required", "is required"), true},
		{"data empty", func(e *gwookv1.Event) { e.Data = &structpb.Struct{} }, nil, false},
		{"data NaN", func(e *gwookv1.Event) { e.Data.Fields["x"] = structpb.NewNumberValue(math.NaN()) }, fe("data", "jsonobject", dataDetail), true},
		{"data infinity in a list", func(e *gwookv1.Event) {
			e.Data.Fields["x"] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewNumberValue(math.Inf(-1))}})
		}, fe("data", "jsonobject", dataDetail), true},
		{"data value without kind", func(e *gwookv1.Event) { e.Data.Fields["x"] = &structpb.Value{} }, fe("data", "jsonobject", dataDetail), true},
		{"every field", func(e *gwookv1.Event) {
			*e = gwookv1.Event{Id: "a b", Type: long(257), Source: long(1025), UserId: long(300),
				Time: &timestamppb.Timestamp{Nanos: -1}}
		}, []event.FieldError{
			{Field: "id", Rule: "svixid", Detail: svixDetail},
			{Field: "type", Rule: "max", Detail: "must be at most 256 characters"},
			{Field: "source", Rule: "max", Detail: "must be at most 1024 characters"},
			{Field: "project", Rule: "required", Detail: "is required"},
			{Field: "user_id", Rule: "max", Detail: "must be at most 256 characters"},
			{Field: "time", Rule: "rfc3339", Detail: timeDetail},
			{Field: "data", Rule: "required", Detail: "is required"},
		}, true},
		{"empty message", func(e *gwookv1.Event) { *e = gwookv1.Event{} }, []event.FieldError{
			{Field: "id", Rule: "required", Detail: "is required"},
			{Field: "type", Rule: "required", Detail: "is required"},
			{Field: "source", Rule: "required", Detail: "is required"},
			{Field: "project", Rule: "required", Detail: "is required"},
			{Field: "user_id", Rule: "required", Detail: "is required"},
			{Field: "time", Rule: "required", Detail: "is required"},
			{Field: "data", Rule: "required", Detail: "is required"},
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validMessage(t)
			tc.change(e)
			data, err := proto.MarshalOptions{}.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			n, err := eventpb.Decode(data)
			got := fieldsOf(t, err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("fields =\n%v\nwant\n%v", got, tc.want)
			}
			if n.ID != e.Id || n.UserID != e.UserId {
				t.Errorf("Notification %+v does not keep the fields that were read", n)
			}
			if !tc.noJSON {
				_, jsonErr := event.Decode(jsonEvent(t, e))
				if want := fieldsOf(t, jsonErr); !reflect.DeepEqual(got, want) {
					t.Errorf("protobuf answers\n%v\nthe same event in JSON\n%v", got, want)
				}
			}
		})
	}
}

const (
	svixDetail = `must match ^[a-zA-Z0-9\-_.]+$`
	timeDetail = "must be a google.protobuf.Timestamp that RFC 3339 can write: from 0001-01-01 to 9999-12-31, nanos from 0 to 999999999"
	dataDetail = "must be a JSON object: it holds a value JSON cannot write (NaN, an infinity, or a Value with no kind)"
)

func fe(field, rule, detail string) []event.FieldError {
	return []event.FieldError{{Field: field, Rule: rule, Detail: detail}}
}

// fieldsOf returns the field errors of err, nil for a nil err.
func fieldsOf(t *testing.T, err error) []event.FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	var invalid *event.InvalidError
	if !errors.As(err, &invalid) || len(invalid.Fields) == 0 {
		t.Fatalf("err = %v, want an InvalidError with fields", err)
	}
	return invalid.Fields
}

// jsonEvent is e as a JSON event, without the members e does not set.
func jsonEvent(t *testing.T, e *gwookv1.Event) []byte {
	t.Helper()
	m := map[string]any{"id": e.Id, "type": e.Type, "source": e.Source, "project": e.Project, "user_id": e.UserId}
	if e.Time != nil {
		m["time"] = e.Time.AsTime().Format(time.RFC3339Nano)
	}
	if e.Data != nil {
		m["data"] = e.Data.AsMap()
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
