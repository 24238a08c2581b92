package ingest

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
	gwookv1 "github.com/gwook/gwook/proto/gwook/v1"
)

// protoEvent is validEvent in binary protobuf; its canonical JSON is
// validEvent itself.
func protoEvent(t testing.TB) []byte {
	t.Helper()
	data, err := structpb.NewStruct(map[string]any{"plan": "pro"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&gwookv1.Event{Id: "evt_1", Type: "user.signed_up", Source: "accounts", Project: "p1", UserId: "cust_1",
		Time: timestamppb.New(time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wrappedWithAttributes is a wrapped push of data, base64, with the
// message attributes attrs (a JSON object).
func wrappedWithAttributes(data []byte, attrs string) []byte {
	return []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString(data) + `","attributes":` + attrs +
		`,"messageId":"m-42","publishTime":"2026-01-02T15:04:06Z"},"subscription":"projects/p/subscriptions/s"}`)
}

const binaryAttributes = `{"googclient_schemaencoding":"BINARY","googclient_schemaname":"projects/p/schemas/gwook-event","googclient_schemarevisionid":"r1"}`

// Every way an event arrives carries a protobuf event when it says so, and
// gives the Notification the same event in JSON gives.
func TestDecodeProtobufEvents(t *testing.T) {
	pb := protoEvent(t)
	unwrapped := http.Header{}
	unwrapped.Set(HeaderMessageID, "m-7")
	unwrapped.Set(AttrSchemaEncoding, SchemaEncodingBinary)
	for _, tc := range []struct {
		name  string
		m     pipeline.Message
		entry pipeline.Entry
	}{
		{"raw, application/protobuf", Decode(http.Header{"Content-Type": {"application/protobuf"}}, pb, 0), pipeline.EntryDirect},
		{"raw, application/x-protobuf with parameters", Decode(http.Header{"Content-Type": {"Application/X-Protobuf; messageType=gwook.v1.Event"}}, pb, 0), pipeline.EntryDirect},
		{"wrapped push", Decode(http.Header{}, wrappedWithAttributes(pb, binaryAttributes), 0), pipeline.EntryPush},
		{"unwrapped push", Decode(unwrapped, pb, 0), pipeline.EntryPush},
		{"pulled", DecodePulled(&Pulled{ID: "m-9", Data: pb, Attributes: map[string]string{AttrSchemaEncoding: SchemaEncodingBinary}}, 0), pipeline.EntryPull},
		{"CloudEvent, binary mode", Decode(http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"c1"}, "Ce-Source": {"//pubsub"},
			"Ce-Type": {CloudEventPubSubType}, "Content-Type": {"application/json"}}, wrappedWithAttributes(pb, binaryAttributes), 0), pipeline.EntryPush},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			if m.Err != nil {
				t.Fatalf("Decode: %v", m.Err)
			}
			if m.Delivery.Entry != tc.entry {
				t.Errorf("entry = %q, want %q", m.Delivery.Entry, tc.entry)
			}
			if string(m.Event.Raw) != validEvent || m.Event.ID != "evt_1" || m.Event.UserID != "cust_1" || string(m.Event.Data) != `{"plan":"pro"}` {
				t.Errorf("event = %+v, raw %s; want validEvent", m.Event, m.Event.Raw)
			}
		})
	}
}

// A message with a member Gwook does not know is read all the same, its
// attributes included.
func TestDecodeProtobufWrappedPushWithUnknownMember(t *testing.T) {
	body := []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString(protoEvent(t)) +
		`","attributes":{"googclient_schemaencoding":"BINARY"},"messageId":"m-1","unknown":1},"subscription":"s"}`)
	m := Decode(http.Header{}, body, 0)
	if m.Err != nil || string(m.Event.Raw) != validEvent {
		t.Fatalf("err %v, raw %s", m.Err, m.Event.Raw)
	}
}

// Without the attribute, or with JSON, the data is JSON as before; with
// BINARY it is protobuf, and JSON data then does not decode.
func TestSchemaEncodingDecides(t *testing.T) {
	for _, tc := range []struct {
		name, attrs string
		data        []byte
		reason      string // "" for a valid event
	}{
		{"JSON, no attribute", `{}`, []byte(validEvent), ""},
		{"JSON, encoding JSON", `{"googclient_schemaencoding":"JSON"}`, []byte(validEvent), ""},
		{"protobuf, encoding BINARY", binaryAttributes, protoEvent(t), ""},
		{"JSON, encoding BINARY", binaryAttributes, []byte(validEvent), "gwook.v1.Event"},
		{"protobuf, no attribute", `{}`, protoEvent(t), "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Decode(http.Header{}, wrappedWithAttributes(tc.data, tc.attrs), 0)
			pulled := DecodePulled(&Pulled{Data: tc.data, Attributes: m.Delivery.Attributes}, 0)
			for _, err := range []error{m.Err, pulled.Err} {
				if tc.reason == "" {
					if err != nil {
						t.Errorf("err = %v", err)
					}
					continue
				}
				var invalid *event.InvalidError
				if !errors.As(err, &invalid) || !strings.Contains(invalid.Reason, tc.reason) {
					t.Errorf("err = %v, want an InvalidError saying %q", err, tc.reason)
				}
			}
		})
	}
}

func TestDecodeInvalidProtobuf(t *testing.T) {
	bad, err := proto.Marshal(&gwookv1.Event{Id: "evt 1", Type: "t"})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/protobuf"}}
	m := Decode(h, bad, 0)
	var invalid *event.InvalidError
	if !errors.As(m.Err, &invalid) || len(invalid.Fields) != 6 || invalid.Fields[0].Field != "id" || invalid.Fields[0].Rule != "svixid" {
		t.Fatalf("err = %#v, want six field errors, the first id svixid", m.Err)
	}
	m = Decode(h, []byte{0xff, 0x01}, 0)
	if !errors.As(m.Err, &invalid) || !strings.Contains(invalid.Reason, "gwook.v1.Event") {
		t.Errorf("garbage: err = %v", m.Err)
	}
	m = Decode(h, protoEvent(t), 10)
	var tooLarge *EventTooLargeError
	if !errors.As(m.Err, &tooLarge) || string(m.Event.Raw) != string(protoEvent(t)) {
		t.Errorf("above the limit: err = %v", m.Err)
	}
	m = Decode(h, nil, 0)
	if !errors.As(m.Err, &invalid) || invalid.Reason != "body is empty" {
		t.Errorf("empty body: err = %v", m.Err)
	}
}
