package ingest

// Eventarc CloudEvents.
//
// An Eventarc trigger on a Pub/Sub topic delivers each message to Gwook as a
// CloudEvent (HTTP protocol binding 1.0) of type
// google.cloud.pubsub.topic.v1.messagePublished, whose data is a
// google.events.cloud.pubsub.v1.MessagePublishedData:
// {"message": {"data": "<base64>", "attributes": {...}, "messageId": "...",
// "publishTime": "..."}, "subscription": "projects/.../subscriptions/..."},
// the same object as the body of a wrapped push. It comes in one of two
// content modes:
//
//   - binary: the attributes in ce-* headers (ce-specversion, ce-id,
//     ce-source, ce-type, ce-time), the body is the data, its Content-Type
//     the data's (application/json);
//   - structured: Content-Type application/cloudevents+json, the body is the
//     CloudEvent as JSON with the data in its "data" member.
//
// Both take one path: the attributes are read and checked, every problem
// listed; then the data goes through the wrapped push's own decoding
// (decodeEnvelope), so the message, its attributes and the event inside
// get the same checks and the same errors as in a wrapped push. Eventarc's
// Pub/Sub transport is a push subscription that Eventarc manages, with
// Pub/Sub's retries and OIDC tokens, so the result is a push
// (pipeline.EntryPush) in every respect: acknowledged only when
// delivered, dropped on purpose or dead-lettered; a malformed CloudEvent, or
// one of another type, is an invalid push, dead-lettered and acknowledged
// like any other push that can never succeed (a 400 without a dead-letter
// topic), since Pub/Sub would redeliver it forever. A separate entry would
// split the push counts that dashboards and alerts read and change nothing
// the pipeline does; Delivery.CloudEvent (two values) tells the log line
// which mode it was.
//
// No CloudEvents SDK: github.com/cloudevents/sdk-go/v2 would bring
// json-iterator, zap and bytebufferpool to read four headers or four JSON
// members, report a broken event as one message where Gwook lists each
// problem by field, and leave the Pub/Sub envelope in the data, which is
// most of the work, to Gwook anyway.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/truncate"
)

// CloudEventPubSubType is the type of the CloudEvents Gwook accepts: a
// message published to a Pub/Sub topic, as an Eventarc trigger delivers it.
const CloudEventPubSubType = "google.cloud.pubsub.topic.v1.messagePublished"

// ContentTypeCloudEvent is the Content-Type of a structured-mode CloudEvent
// in the JSON event format.
const ContentTypeCloudEvent = "application/cloudevents+json"

// The CloudEvents content modes, the values of pipeline.Delivery.CloudEvent.
const (
	CloudEventBinary     = "binary"
	CloudEventStructured = "structured"
)

// cloudEventsMediaType starts the media type of every structured-mode
// CloudEvent (application/cloudevents+json, application/cloudevents+avro,
// application/cloudevents-batch+json).
const cloudEventsMediaType = "application/cloudevents"

// binaryHeaders are the required attributes of a binary-mode CloudEvent as
// headers; any of them makes a request a CloudEvent.
var binaryHeaders = []string{"Ce-Specversion", "Ce-Id", "Ce-Source", "Ce-Type"}

// cloudEventMode returns the content mode of the CloudEvent h carries, or
// "" when it carries none. The Content-Type decides, as the HTTP binding
// says: a cloudevents media type is structured mode; otherwise a required
// ce-* header is binary mode.
func cloudEventMode(h http.Header) string {
	if ct := h.Get("Content-Type"); len(ct) >= len(cloudEventsMediaType) && strings.EqualFold(ct[:len(cloudEventsMediaType)], cloudEventsMediaType) {
		return CloudEventStructured
	}
	for _, name := range binaryHeaders {
		if h.Get(name) != "" {
			return CloudEventBinary
		}
	}
	return ""
}

// cloudEvent holds the context attributes of a CloudEvent that Gwook reads.
// An attribute that is absent (or null, or an empty header) is "".
type cloudEvent struct {
	mode                                     string
	specVersion, id, source, typ, eventTime  string
	dataContentType, traceParent, traceState string
}

// binaryEvent reads the attributes of a binary-mode CloudEvent from h.
func binaryEvent(h http.Header) cloudEvent {
	return cloudEvent{mode: CloudEventBinary,
		specVersion: h.Get("Ce-Specversion"), id: h.Get("Ce-Id"), source: h.Get("Ce-Source"), typ: h.Get("Ce-Type"),
		eventTime: h.Get("Ce-Time"), dataContentType: h.Get("Content-Type"),
		traceParent: h.Get("Ce-Traceparent"), traceState: h.Get("Ce-Tracestate")}
}

// structuredEvent reads a structured-mode CloudEvent: its attributes, its
// data (nil when absent) and what is wrong with its members. A body that
// cannot be a CloudEvent at all is a non-nil *event.InvalidError.
func structuredEvent(h http.Header, body []byte) (cloudEvent, json.RawMessage, []event.FieldError, error) {
	ce := cloudEvent{mode: CloudEventStructured}
	mediaType, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case err != nil:
		return ce, nil, nil, &event.InvalidError{Reason: "the Content-Type is not a valid media type"}
	case mediaType == "application/cloudevents-batch+json":
		return ce, nil, nil, &event.InvalidError{Reason: "batched CloudEvents are not accepted: send one CloudEvent per request"}
	case mediaType != ContentTypeCloudEvent:
		return ce, nil, nil, &event.InvalidError{Reason: fmt.Sprintf("CloudEvents in %s are not accepted, only in the JSON event format (%s)",
			truncate.String(mediaType, maxEchoed), ContentTypeCloudEvent)}
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		if !json.Valid(body) {
			return ce, nil, nil, &event.InvalidError{Reason: "the CloudEvent is not valid JSON"}
		}
		return ce, nil, nil, &event.InvalidError{Reason: "the CloudEvent must be a JSON object"}
	}
	var problems []event.FieldError
	for _, a := range []struct {
		name string
		into *string
	}{
		{"specversion", &ce.specVersion}, {"id", &ce.id}, {"source", &ce.source}, {"type", &ce.typ}, {"time", &ce.eventTime},
		{"datacontenttype", &ce.dataContentType}, {"traceparent", &ce.traceParent}, {"tracestate", &ce.traceState},
	} {
		if raw, ok := members[a.name]; ok && json.Unmarshal(raw, a.into) != nil {
			problems = append(problems, event.FieldError{Field: a.name, Rule: "type", Detail: "must be a string"})
		}
	}
	data, ok := members["data"]
	if ok && bytes.Equal(data, []byte("null")) {
		data, ok = nil, false
	}
	if !ok {
		detail := `is required: the Pub/Sub message as {"message": {...}, "subscription": "..."}`
		if _, b64 := members["data_base64"]; b64 {
			detail = `must hold the Pub/Sub message as a JSON object {"message": {...}, "subscription": "..."}; data_base64 is not accepted`
		}
		problems = append(problems, event.FieldError{Field: "data", Rule: "required", Detail: detail})
	}
	return ce, data, problems, nil
}

// maxEchoed bounds the attribute values echoed in an error.
const maxEchoed = 128

// problems lists what is wrong with the attributes: the required ones, and
// the optional ones Gwook reads when they are present. Fields are named as
// they came: ce-type for a header, type for a JSON member.
func (ce *cloudEvent) problems() []event.FieldError {
	var out []event.FieldError
	field := func(attr string) string {
		if ce.mode == CloudEventBinary {
			return "ce-" + attr
		}
		return attr
	}
	required := func(attr, value string) bool {
		if value == "" {
			out = append(out, event.FieldError{Field: field(attr), Rule: "required", Detail: "is required"})
		}
		return value != ""
	}
	if required("specversion", ce.specVersion) && ce.specVersion != "1.0" {
		out = append(out, event.FieldError{Field: field("specversion"), Rule: "eq",
			Detail: fmt.Sprintf("is %q; Gwook reads CloudEvents 1.0", truncate.String(ce.specVersion, maxEchoed))})
	}
	required("id", ce.id)
	required("source", ce.source)
	if required("type", ce.typ) && ce.typ != CloudEventPubSubType {
		out = append(out, event.FieldError{Field: field("type"), Rule: "eq",
			Detail: fmt.Sprintf("is %q; Gwook accepts only %s, the Pub/Sub messages an Eventarc trigger delivers",
				truncate.String(ce.typ, maxEchoed), CloudEventPubSubType)})
	}
	if ce.eventTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, ce.eventTime); err != nil {
			out = append(out, event.FieldError{Field: field("time"), Rule: "rfc3339", Detail: "must be an RFC 3339 time"})
		}
	}
	if ce.dataContentType != "" && !isJSONMediaType(ce.dataContentType) {
		name := "datacontenttype"
		if ce.mode == CloudEventBinary {
			name = "content-type"
		}
		out = append(out, event.FieldError{Field: name, Rule: "json",
			Detail: fmt.Sprintf("is %q; the data must be JSON (application/json)", truncate.String(ce.dataContentType, maxEchoed))})
	}
	return out
}

// withoutFields returns the problems whose field is not one of those in
// found: a member that is not a string is not also missing.
func withoutFields(problems, found []event.FieldError) []event.FieldError {
	out := problems[:0]
	for _, p := range problems {
		if !hasField(found, p.Field) {
			out = append(out, p)
		}
	}
	return out
}

func hasField(fields []event.FieldError, name string) bool {
	for _, f := range fields {
		if f.Field == name {
			return true
		}
	}
	return false
}

// isJSONMediaType reports whether contentType is application/json or
// another JSON media type (+json), with any parameters.
func isJSONMediaType(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"))
}

// continueTrace puts the CloudEvent's trace context (the Distributed
// Tracing extension: a ce-traceparent header or a traceparent member) in
// d's attributes as googclient_traceparent and googclient_tracestate,
// where the pipeline continues a push's trace and the dead-letter topic
// keeps it. A message that brings its own googclient_traceparent (the
// publisher's, set by the Pub/Sub client library) keeps it: it names the
// span that published the event.
func (ce *cloudEvent) continueTrace(d *pipeline.Delivery) {
	if ce.traceParent == "" || d.Attributes[attrTraceParent] != "" {
		return
	}
	attrs := make(map[string]string, len(d.Attributes)+2)
	for k, v := range d.Attributes {
		attrs[k] = v
	}
	attrs[attrTraceParent] = ce.traceParent
	delete(attrs, attrTraceState)
	if ce.traceState != "" {
		attrs[attrTraceState] = ce.traceState
	}
	d.Attributes = attrs
}

// decodeCloudEvent decodes the CloudEvent of a request, in mode.
func decodeCloudEvent(mode string, h http.Header, body []byte, maxEventBytes int) pipeline.Message {
	fail := func(err error) pipeline.Message {
		return pipeline.Message{Body: body, Delivery: pipeline.Delivery{Entry: pipeline.EntryPush, CloudEvent: mode}, Err: err}
	}
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return fail(&event.InvalidError{Reason: "body is empty"})
	case !utf8.Valid(body):
		return fail(&event.InvalidError{Reason: "body is not valid UTF-8"})
	}
	ce, data := binaryEvent(h), json.RawMessage(body)
	var problems []event.FieldError
	if mode == CloudEventStructured {
		var err error
		if ce, data, problems, err = structuredEvent(h, body); err != nil {
			return fail(err)
		}
	}
	problems = append(withoutFields(ce.problems(), problems), problems...)
	m := fail(nil)
	if data != nil {
		m = decodeMessagePublished(data, body, maxEventBytes)
		m.Delivery.CloudEvent = mode
	}
	if len(problems) > 0 {
		if m.Err != nil {
			problems = append(problems, event.FieldError{Field: "data", Rule: "messagePublished", Detail: m.Err.Error()})
		}
		m.Err = &event.InvalidError{Reason: "the CloudEvent is malformed", Fields: problems}
	}
	ce.continueTrace(&m.Delivery)
	return m
}

// decodeMessagePublished decodes data, the MessagePublishedData of a
// CloudEvent, as a wrapped push's body; body is the request's.
func decodeMessagePublished(data, body []byte, maxEventBytes int) pipeline.Message {
	fail := func(reason string) pipeline.Message {
		return pipeline.Message{Body: body, Delivery: pipeline.Delivery{Entry: pipeline.EntryPush}, Err: &event.InvalidError{Reason: reason}}
	}
	top, ok := readEnvelope(data)
	switch {
	case !ok || !startsWithObject(data):
		return fail(`the CloudEvent's data must be a JSON object {"message": {...}, "subscription": "..."}`)
	case top.Message.Kind() != '{':
		return fail(`the CloudEvent's data has no "message" object`)
	}
	return decodeEnvelope(&top, body, maxEventBytes)
}
