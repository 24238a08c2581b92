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
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/event/eventpb"
	"github.com/gwook/gwook/internal/pipeline"
)

// pushMessage is the "message" member of a wrapped push's JSON body. Pub/Sub
// (and its emulator) spell some fields both in camelCase and in snake_case.
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
// A wrapped push's envelope is read with JSON v2 (go-json-experiment/json)
// under encoding/json's rules: the top level's member names match exactly,
// the message's in any case ("MessageId" is messageId, but "message-id" is
// no member); a name given twice takes its last value, except that in the
// message a null leaves a string as it was; unknown members are ignored.
// A member of the wrong JSON type is reported in words, as in "push
// envelope is malformed: message.attributes must be an object of strings,
// not a JSON number". Nothing after it is read, so the Delivery of a
// malformed envelope holds only the message's members that come before it.
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
	top, ok := readEnvelope(body)
	if !ok || top.Message.Kind() != '{' {
		// The body is the event.
		m.Event, m.Err = decodeEvent(body, maxEventBytes, false)
		return m
	}
	return decodeEnvelope(&top, body, maxEventBytes)
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

// envelope is the top level of a body that may be a wrapped push: the
// members an envelope has, each kept as JSON until it is known to be one.
// For a raw event the other members are skipped.
type envelope struct {
	Message         jsontext.Value `json:"message"`
	Subscription    jsontext.Value `json:"subscription"`
	DeliveryAttempt jsontext.Value `json:"deliveryAttempt"`
}

// envelopeOptions read the top level of a body (and the subscription) as
// encoding/json reads them: names match exactly, a name given twice takes
// its last value, and an escaped lone surrogate ("\ud800") in a string
// reads as U+FFFD. The event decoder, not this, refuses one in an event.
var envelopeOptions = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// messageOptions read the message as encoding/json reads a struct: names
// match in any case, as strings.EqualFold does (JSON v2 alone would also
// ignore dashes and underscores), and a null leaves a string member given
// before it as it was (JSON v2 alone would empty it).
var messageOptions = jsonv2.JoinOptions(
	envelopeOptions,
	jsonv2.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	jsonv1.MergeWithLegacySemantics(true),
)

// readEnvelope reads the top level of body. ok is false when body is not a
// JSON object or null, which can only be an event.
func readEnvelope(body []byte) (top envelope, ok bool) {
	err := jsonv2.Unmarshal(body, &top, envelopeOptions)
	return top, err == nil
}

// decodeEnvelope decodes the wrapped push whose top level is top, with a
// message that is a JSON object; body is the request's.
func decodeEnvelope(top *envelope, body []byte, maxEventBytes int) pipeline.Message {
	var msg pushMessage
	problem := messageProblem(jsonv2.Unmarshal(top.Message, &msg, messageOptions))
	var subscription string
	if problem == "" {
		subscription, problem = decodeSubscription(top.Subscription)
	}
	var attempt int
	if problem == "" {
		attempt, problem = decodeAttempt(top.DeliveryAttempt)
	}
	return wrappedPush(body, &msg, subscription, attempt, problem, maxEventBytes)
}

// malformedEnvelope starts the reason of an envelope whose members are of
// the wrong JSON type.
const malformedEnvelope = "push envelope is malformed: "

// wrappedPush is the Message of a wrapped push whose envelope was read
// into msg, subscription and attempt; problem is what is wrong with the
// envelope's members in words, or "". body is the request's.
func wrappedPush(body []byte, msg *pushMessage, subscription string, attempt int, problem string, maxEventBytes int) pipeline.Message {
	m := pipeline.Message{Body: body, Delivery: msg.delivery(subscription, attempt)}
	switch {
	case problem != "":
		m.Err = &event.InvalidError{Reason: malformedEnvelope + problem}
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

// messageProblem says in words what err, from decoding the message, found
// wrong with it, or "" when err is nil.
func messageProblem(err error) string {
	if err == nil {
		return ""
	}
	var semantic *jsonv2.SemanticError
	if !errors.As(err, &semantic) || semantic.Err != nil {
		// Not met: the body was read as valid JSON before the message, so
		// only a member of the wrong JSON type is left to fail.
		return "message cannot be read"
	}
	name := messageMemberName(firstToken(semantic.JSONPointer))
	want := "a string"
	if name == "attributes" { // the object, or one of its values
		want = "an object of strings"
	}
	return fmt.Sprintf("message.%s must be %s, not a JSON %s", name, want, jsonTypeName(semantic.JSONKind))
}

// firstToken is the first reference token of p: the name of a member of
// the object p points into, as the JSON text spells it.
func firstToken(p jsontext.Pointer) string {
	for token := range p.Tokens() {
		return token
	}
	return ""
}

// messageMemberName is the name, as pushMessage's tags spell it, of the
// message member that spelled names in any case.
func messageMemberName(spelled string) string {
	t := reflect.TypeFor[pushMessage]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if strings.EqualFold(name, spelled) {
			return name
		}
	}
	return spelled
}

// decodeSubscription decodes value, the envelope's subscription (nil when
// absent). The problem is what is wrong with it in words, or "".
func decodeSubscription(value jsontext.Value) (string, string) {
	if value == nil {
		return "", ""
	}
	var subscription string
	if jsonv2.Unmarshal(value, &subscription, envelopeOptions) != nil {
		return "", "subscription must be a string, not a JSON " + jsonTypeName(value.Kind())
	}
	return subscription, ""
}

// decodeAttempt decodes value, the envelope's deliveryAttempt (nil when
// absent). The problem is what is wrong with it in words, or "".
func decodeAttempt(value jsontext.Value) (int, string) {
	switch {
	case value == nil || value.Kind() == 'n':
		return 0, ""
	case value.Kind() != '0':
		return 0, "deliveryAttempt must be a whole number, not a JSON " + jsonTypeName(value.Kind())
	}
	// A number in JSON's grammar, read as encoding/json reads one into an
	// int: no fraction, no exponent, within range.
	attempt, err := strconv.Atoi(string(value))
	if err != nil {
		return 0, "deliveryAttempt must be a whole number, not a JSON number " + string(value)
	}
	return attempt, ""
}

// jsonTypeName is the word for a JSON value of kind k in a problem with an
// envelope.
func jsonTypeName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
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
