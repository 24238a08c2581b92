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
// event Svix would accept within the size limit, and that the strict pass
// and the member-by-member path agree.
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
		`{"message":"hello","subscription":5,"id":"evt_1"}`, `{"message":null,"Message":{"data":"e30="}}`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, unwrapped bool) {
		h := http.Header{}
		if unwrapped {
			h.Set(HeaderMessageID, "m")
		}
		m := Decode(h, body, fuzzEventLimit)
		if !unwrapped && len(bytes.TrimSpace(body)) > 0 && utf8.Valid(body) {
			// The strict pass must agree with the member-by-member path on
			// everything it reads.
			if slow := decodeMembers(body, fuzzEventLimit); !reflect.DeepEqual(m, slow) {
				t.Fatalf("Decode(%q) = %+v; member by member: %+v", body, m, slow)
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
			var invalid *event.InvalidError
			if !errors.As(m.Err, &invalid) || invalid.Reason == "" {
				t.Fatalf("error %T %v is not an InvalidError with a reason", m.Err, m.Err)
			}
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

// FuzzDecodeCloudEvent checks Eventarc CloudEvents. With structured false,
// body is the data of a binary-mode CloudEvent with valid attributes, and
// also, when it is JSON, the data member of the same CloudEvent in
// structured mode: the two modes must decode it alike, the strict pass
// alike to the member-by-member path, and a body they accept must decode
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
			// The strict pass must agree with the member-by-member path.
			if slow := messagePublishedMembers(body, body, fuzzEventLimit); !sameDecoding(m, slow) {
				t.Fatalf("binary %+v; member by member: %+v", m, slow)
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
		if invalid.Reason == "" {
			t.Fatalf("an InvalidError without a reason: %+v", invalid)
		}
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
