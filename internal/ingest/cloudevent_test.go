package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

// readRequest reads a request recorded in testdata/eventarc: its headers
// and its body, which runs to the end of the file.
func readRequest(t testing.TB, name string) (http.Header, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "eventarc", name))
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	req, err := http.ReadRequest(r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return req.Header, body
}

// eventarcEventID is the id of test/events/event-01.json, the event the
// recorded requests carry.
const eventarcEventID = "evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C"

func TestDecodeEventarcRequests(t *testing.T) {
	for _, tc := range []struct {
		file, mode   string
		subscription string
		messageID    string
		publishTime  string
		attribute    string // a message attribute, name=value
		orderingKey  string
		reason       string // of the InvalidError, "" for a valid event
	}{
		{"binary.http", CloudEventBinary, "projects/test-project/subscriptions/my-subscription", "11937923701344",
			"2026-03-02T08:15:43.118Z", "origin=accounts-service", "", ""},
		{"structured.http", CloudEventStructured, "projects/my-project/subscriptions/my-sub", "11937923701345",
			"2026-03-02T08:15:43.118Z", "origin=accounts-service", "", ""},
		{"binary-docs.http", CloudEventBinary, "projects/test-project/subscriptions/my-subscription", "message-id",
			"2021-02-05T04:06:14.109Z", "attr1=attr1-value", "ordering-key", "not valid JSON"},
		{"structured-docs.http", CloudEventStructured, "projects/my-project/subscriptions/my-sub", "2070443601311540",
			"2021-02-26T19:13:55.749Z", "attr1=attr1-value", "", "not valid JSON"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			header, body := readRequest(t, tc.file)
			m := Decode(header, body, 0)
			name, value, _ := strings.Cut(tc.attribute, "=")
			want := pipeline.Delivery{Entry: pipeline.EntryPush, Wrapped: true, Subscription: tc.subscription,
				MessageID: tc.messageID, PublishTime: tc.publishTime, OrderingKey: tc.orderingKey,
				Attributes: map[string]string{name: value}, CloudEvent: tc.mode}
			if !reflect.DeepEqual(m.Delivery, want) {
				t.Errorf("delivery = %+v, want %+v", m.Delivery, want)
			}
			if !bytes.Equal(m.Body, body) {
				t.Error("the body is not kept")
			}
			if tc.reason != "" {
				var invalid *event.InvalidError
				if !errors.As(m.Err, &invalid) || !strings.Contains(invalid.Reason, tc.reason) {
					t.Fatalf("err = %v, want an InvalidError saying %q", m.Err, tc.reason)
				}
				return
			}
			if m.Err != nil {
				t.Fatalf("Decode: %v", m.Err)
			}
			example, err := os.ReadFile("../../test/events/event-01.json")
			if err != nil {
				t.Fatal(err)
			}
			want1, err := event.Decode(example)
			if err != nil {
				t.Fatal(err)
			}
			if m.Event.ID != eventarcEventID || m.Event.UserID != want1.UserID || string(m.Event.Data) != compactJSON(t, want1.Data) {
				t.Errorf("event = %+v", m.Event)
			}
		})
	}
}

func compactJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestBinaryCloudEventIsAWrappedPush checks that the body of a binary-mode
// CloudEvent decodes as it would as a wrapped push: the same event and
// delivery, only marked as a CloudEvent.
func TestBinaryCloudEventIsAWrappedPush(t *testing.T) {
	header, body := readRequest(t, "binary.http")
	ce := Decode(header, body, 0)
	push := Decode(http.Header{}, body, 0)
	if ce.Err != nil || push.Err != nil {
		t.Fatalf("errors: %v, %v", ce.Err, push.Err)
	}
	ce.Delivery.CloudEvent = ""
	if !reflect.DeepEqual(ce, push) {
		t.Errorf("as a CloudEvent %+v, as a push %+v", ce, push)
	}
}

func TestMalformedCloudEvents(t *testing.T) {
	binHeader, binBody := readRequest(t, "binary.http")
	stHeader, stBody := readRequest(t, "structured.http")
	binary := func(change func(http.Header)) http.Header {
		h := binHeader.Clone()
		change(h)
		return h
	}
	structured := func(old, replacement string) string {
		if !strings.Contains(string(stBody), old) {
			t.Fatalf("structured.http has no %q", old)
		}
		return strings.Replace(string(stBody), old, replacement, 1)
	}
	const storageType = "google.cloud.storage.object.v1.finalized"
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		reason string   // a part of the InvalidError's reason
		fields []string // the fields listed, in order
	}{
		{"binary: another type", binary(func(h http.Header) { h.Set("Ce-Type", storageType) }), string(binBody),
			"CloudEvent is malformed", []string{"ce-type"}},
		{"binary: another type and not a Pub/Sub message", binary(func(h http.Header) { h.Set("Ce-Type", storageType) }),
			`{"bucket":"b","name":"o"}`, "CloudEvent is malformed", []string{"ce-type", "data"}},
		{"binary: no id, no source", binary(func(h http.Header) { h.Del("Ce-Id"); h.Del("Ce-Source") }), string(binBody),
			"CloudEvent is malformed", []string{"ce-id", "ce-source"}},
		{"binary: CloudEvents 0.3", binary(func(h http.Header) { h.Set("Ce-Specversion", "0.3") }), string(binBody),
			"CloudEvent is malformed", []string{"ce-specversion"}},
		{"binary: time not RFC 3339", binary(func(h http.Header) { h.Set("Ce-Time", "yesterday") }), string(binBody),
			"CloudEvent is malformed", []string{"ce-time"}},
		{"binary: data not JSON", binary(func(h http.Header) { h.Set("Content-Type", "text/plain") }), string(binBody),
			"CloudEvent is malformed", []string{"content-type"}},
		{"binary: empty body", binHeader, "", "body is empty", nil},
		{"binary: the event without its envelope", binHeader, validEvent, `has no "message" object`, nil},
		{"binary: envelope without data", binHeader, `{"message":{"messageId":"m1"},"subscription":"s"}`, "no data", nil},
		{"binary: invalid event", binHeader, string(wrapped(t, "messageId", "publishTime", b64(`{"id":"a b"}`))),
			"event failed validation", []string{"id", "type", "source", "project", "user_id", "time", "data"}},
		{"structured: another type", stHeader, structured(CloudEventPubSubType, storageType), "CloudEvent is malformed", []string{"type"}},
		{"structured: type not a string", stHeader, structured(`"`+CloudEventPubSubType+`"`, `7`), "CloudEvent is malformed", []string{"type"}},
		{"structured: no specversion", stHeader, structured(`"specversion": "1.0",`, ``), "CloudEvent is malformed", []string{"specversion"}},
		{"structured: datacontenttype not JSON", stHeader, structured(`"datacontenttype": "application/json"`, `"datacontenttype": "text/xml"`),
			"CloudEvent is malformed", []string{"datacontenttype"}},
		{"structured: no data", stHeader, `{"specversion":"1.0","id":"1","source":"s","type":"` + CloudEventPubSubType + `"}`,
			"CloudEvent is malformed", []string{"data"}},
		{"structured: data_base64", stHeader, `{"specversion":"1.0","id":"1","source":"s","type":"` + CloudEventPubSubType +
			`","data_base64":"` + b64(`{"message":{}}`) + `"}`, "CloudEvent is malformed", []string{"data"}},
		{"structured: data a string", stHeader, `{"specversion":"1.0","id":"1","source":"s","type":"` + CloudEventPubSubType +
			`","data":"hello"}`, "data must be a JSON object", nil},
		{"structured: not JSON", stHeader, `{"specversion":`, "not valid JSON", nil},
		{"structured: an array", stHeader, `[` + string(stBody) + `]`, "must be a JSON object", nil},
		{"structured: a batch", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, `[` + string(stBody) + `]`,
			"batched CloudEvents are not accepted", nil},
		{"structured: another format", http.Header{"Content-Type": {"application/cloudevents+avro"}}, string(stBody),
			"only in the JSON event format", nil},
		{"structured: invalid UTF-8", stHeader, structured("my-topic", "my-\xfftopic"), "not valid UTF-8", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Decode(tc.header, []byte(tc.body), 0)
			var invalid *event.InvalidError
			if !errors.As(m.Err, &invalid) {
				t.Fatalf("err = %v, want an *event.InvalidError", m.Err)
			}
			if !strings.Contains(invalid.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", invalid.Reason, tc.reason)
			}
			var fields []string
			for _, f := range invalid.Fields {
				fields = append(fields, f.Field)
				if f.Rule == "" || f.Detail == "" {
					t.Errorf("field error %+v has no rule or detail", f)
				}
			}
			if !reflect.DeepEqual(fields, tc.fields) {
				t.Errorf("fields %v, want %v (%v)", fields, tc.fields, invalid)
			}
			if m.Delivery.Entry != pipeline.EntryPush || m.Delivery.CloudEvent == "" || string(m.Body) != tc.body {
				t.Errorf("entry %q, CloudEvent %q, body kept %v: want an Eventarc push keeping its body",
					m.Delivery.Entry, m.Delivery.CloudEvent, string(m.Body) == tc.body)
			}
		})
	}
}

// TestCloudEventOfAnotherTypeSaysWhich checks the words of the most likely
// mistake, a trigger for another kind of event.
func TestCloudEventOfAnotherTypeSaysWhich(t *testing.T) {
	header, body := readRequest(t, "binary.http")
	header.Set("Ce-Type", "google.cloud.storage.object.v1.finalized")
	m := Decode(header, body, 0)
	want := `the CloudEvent is malformed: ce-type: is "google.cloud.storage.object.v1.finalized"; Gwook accepts only ` +
		`google.cloud.pubsub.topic.v1.messagePublished, the Pub/Sub messages an Eventarc trigger delivers`
	if m.Err == nil || m.Err.Error() != want {
		t.Errorf("err = %v, want %s", m.Err, want)
	}
	// The event itself was fine: it stays for the dead-letter topic.
	if m.Event.ID != eventarcEventID {
		t.Errorf("event %+v", m.Event)
	}
}

func TestCloudEventTraceContext(t *testing.T) {
	const (
		traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		publisher   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	binHeader, binBody := readRequest(t, "binary.http")
	stHeader, stBody := readRequest(t, "structured.http")
	withTrace := binHeader.Clone()
	withTrace.Set("Ce-Traceparent", traceparent)
	withTrace.Set("Ce-Tracestate", "vendor=1")
	published := strings.Replace(string(binBody), `"origin": "accounts-service"`,
		`"origin": "accounts-service", "googclient_traceparent": "`+publisher+`"`, 1)
	for _, tc := range []struct {
		name        string
		header      http.Header
		body        string
		parent      string
		state       string
		origin      bool // the message's own attribute is kept beside
		description string
	}{
		{"binary extension", withTrace, string(binBody), traceparent, "vendor=1", true, "ce-traceparent continues"},
		{"structured extension", stHeader, strings.Replace(string(stBody), `"specversion"`, `"traceparent": "`+traceparent+`", "specversion"`, 1),
			traceparent, "", true, "the traceparent member continues"},
		{"publisher's attribute wins", withTrace, published, publisher, "", true, "googclient_traceparent is the publisher's span"},
		{"none", binHeader, string(binBody), "", "", true, "no trace context, no attribute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Decode(tc.header, []byte(tc.body), 0)
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			a := m.Delivery.Attributes
			if a[attrTraceParent] != tc.parent || a[attrTraceState] != tc.state || (a["origin"] != "") != tc.origin {
				t.Errorf("%s: attributes %v, want traceparent %q and tracestate %q", tc.description, a, tc.parent, tc.state)
			}
		})
	}
}

func TestCloudEventAboveTheLimitIsNotParsed(t *testing.T) {
	for _, file := range []string{"binary.http", "structured.http"} {
		header, body := readRequest(t, file)
		m := Decode(header, body, 64)
		var tooLarge *EventTooLargeError
		if !errors.As(m.Err, &tooLarge) || tooLarge.Size != len(m.Event.Raw) || m.Event.ID != "" {
			t.Errorf("%s: err %v, event id %q: want an EventTooLargeError and the event unparsed", file, m.Err, m.Event.ID)
		}
	}
}
