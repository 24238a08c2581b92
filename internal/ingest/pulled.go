package ingest

import (
	"time"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

// Pulled is a message pulled from a subscription: what a wrapped push
// carries in its "message" member, already decoded by the client library.
type Pulled struct {
	Subscription    string // the full name, projects/P/subscriptions/S
	ID              string
	Data            []byte
	Attributes      map[string]string
	PublishTime     time.Time
	DeliveryAttempt int // 0 when the subscription has no dead-letter policy
	OrderingKey     string
}

// DecodePulled is Decode for a pulled message: its data is the event, as
// a wrapped push's decoded data is, and its metadata is the Delivery, with
// entry pull. Data is binary protobuf when the attribute
// googclient_schemaencoding is BINARY. Data larger than maxEventBytes is
// not parsed (Err is an *EventTooLargeError); maxEventBytes 0 sets no
// limit.
func DecodePulled(msg *Pulled, maxEventBytes int) pipeline.Message {
	m := pipeline.Message{Body: msg.Data, Delivery: pipeline.Delivery{
		Entry:           pipeline.EntryPull,
		Subscription:    msg.Subscription,
		MessageID:       msg.ID,
		DeliveryAttempt: msg.DeliveryAttempt,
		OrderingKey:     msg.OrderingKey,
		Attributes:      msg.Attributes,
	}}
	if !msg.PublishTime.IsZero() {
		m.Delivery.PublishTime = msg.PublishTime.UTC().Format(time.RFC3339Nano)
	}
	if len(msg.Data) == 0 {
		m.Err = &event.InvalidError{Reason: "pulled message has no data"}
		return m
	}
	m.Event, m.Err = decodeEvent(msg.Data, maxEventBytes, protobufData(msg.Attributes))
	return m
}
