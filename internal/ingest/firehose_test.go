package ingest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

// documentedRequest is the request body of AWS's documentation.
const documentedRequest = "testdata/firehose/request.json"

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firehoseBody is a Firehose request body with records of the given data,
// each encoded in base64.
func firehoseBody(id string, data ...string) []byte {
	records := make([]string, len(data))
	for i, d := range data {
		records[i] = `{"data":"` + base64.StdEncoding.EncodeToString([]byte(d)) + `"}`
	}
	return []byte(`{"requestId":"` + id + `","timestamp":1578090901599,"records":[` + strings.Join(records, ",") + `]}`)
}

// TestDecodeFirehoseDocumentedRequest reads the request of AWS's
// documentation: its records, "hello" and "hello world", are records like
// any other, and each is an invalid event that keeps its bytes for the
// dead-letter topic.
func TestDecodeFirehoseDocumentedRequest(t *testing.T) {
	req, err := DecodeFirehose(readFile(t, documentedRequest))
	if err != nil {
		t.Fatal(err)
	}
	if req.RequestID != "ed4acda5-034f-9f42-bba1-f29aea6d7d8f" || req.Timestamp != 1578090901599 || len(req.Records) != 2 {
		t.Fatalf("request %+v", req)
	}
	const arn = "arn:aws:firehose:us-east-1:123456789:deliverystream/testStream"
	for i, want := range []string{"hello", "hello world"} {
		m := FirehoseMessage(&req, i, arn, 0)
		var invalid *event.InvalidError
		if !errors.As(m.Err, &invalid) || string(m.Body) != want {
			t.Errorf("record %d: err %v, body %q; want an invalid event with body %q", i, m.Err, m.Body, want)
		}
		if d := m.Delivery; d.Entry != pipeline.EntryFirehose || d.Subscription != arn || d.MessageID != fmt.Sprintf("%s/%d", req.RequestID, i) {
			t.Errorf("record %d: delivery %+v", i, d)
		}
	}
}

func TestFirehoseRecordIsARawEvent(t *testing.T) {
	req, err := DecodeFirehose(firehoseBody("r-1", validEvent))
	if err != nil {
		t.Fatal(err)
	}
	m := FirehoseMessage(&req, 0, "", 0)
	if m.Err != nil || m.Event.ID != "evt_1" || m.Event.Type != "user.signed_up" || string(m.Event.Raw) != validEvent {
		t.Fatalf("message %+v, err %v", m.Event, m.Err)
	}
	// A record whose event has a top-level "message" object is still the
	// event: Firehose records are never Pub/Sub envelopes.
	envelope := `{"message":{"data":"` + b64(validEvent) + `"}}`
	req, _ = DecodeFirehose(firehoseBody("r-2", envelope))
	if m := FirehoseMessage(&req, 0, "", 0); m.Err == nil || m.Delivery.Entry != pipeline.EntryFirehose {
		t.Errorf("an envelope in a record: %+v, err %v; want an invalid event", m.Delivery, m.Err)
	}
}

func TestFirehoseInvalidRecords(t *testing.T) {
	req, err := DecodeFirehose([]byte(`{"requestId":"r","records":[{"data":"@@@@"},{"data":""},{},{"data":null},{"data":"` +
		b64(`{"id":"evt_1"}`) + `"},{"data":"` + b64(validEvent) + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		reason string
		body   string
	}{
		{"the record's data is not valid base64 (at byte 0)", "@@@@"},
		{"the record is empty", ""},
		{"the record is empty", ""},
		{"the record is empty", ""},
		{"event failed validation", `{"id":"evt_1"}`},
	} {
		m := FirehoseMessage(&req, i, "", 0)
		var invalid *event.InvalidError
		if !errors.As(m.Err, &invalid) || invalid.Reason != tc.reason || string(m.Body) != tc.body {
			t.Errorf("record %d: err %v, body %q; want %q with body %q", i, m.Err, m.Body, tc.reason, tc.body)
		}
	}
	var tooLarge *EventTooLargeError
	if m := FirehoseMessage(&req, 5, "", 64); !errors.As(m.Err, &tooLarge) || tooLarge.Size != len(validEvent) || string(m.Event.Raw) != validEvent {
		t.Errorf("an event above the limit: err %v, raw %q", m.Err, m.Event.Raw)
	}
}

func TestDecodeFirehoseRefusals(t *testing.T) {
	for _, tc := range []struct{ body, reason string }{
		{``, "the body is not valid JSON (at byte 0)"},
		{`[]`, "the body must be a JSON object"},
		{`{"requestId":"r","records":[]`, "the body is not valid JSON (at byte 29)"},
		{`{"records":[]}`, "requestId is missing"},
		{`{"requestId":"r"}`, "records is missing"},
		{`{"requestId":"r","records":null}`, "records is missing"},
		{`{"requestId":7,"records":[]}`, "requestId must be a string, not a number"},
		{`{"requestId":"r","timestamp":"1578090903599","records":[]}`, "timestamp must be a whole number (Unix milliseconds), not a string"},
		{`{"requestId":"r","timestamp":1.5,"records":[]}`, "timestamp must be a whole number (Unix milliseconds), not a number"},
		{`{"requestId":"r","records":{}}`, "records must be an array, not an object"},
		{`{"requestId":"r","records":["aGVsbG8="]}`, "records/0 must be an object, not a string"},
		{`{"requestId":"r","records":[{"data":"aGVsbG8="},{"data":5}]}`, "records/1/data must be a string (the record's data in base64), not a number"},
		{`{"requestId":"r","requestId":"s","records":[]}`, "the body names requestId twice"},
		{`{"requestId":"` + strings.Repeat("r", MaxFirehoseRequestIDLength+1) + `","records":[]}`, "requestId is 257 bytes, above the 256 allowed"},
		{`{"requestId":"r","records":[` + strings.Repeat(`{"data":""},`, MaxFirehoseRecords) + `{"data":""}]}`,
			"the request has 10001 records, above the 10000 that Firehose sends at most"},
	} {
		_, err := DecodeFirehose([]byte(tc.body))
		var fe *FirehoseError
		if !errors.As(err, &fe) || fe.Reason != tc.reason {
			t.Errorf("%.60s: err %v, want %q", tc.body, err, tc.reason)
		}
	}
}

func TestDecodeFirehoseAccepts(t *testing.T) {
	for _, body := range []string{
		// No timestamp, members Gwook does not know, and no records.
		`{"requestId":"r","records":[],"extra":{"a":1}}`,
		`{"requestId":"","timestamp":0,"records":[]}`,
		// As many records as Firehose sends.
		`{"requestId":"r","records":[` + strings.TrimSuffix(strings.Repeat(`{"data":""},`, MaxFirehoseRecords), ",") + `]}`,
	} {
		if _, err := DecodeFirehose([]byte(body)); err != nil {
			t.Errorf("%.60s: %v", body, err)
		}
	}
}
