package ingest

import (
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

const validEvent = `{"id":"evt_1","type":"user.signed_up","source":"accounts","project":"p1","user_id":"cust_1","time":"2026-01-02T15:04:05Z","data":{"plan":"pro"}}`

func wrapped(t *testing.T, idKey, timeKey, data string) []byte {
	t.Helper()
	return []byte(`{"message":{"data":"` + data + `","attributes":{"origin":"billing"},"` + idKey + `":"m-42","` +
		timeKey + `":"2026-01-02T15:04:06Z","orderingKey":"k1"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":3}`)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestDecodeWrappedEnvelope(t *testing.T) {
	for _, tc := range []struct{ name, idKey, timeKey string }{
		{"camelCase", "messageId", "publishTime"},
		{"snake_case", "message_id", "publish_time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Decode(http.Header{}, wrapped(t, tc.idKey, tc.timeKey, b64(validEvent)), 0)
			if m.Err != nil {
				t.Fatalf("Decode: %v", m.Err)
			}
			want := pipeline.Delivery{Entry: pipeline.EntryPush, Wrapped: true, Subscription: "projects/p/subscriptions/s", MessageID: "m-42",
				PublishTime: "2026-01-02T15:04:06Z", DeliveryAttempt: 3, OrderingKey: "k1"}
			got := m.Delivery
			got.Attributes = nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("delivery = %+v, want %+v", got, want)
			}
			if m.Delivery.Attributes["origin"] != "billing" {
				t.Errorf("attributes = %v", m.Delivery.Attributes)
			}
			if m.Event.ID != "evt_1" || m.Event.Type != "user.signed_up" || string(m.Event.Raw) != validEvent {
				t.Errorf("event = %+v, raw %q", m.Event, m.Event.Raw)
			}
		})
	}
}

func TestDecodeUnwrappedPush(t *testing.T) {
	h := http.Header{}
	h.Set(HeaderMessageID, "m-7")
	h.Set(HeaderSubscription, "projects/p/subscriptions/s")
	h.Set(HeaderPublishTime, "2026-01-02T15:04:06Z")
	h.Set(HeaderDeliveryAttempt, "2")
	m := Decode(h, []byte(validEvent), 0)
	if m.Err != nil {
		t.Fatalf("Decode: %v", m.Err)
	}
	want := pipeline.Delivery{Entry: pipeline.EntryPush, Subscription: "projects/p/subscriptions/s", MessageID: "m-7",
		PublishTime: "2026-01-02T15:04:06Z", DeliveryAttempt: 2}
	if m.Delivery.Entry != want.Entry || m.Delivery.MessageID != want.MessageID || m.Delivery.Subscription != want.Subscription ||
		m.Delivery.PublishTime != want.PublishTime || m.Delivery.DeliveryAttempt != 2 || m.Delivery.Wrapped {
		t.Errorf("delivery = %+v, want %+v", m.Delivery, want)
	}
	if string(m.Event.Raw) != validEvent || m.Event.ID != "evt_1" {
		t.Errorf("event = %+v", m.Event)
	}

	// The subscription header alone is enough to recognise an unwrapped push,
	// and then even a body that looks like an envelope is the event itself.
	h = http.Header{}
	h.Set(HeaderSubscription, "projects/p/subscriptions/s")
	m = Decode(h, wrapped(t, "messageId", "publishTime", b64(validEvent)), 0)
	if m.Delivery.Entry != pipeline.EntryPush || m.Delivery.Wrapped || m.Err == nil {
		t.Errorf("envelope body on unwrapped push: entry %q wrapped %v err %v", m.Delivery.Entry, m.Delivery.Wrapped, m.Err)
	}
}

func TestDecodeRawEvent(t *testing.T) {
	m := Decode(http.Header{}, []byte(validEvent), 0)
	if m.Err != nil {
		t.Fatalf("Decode: %v", m.Err)
	}
	if m.Delivery.Entry != pipeline.EntryDirect || m.Event.UserID != "cust_1" || string(m.Event.Data) != `{"plan":"pro"}` {
		t.Errorf("got %+v", m)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name      string
		header    http.Header
		body      string
		entry     pipeline.Entry
		reason    string // substring of InvalidError.Reason
		wantField string // a field that must be listed, if any
	}{
		{"empty body", nil, "", pipeline.EntryDirect, "body is empty", ""},
		{"blank body", nil, " \n\t", pipeline.EntryDirect, "body is empty", ""},
		{"broken JSON", nil, `{"id":`, pipeline.EntryDirect, "not valid JSON", ""},
		{"JSON array", nil, `[` + validEvent + `]`, pipeline.EntryDirect, "JSON object", ""},
		{"JSON string", nil, `"hello"`, pipeline.EntryDirect, "JSON object", ""},
		{"JSON null", nil, `null`, pipeline.EntryDirect, "JSON object", ""},
		{"wrong field type", nil, strings.Replace(validEvent, `"evt_1"`, `17`, 1), pipeline.EntryDirect, "validation", "id"},
		{"missing field", nil, strings.Replace(validEvent, `"source":"accounts",`, ``, 1), pipeline.EntryDirect, "validation", "source"},
		{"keys in the wrong case", nil, strings.Replace(validEvent, `"id"`, `"ID"`, 1), pipeline.EntryDirect, "validation", "id"},
		{"invalid UTF-8", nil, strings.Replace(validEvent, "accounts", "acc\xffounts", 1), pipeline.EntryDirect, "UTF-8", ""},
		{"non-object message field", nil, strings.Replace(validEvent, `{"id"`, `{"message":"hi","id"`, 1), pipeline.EntryDirect, "", ""},
		{"bad base64", nil, string(wrapped(t, "messageId", "publishTime", "%%%not-base64")), pipeline.EntryPush, "not valid base64", ""},
		{"base64 of non-JSON", nil, string(wrapped(t, "messageId", "publishTime", b64("hello, world"))), pipeline.EntryPush, "not valid JSON", ""},
		{"base64 of invalid event", nil, string(wrapped(t, "messageId", "publishTime", b64(`{"id":"a b"}`))), pipeline.EntryPush, "validation", "type"},
		{"envelope without data", nil, `{"message":{"messageId":"m1"},"subscription":"s"}`, pipeline.EntryPush, "no data", ""},
		{"malformed envelope", nil, `{"message":{"data":"` + b64(validEvent) + `"},"deliveryAttempt":"three"}`, pipeline.EntryPush, "malformed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tc.header
			if header == nil {
				header = http.Header{}
			}
			m := Decode(header, []byte(tc.body), 0)
			if tc.name == "non-object message field" {
				// An event may not use "message" as an envelope, but a
				// string there is just an extra event field.
				if m.Err != nil || m.Delivery.Entry != pipeline.EntryDirect {
					t.Fatalf("got err %v entry %q, want a valid direct event", m.Err, m.Delivery.Entry)
				}
				return
			}
			var invalid *event.InvalidError
			if !errors.As(m.Err, &invalid) {
				t.Fatalf("err = %v, want *event.InvalidError", m.Err)
			}
			if !strings.Contains(invalid.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", invalid.Reason, tc.reason)
			}
			if m.Delivery.Entry != tc.entry {
				t.Errorf("entry = %q, want %q", m.Delivery.Entry, tc.entry)
			}
			if string(m.Body) != tc.body {
				t.Errorf("Body not kept: %q", m.Body)
			}
			if tc.wantField != "" && !hasField(invalid.Fields, tc.wantField) {
				t.Errorf("fields = %+v, want %q listed", invalid.Fields, tc.wantField)
			}
		})
	}
}

func TestDecodeKeepsPushMetadataOnInvalidEvent(t *testing.T) {
	m := Decode(http.Header{}, wrapped(t, "message_id", "publish_time", b64(`{}`)), 0)
	if m.Err == nil || m.Delivery.MessageID != "m-42" || m.Delivery.Subscription == "" {
		t.Fatalf("err %v delivery %+v: the push metadata must survive a bad event", m.Err, m.Delivery)
	}
}

func TestEventAboveTheLimitIsNotParsed(t *testing.T) {
	const limit = 64
	big := `{"id":"evt_big","type":"t","source":"s","project":"p","user_id":"u","time":"2026-01-02T15:04:05Z","data":{"pad":"xxxxxxxx"}}`
	unwrapped := http.Header{}
	unwrapped.Set(HeaderMessageID, "m-1")
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		entry  pipeline.Entry
	}{
		{"raw event", http.Header{}, big, pipeline.EntryDirect},
		{"raw event that is not JSON", http.Header{}, strings.Repeat("x", limit+1), pipeline.EntryDirect},
		{"raw event with a message member", http.Header{}, strings.Replace(big, `"id"`, `"message":"hi","id"`, 1), pipeline.EntryDirect},
		{"wrapped push", http.Header{}, string(wrapped(t, "messageId", "publishTime", b64(big))), pipeline.EntryPush},
		{"unwrapped push", unwrapped, big, pipeline.EntryPush},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Decode(tc.header, []byte(tc.body), limit)
			var tooLarge *EventTooLargeError
			if !errors.As(m.Err, &tooLarge) {
				t.Fatalf("err = %v, want *EventTooLargeError", m.Err)
			}
			if tooLarge.Limit != limit || tooLarge.Size != len(m.Event.Raw) || tooLarge.Size <= limit {
				t.Errorf("%+v for an event of %d bytes", tooLarge, len(m.Event.Raw))
			}
			if m.Event.ID != "" {
				t.Errorf("the event was parsed: id %q", m.Event.ID)
			}
			if m.Delivery.Entry != tc.entry {
				t.Errorf("entry %q, want %q", m.Delivery.Entry, tc.entry)
			}
		})
	}
	// A wrapped push keeps its event (for the dead-letter topic) and its
	// metadata.
	m := Decode(http.Header{}, wrapped(t, "messageId", "publishTime", b64(big)), limit)
	if string(m.Event.Raw) != big || m.Delivery.MessageID != "m-42" {
		t.Errorf("raw %q, delivery %+v", m.Event.Raw, m.Delivery)
	}
	// At the limit, the event is decoded.
	if m := Decode(http.Header{}, []byte(big), len(big)); m.Err != nil {
		t.Errorf("an event of exactly the limit: %v", m.Err)
	}
}

func TestEnvelopeProblemsAreInWords(t *testing.T) {
	data := b64(validEvent)
	for _, tc := range []struct{ body, want string }{
		{`{"message":{"data":5}}`, "message.data must be a string, not a JSON number"},
		{`{"message":{"data":"` + data + `","attributes":{"a":1}}}`, "message.attributes must be an object of strings, not a JSON number"},
		{`{"message":{"data":"` + data + `","attributes":[]}}`, "message.attributes must be an object of strings, not a JSON array"},
		{`{"message":{"data":"` + data + `"},"subscription":5}`, "subscription must be a string, not a JSON number"},
		{`{"message":{"data":"` + data + `"},"deliveryAttempt":"3"}`, "deliveryAttempt must be a whole number, not a JSON string"},
		{`{"message":{"data":"ab$d"}}`, "push message data is not valid base64 (at byte 2)"},
	} {
		m := Decode(http.Header{}, []byte(tc.body), 0)
		var invalid *event.InvalidError
		if !errors.As(m.Err, &invalid) || !strings.HasSuffix(invalid.Reason, tc.want) {
			t.Errorf("%s: err %v, want it to end in %q", tc.body, m.Err, tc.want)
			continue
		}
		for _, goText := range []string{"json:", "Go ", "pushMessage", "illegal"} {
			if strings.Contains(invalid.Reason, goText) {
				t.Errorf("%s: reason %q has Go's own text", tc.body, invalid.Reason)
			}
		}
	}
}

// TestEnvelopeNamesAsEncodingJSON checks the rules for names that the
// envelope keeps from encoding/json, each against the oracle of the fuzz
// test too.
func TestEnvelopeNamesAsEncodingJSON(t *testing.T) {
	data := b64(validEvent)
	for _, tc := range []struct {
		name, message, top string // the message's members after data, and the top level's after message
		want               pipeline.Delivery
	}{
		{"message names in any case", `"MessageId":"m","PUBLISH_TIME":"t","orderingkey":"k"`, ``,
			pipeline.Delivery{MessageID: "m", PublishTime: "t", OrderingKey: "k"}},
		{"a name in another case is the same member", `"messageId":"a","MessageId":"b"`, ``,
			pipeline.Delivery{MessageID: "b"}},
		{"dashes and underscores count", `"message-id":"a","messageI_d":"b","orderingkey_":"c"`, ``,
			pipeline.Delivery{}},
		{"the last of a name given twice", `"messageId":"a","messageId":"b"`, `,"subscription":"s","subscription":"t"`,
			pipeline.Delivery{MessageID: "b", Subscription: "t"}},
		{"a null leaves a message string as it was", `"messageId":"a","messageId":null`, ``,
			pipeline.Delivery{MessageID: "a"}},
		{"a null empties a top-level member", ``, `,"subscription":"s","subscription":null`,
			pipeline.Delivery{}},
		{"attributes given twice are merged", `"attributes":{"a":"1","b":"1"},"Attributes":{"b":"2"}`, ``,
			pipeline.Delivery{Attributes: map[string]string{"a": "1", "b": "2"}}},
		{"top-level names are exact", ``, `,"Subscription":"s","deliveryattempt":3`,
			pipeline.Delivery{}},
		{"unknown members are ignored", `"extra":[1,{}]`, `,"extra":{"messageId":"x"}`,
			pipeline.Delivery{}},
		{"an escaped lone surrogate reads as U+FFFD", `"attributes":{"a":"\ud800"}`, `,"subscription":"\udc00s"`,
			pipeline.Delivery{Subscription: "\ufffds", Attributes: map[string]string{"a": "\ufffd"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			message := `"data":"` + data + `"`
			if tc.message != "" {
				message += "," + tc.message
			}
			body := []byte(`{"message":{` + message + `}` + tc.top + `}`)
			m := Decode(http.Header{}, body, 0)
			if m.Err != nil {
				t.Fatalf("Decode(%s): %v", body, m.Err)
			}
			want := tc.want
			want.Entry, want.Wrapped = pipeline.EntryPush, true
			if !reflect.DeepEqual(m.Delivery, want) {
				t.Errorf("Decode(%s): delivery %+v, want %+v", body, m.Delivery, want)
			}
			if oracle := decodeWithEncodingJSON(body, 0); !sameAsEncodingJSON(m, oracle) {
				t.Errorf("Decode(%s) = %+v; with encoding/json %+v", body, m, oracle)
			}
		})
	}
}

// TestEnvelopeProblemsNameTheMember checks the words for an envelope's
// problems beyond TestEnvelopeProblemsAreInWords: the member as the
// message declares it, whatever its case, the first problem in the
// message before any at the top level, and the number that is not a whole
// one.
func TestEnvelopeProblemsNameTheMember(t *testing.T) {
	data := b64(validEvent)
	for _, tc := range []struct{ body, want string }{
		{`{"message":{"data":"` + data + `","MessageId":5}}`, "message.messageId must be a string, not a JSON number"},
		{`{"message":{"data":"` + data + `","ATTRIBUTES":{"a":"1","b":true}}}`, "message.attributes must be an object of strings, not a JSON bool"},
		{`{"message":{"data":"` + data + `","publish_time":{}}}`, "message.publish_time must be a string, not a JSON object"},
		{`{"subscription":5,"message":{"data":["` + data + `"]}}`, "message.data must be a string, not a JSON array"},
		{`{"message":{"data":"` + data + `"},"deliveryAttempt":2.5}`, "deliveryAttempt must be a whole number, not a JSON number 2.5"},
		{`{"message":{"data":"` + data + `"},"deliveryAttempt":1e99}`, "deliveryAttempt must be a whole number, not a JSON number 1e99"},
		{`{"message":{"data":"` + data + `"},"subscription":["s"],"deliveryAttempt":true}`, "subscription must be a string, not a JSON array"},
	} {
		m := Decode(http.Header{}, []byte(tc.body), 0)
		var invalid *event.InvalidError
		if !errors.As(m.Err, &invalid) || invalid.Reason != "push envelope is malformed: "+tc.want {
			t.Errorf("%s: err %v, want %q", tc.body, m.Err, tc.want)
		}
		if oracle := decodeWithEncodingJSON([]byte(tc.body), 0); !sameAsEncodingJSON(m, oracle) {
			t.Errorf("%s: %v; with encoding/json %v", tc.body, m.Err, oracle.Err)
		}
	}
}
