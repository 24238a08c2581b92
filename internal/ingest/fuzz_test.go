package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/gwook/gwook/internal/event"
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
