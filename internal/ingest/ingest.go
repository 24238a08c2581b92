// Package ingest turns request bodies into events and the context they
// were delivered in. A Kinesis Data Firehose request (POST /firehose,
// DecodeFirehose) carries a batch of events, one per record. The body of a
// POST /notifications request carries one event, in one of five shapes:
//
//   - an Eventarc CloudEvent in binary mode (the request carries ce-*
//     headers), whose body is a wrapped push envelope (cloudevent.go);
//   - an Eventarc CloudEvent in structured mode (Content-Type
//     application/cloudevents+json), whose "data" member is one;
//   - a wrapped Pub/Sub push envelope, {"message":{"data":"<base64>",...},"subscription":...},
//     whose base64 data is the event;
//   - an unwrapped Pub/Sub push (the request carries X-Goog-Pubsub-Message-Id
//     or X-Goog-Pubsub-Subscription-Name), whose body is the event;
//   - anything else: a raw event POSTed by a producer.
//
// A JSON object with a top-level "message" object is taken as an envelope;
// events therefore never have a top-level field named "message".
//
// DecodePulled (pulled.go) does the same for a message pulled from a
// subscription, whose data is the event as a wrapped push's is.
//
// An event is JSON unless it is said to be binary protobuf (a
// gwook.v1.Event, decoded by eventpb): a raw event by the request's
// Content-Type application/protobuf, a Pub/Sub message (every kind of push
// and a pulled one) by its attribute googclient_schemaencoding BINARY,
// which Pub/Sub sets on the messages of a topic with a schema (protobuf.go).
package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/event/eventpb"
	"github.com/gwook/gwook/internal/pipeline"
)

// pushMessage is the "message" member of a wrapped push's JSON body, for both
// decoding paths. Pub/Sub (and its emulator) spell some fields both in
// camelCase and in snake_case.
type pushMessage struct {
	Data             *string           `json:"data"`
	Attributes       map[string]string `json:"attributes"`
	MessageID        string            `json:"messageId"`
	MessageIDSnake   string            `json:"message_id"`
	PublishTime      string            `json:"publishTime"`
	PublishTimeSnake string            `json:"publish_time"`
	OrderingKey      string            `json:"orderingKey"`
}

// delivery is the Delivery of a wrapped push carrying msg.
func (msg *pushMessage) delivery(subscription string, attempt int) pipeline.Delivery {
	return pipeline.Delivery{
		Entry:           pipeline.EntryPush,
		Wrapped:         true,
		Subscription:    subscription,
		MessageID:       firstNonEmpty(msg.MessageID, msg.MessageIDSnake),
		PublishTime:     firstNonEmpty(msg.PublishTime, msg.PublishTimeSnake),
		DeliveryAttempt: attempt,
		OrderingKey:     msg.OrderingKey,
		Attributes:      msg.Attributes,
	}
}

// Headers Pub/Sub sets on an unwrapped push.
const (
	HeaderMessageID       = "X-Goog-Pubsub-Message-Id"
	HeaderSubscription    = "X-Goog-Pubsub-Subscription-Name"
	HeaderPublishTime     = "X-Goog-Pubsub-Publish-Time"
	HeaderDeliveryAttempt = "X-Goog-Pubsub-Delivery-Attempt"
	HeaderOrderingKey     = "X-Goog-Pubsub-Ordering-Key"
)

// EventTooLargeError is the Err of a Message whose event is larger than the
// limit Decode was given. Such an event is not parsed; Event.Raw holds it.
type EventTooLargeError struct {
	Size, Limit int
}

func (e *EventTooLargeError) Error() string {
	return fmt.Sprintf("the event is %d bytes, above the limit of %d bytes", e.Size, e.Limit)
}

// Decode reads one request body. header is the request's headers, used to
// recognise a CloudEvent and an unwrapped push. An event (the body, or a wrapped push's
// decoded data) larger than maxEventBytes is not parsed: Err is an
// *EventTooLargeError. maxEventBytes 0 sets no limit.
//
// A well-formed body takes the fast path: one strict pass of JSON v2 over
// the envelope (exact names, no duplicates, no unknown members in the
// message) and one over the event. Anything that pass refuses is read by
// decodeMembers, which splits the body into its members with encoding/json
// and gives the detailed errors. A fuzz test holds the two paths to the same
// result.
func Decode(header http.Header, body []byte, maxEventBytes int) pipeline.Message {
	if mode := cloudEventMode(header); mode != "" {
		return decodeCloudEvent(mode, header, body, maxEventBytes)
	}
	m := pipeline.Message{Body: body, Delivery: pipeline.Delivery{Entry: pipeline.EntryDirect}}
	if isUnwrappedPush(header) {
		m.Delivery = unwrappedDelivery(header)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		m.Err = &event.InvalidError{Reason: "body is empty"}
		return m
	}
	if binary := protobufBody(header, m.Delivery.Entry); binary || m.Delivery.Entry == pipeline.EntryPush || !utf8.Valid(body) || !mayBeEnvelope(body) {
		m.Event, m.Err = decodeEvent(body, maxEventBytes, binary)
		return m
	}
	if decodeStrict(&m, body, maxEventBytes) {
		return m
	}
	return decodeMembers(body, maxEventBytes)
}

// decodeEvent decodes data as an event, in binary protobuf when binary is
// set and in JSON otherwise, unless it is above maxEventBytes.
func decodeEvent(data []byte, maxEventBytes int, binary bool) (event.Notification, error) {
	if tooLarge(data, maxEventBytes) {
		return event.Notification{Raw: data}, &EventTooLargeError{Size: len(data), Limit: maxEventBytes}
	}
	if binary {
		return eventpb.Decode(data)
	}
	return event.Decode(data)
}

func tooLarge(data []byte, maxEventBytes int) bool {
	return maxEventBytes > 0 && len(data) > maxEventBytes
}

// mayBeEnvelope reports whether body could have a member named "message".
// Without those bytes, and without an escape that could spell them, the
// body can only be an event, and looking for an envelope (a third of the
// time a raw event takes to decode) is skipped.
func mayBeEnvelope(body []byte) bool {
	return bytes.Contains(body, []byte(`"message"`)) || bytes.IndexByte(body, '\\') >= 0
}

// strictEnvelope is the top level of a body as the strict pass reads it. For
// a raw event every member is unknown and skipped.
type strictEnvelope struct {
	Message         jsontext.Value `json:"message"`
	Subscription    string         `json:"subscription"`
	DeliveryAttempt int            `json:"deliveryAttempt"`
}

// decodeStrict fills m from body, a UTF-8 body that is not an unwrapped
// push, and reports whether the strict pass could read it.
func decodeStrict(m *pipeline.Message, body []byte, maxEventBytes int) bool {
	var top strictEnvelope
	if !startsWithObject(body) || jsonv2.Unmarshal(body, &top) != nil {
		return false
	}
	if top.Message.Kind() != '{' {
		m.Event, m.Err = decodeEvent(body, maxEventBytes, false)
		return true
	}
	return decodeStrictMessage(m, &top, maxEventBytes)
}

// decodeStrictMessage fills m from top, an envelope with a message object,
// and reports whether the strict pass could read the message.
func decodeStrictMessage(m *pipeline.Message, top *strictEnvelope, maxEventBytes int) bool {
	// The strict pass refuses members it does not know, so a message
	// spelled differently gets decodeMembers' answer.
	var msg pushMessage
	if jsonv2.Unmarshal(top.Message, &msg, jsonv2.RejectUnknownMembers(true)) != nil || msg.Data == nil || *msg.Data == "" {
		return false
	}
	data, err := base64.StdEncoding.DecodeString(*msg.Data)
	if err != nil {
		return false
	}
	m.Delivery = msg.delivery(top.Subscription, top.DeliveryAttempt)
	m.Event, m.Err = decodeEvent(data, maxEventBytes, protobufData(msg.Attributes))
	return true
}

// decodeMembers is Decode's path for a body the strict pass refused.
func decodeMembers(body []byte, maxEventBytes int) pipeline.Message {
	m := pipeline.Message{Body: body, Delivery: pipeline.Delivery{Entry: pipeline.EntryDirect}}
	var fields map[string]json.RawMessage
	err := json.Unmarshal(body, &fields)
	if message, ok := fields["message"]; err == nil && ok && startsWithObject(message) {
		return decodeEnvelope(fields, body, maxEventBytes)
	}
	// The body is the event.
	m.Event, m.Err = decodeEvent(body, maxEventBytes, false)
	return m
}

func decodeEnvelope(fields map[string]json.RawMessage, body []byte, maxEventBytes int) pipeline.Message {
	var (
		msg          pushMessage
		subscription string
		attempt      int
	)
	problem := member(fields, "message", &msg)
	if problem == "" {
		problem = member(fields, "subscription", &subscription)
	}
	if problem == "" {
		problem = member(fields, "deliveryAttempt", &attempt)
	}
	m := pipeline.Message{Body: body, Delivery: msg.delivery(subscription, attempt)}
	switch {
	case problem != "":
		m.Err = &event.InvalidError{Reason: "push envelope is malformed: " + problem}
	case msg.Data == nil || *msg.Data == "":
		m.Err = &event.InvalidError{Reason: "push message has no data"}
	default:
		data, err := decodeBase64(*msg.Data, "push message data")
		if err != nil {
			m.Err = err
			return m
		}
		m.Event, m.Err = decodeEvent(data, maxEventBytes, protobufData(msg.Attributes))
	}
	return m
}

// member decodes the envelope member name, when present, into v. It
// returns what is wrong with it in words, without Go's type names, or "".
func member(fields map[string]json.RawMessage, name string, v any) string {
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

func isUnwrappedPush(h http.Header) bool {
	return h.Get(HeaderMessageID) != "" || h.Get(HeaderSubscription) != ""
}

// The message attributes in which the Pub/Sub client libraries carry the
// producer's trace context.
const (
	attrTraceParent = "googclient_traceparent"
	attrTraceState  = "googclient_tracestate"
)

// traceAttributes are the message attributes an unwrapped push delivers as
// headers that Gwook reads: the producer's trace context.
var traceAttributes = []string{attrTraceParent, attrTraceState}

func unwrappedDelivery(h http.Header) pipeline.Delivery {
	attempt, _ := strconv.Atoi(h.Get(HeaderDeliveryAttempt))
	var attrs map[string]string
	for _, name := range traceAttributes {
		if v := h.Get(name); v != "" {
			if attrs == nil {
				attrs = map[string]string{}
			}
			attrs[name] = v
		}
	}
	return pipeline.Delivery{
		Attributes:      attrs,
		Entry:           pipeline.EntryPush,
		Subscription:    h.Get(HeaderSubscription),
		MessageID:       h.Get(HeaderMessageID),
		PublishTime:     h.Get(HeaderPublishTime),
		DeliveryAttempt: attempt,
		OrderingKey:     h.Get(HeaderOrderingKey),
	}
}

func startsWithObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// decodeBase64 decodes what, standard base64; an error is invalid event
// saying so, with where the input broke.
func decodeBase64(encoded, what string) ([]byte, error) {
	data, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		reason := what + " is not valid base64"
		var corrupt base64.CorruptInputError
		if errors.As(err, &corrupt) {
			reason += fmt.Sprintf(" (at byte %d)", int64(corrupt))
		}
		return nil, &event.InvalidError{Reason: reason}
	}
	return data, nil
}
