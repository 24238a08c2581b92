package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

// fuzzEventLimit is the event size limit the fuzz target decodes with: the
// example events fall on both sides of it.
const fuzzEventLimit = 512

// FuzzDecode checks that no body makes Decode panic, that every failure is an
// *event.InvalidError or an *EventTooLargeError, that every success is an
// event Svix would accept within the size limit, and that Decode reads a
// body as decodeWithEncodingJSON does (see sameAsEncodingJSON).
func FuzzDecode(f *testing.F) {
	examples, _ := filepath.Glob("../../test/events/event-[0-9]*.json")
	for _, path := range examples {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add([]byte(`{"message":{"data":"`+base64.StdEncoding.EncodeToString(b)+`","messageId":"1"},"subscription":"s"}`), false)
		f.Add(b, true)
	}
	for _, s := range []string{"", "{}", "[]", "null", `{"message":{}}`, `{"message":{"data":"@@"}}`, validEvent, `{"id":1,"type":true}`,
		`{"message":{"data":"e30=","attributes":{"a":"1","a":"2"},"MessageId":"x","deliveryAttempt":1},"subscription":"s","deliveryAttempt":2.0}`,
		`{"message":"hello","subscription":5,"id":"evt_1"}`, `{"message":null,"Message":{"data":"e30="}}`,
		`{"message":{"data":"e30=","MESSAGE_ID":"a","message-id":"b","messageId":"c","messageId":null},"subscription":"\ud800"}`,
		`{"message":{"data":"e30=","attributes":{"a":"1"},"Attributes":{"b":"2"}},"subscription":"s","subscription":null}`,
		`{"message":{"data":"e30=","attributes":{"a":1},"messageId":"m"},"deliveryAttempt":"3"}`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, unwrapped bool) {
		h := http.Header{}
		if unwrapped {
			h.Set(HeaderMessageID, "m")
		}
		m := Decode(h, body, fuzzEventLimit)
		if !unwrapped && len(bytes.TrimSpace(body)) > 0 && utf8.Valid(body) {
			if want := decodeWithEncodingJSON(body, fuzzEventLimit); !sameAsEncodingJSON(m, want) {
				t.Fatalf("Decode(%q) = %+v, %v;\nwith encoding/json: %+v, %v", body, m, m.Err, want, want.Err)
			}
		}
		var tooLarge *EventTooLargeError
		if errors.As(m.Err, &tooLarge) {
			if tooLarge.Size != len(m.Event.Raw) || tooLarge.Size <= fuzzEventLimit || tooLarge.Limit != fuzzEventLimit {
				t.Fatalf("%v for an event of %d bytes", tooLarge, len(m.Event.Raw))
			}
			return
		}
		if m.Err != nil {
			checkReason(t, m.Err)
			return
		}
		if len(m.Event.Raw) > fuzzEventLimit {
			t.Fatalf("accepted an event of %d bytes, above the limit", len(m.Event.Raw))
		}
		if !event.ValidSvixID(m.Event.ID) || !event.ValidSvixID(m.Event.Type) {
			t.Fatalf("accepted id %q type %q that Svix would refuse", m.Event.ID, m.Event.Type)
		}
		if err := event.Validate(&m.Event); err != nil {
			t.Fatalf("accepted an event that fails validation: %v", err)
		}
		if len(m.Event.Raw) == 0 {
			t.Fatal("accepted an event with no payload")
		}
	})
}

// checkReason fails t unless err is an *event.InvalidError whose reason is
// in words: not empty, and without Go's own text for a JSON error.
func checkReason(t *testing.T, err error) {
	t.Helper()
	var invalid *event.InvalidError
	if !errors.As(err, &invalid) || invalid.Reason == "" {
		t.Fatalf("error %T %v is not an InvalidError with a reason", err, err)
	}
	for _, goText := range []string{"json:", "Go ", "pushMessage", "map[", "illegal"} {
		if strings.Contains(invalid.Reason, goText) {
			t.Fatalf("reason %q has Go's own text %q", invalid.Reason, goText)
		}
	}
}

// sameAsEncodingJSON reports whether m, from Decode, is want, from
// decodeWithEncodingJSON: the same event, body and error, and the same
// delivery unless the envelope is malformed. Then both say it is a wrapped
// push, but encoding/json goes on past the first problem in the message and
// fills the members after it, where Decode stops.
func sameAsEncodingJSON(m, want pipeline.Message) bool {
	if fmt.Sprint(m.Err) != fmt.Sprint(want.Err) || !reflect.DeepEqual(m.Event, want.Event) || !bytes.Equal(m.Body, want.Body) {
		return false
	}
	var invalid *event.InvalidError
	if errors.As(m.Err, &invalid) && strings.HasPrefix(invalid.Reason, malformedEnvelope) {
		return m.Delivery.Entry == pipeline.EntryPush && m.Delivery.Wrapped && want.Delivery.Entry == pipeline.EntryPush && want.Delivery.Wrapped
	}
	return reflect.DeepEqual(m.Delivery, want.Delivery)
}

// decodeWithEncodingJSON decodes body, a UTF-8 body of a request that is
// neither a CloudEvent nor an unwrapped push, as Decode should: the
// envelope is read with encoding/json, whose rules Decode keeps (the top
// level's names exact, the message's in any case, a name given twice
// taking its last value, except a null for a string, unknown names
// ignored), and its problems are told in words from encoding/json's
// errors.
func decodeWithEncodingJSON(body []byte, maxEventBytes int) pipeline.Message {
	var fields map[string]json.RawMessage
	err := json.Unmarshal(body, &fields)
	if message, ok := fields["message"]; err == nil && ok && startsWithObject(message) {
		return envelopeWithEncodingJSON(fields, body, maxEventBytes)
	}
	// The body is the event.
	m := pipeline.Message{Body: body, Delivery: pipeline.Delivery{Entry: pipeline.EntryDirect}}
	m.Event, m.Err = decodeEvent(body, maxEventBytes, false)
	return m
}

// messagePublishedWithEncodingJSON decodes data, the MessagePublishedData
// of a CloudEvent, as decodeMessagePublished should, with encoding/json;
// body is the request's.
func messagePublishedWithEncodingJSON(data, body []byte, maxEventBytes int) pipeline.Message {
	var fields map[string]json.RawMessage
	if !startsWithObject(data) || json.Unmarshal(data, &fields) != nil {
		return pipeline.Message{Body: body, Delivery: pipeline.Delivery{Entry: pipeline.EntryPush}, Err: &event.InvalidError{
			Reason: `the CloudEvent's data must be a JSON object {"message": {...}, "subscription": "..."}`}}
	}
	if message, ok := fields["message"]; !ok || !startsWithObject(message) {
		return pipeline.Message{Body: body, Delivery: pipeline.Delivery{Entry: pipeline.EntryPush}, Err: &event.InvalidError{
			Reason: `the CloudEvent's data has no "message" object`}}
	}
	return envelopeWithEncodingJSON(fields, body, maxEventBytes)
}

// envelopeWithEncodingJSON decodes the envelope whose top-level members
// are fields, and whose message is an object.
func envelopeWithEncodingJSON(fields map[string]json.RawMessage, body []byte, maxEventBytes int) pipeline.Message {
	var (
		msg          pushMessage
		subscription string
		attempt      int
	)
	problem := memberWithEncodingJSON(fields, "message", &msg)
	if problem == "" {
		problem = memberWithEncodingJSON(fields, "subscription", &subscription)
	}
	if problem == "" {
		problem = memberWithEncodingJSON(fields, "deliveryAttempt", &attempt)
	}
	return wrappedPush(body, &msg, subscription, attempt, problem, maxEventBytes)
}

// memberWithEncodingJSON decodes the envelope member name, when present,
// into v. It returns what is wrong with it in words, or "".
func memberWithEncodingJSON(fields map[string]json.RawMessage, name string, v any) string {
	raw, ok := fields[name]
	if !ok {
		return ""
	}
	err := json.Unmarshal(raw, v)
	if err == nil {
		return ""
	}
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return name + " is not valid JSON"
	}
	path := name
	if typeErr.Field != "" {
		path += "." + typeErr.Field
	}
	want := "a string"
	switch {
	case typeErr.Field == "attributes": // the map, or one of its values
		want = "an object of strings"
	case typeErr.Type.Kind() == reflect.Int:
		want = "a whole number"
	case typeErr.Type.Kind() == reflect.Struct:
		want = "an object"
	}
	return fmt.Sprintf("%s must be %s, not a JSON %s", path, want, typeErr.Value)
}

// FuzzDecodeCloudEvent checks Eventarc CloudEvents. With structured false,
// body is the data of a binary-mode CloudEvent with valid attributes, and
// also, when it is JSON, the data member of the same CloudEvent in
// structured mode: the two modes must decode it alike, binary mode alike
// to messagePublishedWithEncodingJSON, and a body they accept must decode
// as a wrapped push to the same event and delivery.
// With structured true, body is a whole structured-mode CloudEvent. Either
// way no body may make Decode panic, every failure is an
// *event.InvalidError with a reason or an *EventTooLargeError, and every
// success is a push with an event Svix would accept within the size limit.
func FuzzDecodeCloudEvent(f *testing.F) {
	for _, name := range []string{"binary.http", "binary-docs.http"} {
		_, body := readRequest(f, name)
		f.Add(body, false)
	}
	for _, name := range []string{"structured.http", "structured-docs.http"} {
		_, body := readRequest(f, name)
		f.Add(body, true)
	}
	examples, _ := filepath.Glob("../../test/events/event-[0-9]*.json")
	for _, path := range examples {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(`{"message":{"data":"`+base64.StdEncoding.EncodeToString(b)+`","messageId":"1"},"subscription":"s"}`), false)
		f.Add(b, false)
	}
	for _, s := range []string{"", "null", "{}", `{"message":null}`, `{"message":{"data":"e30="}}`, `{"data":{"message":{}}}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"message":{"data":"e30="}}}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	binary := http.Header{}
	binary.Set("Content-Type", "application/json; charset=utf-8")
	binary.Set("Ce-Specversion", "1.0")
	binary.Set("Ce-Id", "1")
	binary.Set("Ce-Source", "//pubsub.googleapis.com/projects/p/topics/t")
	binary.Set("Ce-Type", CloudEventPubSubType)
	structured := http.Header{"Content-Type": {ContentTypeCloudEvent}}
	f.Fuzz(func(t *testing.T, body []byte, isStructured bool) {
		if isStructured {
			checkCloudEvent(t, Decode(structured, body, fuzzEventLimit), CloudEventStructured, body)
			return
		}
		m := Decode(binary, body, fuzzEventLimit)
		checkCloudEvent(t, m, CloudEventBinary, body)
		if len(bytes.TrimSpace(body)) > 0 && utf8.Valid(body) {
			if want := messagePublishedWithEncodingJSON(body, body, fuzzEventLimit); !sameAsEncodingJSON(withoutCloudEvent(m), want) {
				t.Fatalf("binary %+v, %v;\nwith encoding/json: %+v, %v", m, m.Err, want, want.Err)
			}
		}
		if json.Valid(body) {
			whole := []byte(`{"specversion":"1.0","id":"1","source":"//pubsub.googleapis.com/projects/p/topics/t","type":"` +
				CloudEventPubSubType + `","datacontenttype":"application/json","data":` + string(body) + `}`)
			s := Decode(structured, whole, fuzzEventLimit)
			checkCloudEvent(t, s, CloudEventStructured, whole)
			if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
				// A null data member is an absent one; a body of null is
				// data that is not an object. Both fail.
				if s.Err == nil || m.Err == nil {
					t.Fatalf("null data accepted")
				}
			} else if !sameDecoding(m, s) {
				t.Fatalf("binary %+v, structured %+v", m, s)
			}
		}
		if m.Err == nil {
			if push := Decode(http.Header{}, body, fuzzEventLimit); !sameDecoding(m, push) {
				t.Fatalf("as a CloudEvent %+v, as a wrapped push %+v", m, push)
			}
		}
	})
}

// sameDecoding reports whether a and b hold the same event, error and
// delivery, whatever their body and content mode.
func sameDecoding(a, b pipeline.Message) bool {
	a.Body, b.Body = nil, nil
	a.Delivery.CloudEvent, b.Delivery.CloudEvent = "", ""
	aErr, bErr := fmt.Sprint(a.Err), fmt.Sprint(b.Err)
	a.Err, b.Err = nil, nil
	return aErr == bErr && reflect.DeepEqual(a, b)
}

// withoutCloudEvent is m without its CloudEvent content mode.
func withoutCloudEvent(m pipeline.Message) pipeline.Message {
	m.Delivery.CloudEvent = ""
	return m
}

// checkCloudEvent checks what holds for every decoded CloudEvent.
func checkCloudEvent(t *testing.T, m pipeline.Message, mode string, body []byte) {
	t.Helper()
	if m.Delivery.Entry != pipeline.EntryPush || m.Delivery.CloudEvent != mode || !bytes.Equal(m.Body, body) {
		t.Fatalf("entry %q, mode %q, body kept %v: want a %s push keeping its body", m.Delivery.Entry, m.Delivery.CloudEvent,
			bytes.Equal(m.Body, body), mode)
	}
	var tooLarge *EventTooLargeError
	var invalid *event.InvalidError
	switch {
	case errors.As(m.Err, &tooLarge):
		if tooLarge.Size != len(m.Event.Raw) || tooLarge.Size <= fuzzEventLimit || tooLarge.Limit != fuzzEventLimit {
			t.Fatalf("%v for an event of %d bytes", tooLarge, len(m.Event.Raw))
		}
	case errors.As(m.Err, &invalid):
		checkReason(t, m.Err)
	case m.Err != nil:
		t.Fatalf("error %T %v is not an InvalidError or an EventTooLargeError", m.Err, m.Err)
	case len(m.Event.Raw) == 0 || len(m.Event.Raw) > fuzzEventLimit:
		t.Fatalf("accepted an event of %d bytes", len(m.Event.Raw))
	case !event.ValidSvixID(m.Event.ID) || !event.ValidSvixID(m.Event.Type):
		t.Fatalf("accepted id %q type %q that Svix would refuse", m.Event.ID, m.Event.Type)
	default:
		if err := event.Validate(&m.Event); err != nil {
			t.Fatalf("accepted an event that fails validation: %v", err)
		}
	}
}

// FuzzDecodeFirehose checks that no body makes DecodeFirehose or
// FirehoseMessage panic, that every refusal is a *FirehoseError with a
// reason, that an accepted request keeps within Firehose's bounds and
// reads the same once encoded again, and that each of its records is an
// event Svix would accept or an invalid event kept for the dead-letter
// topic.
func FuzzDecodeFirehose(f *testing.F) {
	documented, err := os.ReadFile(documentedRequest)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(documented)
	examples, _ := filepath.Glob("../../test/events/event-[0-9]*.json")
	for _, path := range examples {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(firehoseBody("r-1", string(b), "", "hello"))
	}
	for _, s := range []string{"", "{}", "[]", "null", `{"requestId":"r","records":[]}`, `{"requestId":"r","records":[{"data":"@@"}]}`,
		`{"requestId":"r","records":[{}, null, {"data":null}]}`, `{"requestId":"r","requestId":"s","records":[]}`,
		`{"RequestId":"r","records":[]}`, `{"requestId":"r","timestamp":-1e3,"records":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeFirehose(body)
		if err != nil {
			var fe *FirehoseError
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("error %T %v is not a FirehoseError with a reason", err, err)
			}
			return
		}
		if len(req.Records) > MaxFirehoseRecords || len(req.RequestID) > MaxFirehoseRequestIDLength {
			t.Fatalf("accepted %d records and a request id of %d bytes", len(req.Records), len(req.RequestID))
		}
		again, err := jsonv2.Marshal(req)
		if err != nil {
			t.Fatalf("encoding %+v: %v", req, err)
		}
		if back, err := DecodeFirehose(again); err != nil || !reflect.DeepEqual(back, req) {
			t.Fatalf("%s reads as %+v, %v; want %+v", again, back, err, req)
		}
		for i := range req.Records {
			m := FirehoseMessage(&req, i, "arn", fuzzEventLimit)
			if m.Delivery.Entry != pipeline.EntryFirehose || m.Delivery.MessageID != req.RequestID+"/"+strconv.Itoa(i) {
				t.Fatalf("record %d: delivery %+v", i, m.Delivery)
			}
			var tooLarge *EventTooLargeError
			var invalid *event.InvalidError
			switch {
			case errors.As(m.Err, &tooLarge):
				if tooLarge.Size <= fuzzEventLimit || len(m.Event.Raw) != tooLarge.Size {
					t.Fatalf("record %d: %v for an event of %d bytes", i, tooLarge, len(m.Event.Raw))
				}
			case m.Err != nil:
				if !errors.As(m.Err, &invalid) || invalid.Reason == "" {
					t.Fatalf("record %d: error %T %v is not an InvalidError with a reason", i, m.Err, m.Err)
				}
			case len(m.Event.Raw) == 0 || len(m.Event.Raw) > fuzzEventLimit || event.Validate(&m.Event) != nil:
				t.Fatalf("record %d: accepted an event of %d bytes that Svix would refuse: %+v", i, len(m.Event.Raw), m.Event)
			}
			if m.Err != nil && len(m.Body) == 0 && req.Records[i].Data != "" {
				t.Fatalf("record %d: invalid, and nothing kept for the dead-letter topic", i)
			}
		}
	})
}
