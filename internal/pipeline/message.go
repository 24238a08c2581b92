package pipeline

import "github.com/gwook/gwook/internal/event"

// Entry says how an event reached Gwook.
type Entry string

// The entries Gwook knows.
const (
	EntryDirect Entry = "direct" // POSTed by a producer
	EntryPush   Entry = "push"   // delivered by a Pub/Sub push subscription, also as an Eventarc CloudEvent
	EntryReplay Entry = "replay" // read back from the dead-letter topic
	// EntryFirehose is one record of a Kinesis Data Firehose HTTP endpoint
	// delivery (POST /firehose).
	EntryFirehose Entry = "firehose"
	EntryPull     Entry = "pull" // pulled from a subscription in PUBSUB_SUBSCRIPTIONS (streaming pull)
)

// redelivers reports whether the sender of an event that came in this way
// sends it again until it is acknowledged: Pub/Sub push and pull, and
// Firehose, which retries the whole batch. An invalid event from such a sender is
// dead-lettered, so that it is acknowledged rather than sent forever.
func (e Entry) redelivers() bool { return e == EntryPush || e == EntryPull || e == EntryFirehose }

// Delivery is the context an event arrived in. For Pub/Sub pushes it carries
// the push metadata, which travels with the event into logs, errors and the
// dead-letter topic.
type Delivery struct {
	Entry           Entry
	Wrapped         bool // a push that came in Pub/Sub's JSON envelope
	Subscription    string
	MessageID       string
	PublishTime     string
	DeliveryAttempt int
	OrderingKey     string
	Attributes      map[string]string
	// CloudEvent is the CloudEvents content mode a push came in through an
	// Eventarc trigger ("binary" or "structured"), "" for any other request.
	CloudEvent string
}

// Message is one event as the pipeline takes it, from whichever entry
// point: the event, how it arrived, and the bytes it came in (package
// ingest makes one from a request body). Err is an *event.InvalidError
// when the body is not a valid event; Delivery is filled in either way.
type Message struct {
	Event    event.Notification
	Delivery Delivery
	// Body is the request body as received, kept for the dead-letter topic
	// when the event could not be decoded.
	Body []byte
	Err  error
}
