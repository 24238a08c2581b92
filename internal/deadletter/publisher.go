// Package deadletter keeps the events Gwook could not deliver: it publishes
// them to a Pub/Sub dead-letter topic, with attributes saying why, and
// replays that topic's subscription through the pipeline on an operator's
// command.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gwook/gwook/internal/truncate"
)

// Reason says why an event was dead-lettered.
type Reason string

// The reasons an event is dead-lettered.
const (
	ReasonRateLimited  Reason = "rate_limited"  // Svix answered 429 after every retry
	ReasonUnavailable  Reason = "unavailable"   // Svix failed or was unreachable after every retry
	ReasonInvalidEvent Reason = "invalid_event" // a push whose body is not a valid event
)

// Attribute names on a dead-lettered message.
const (
	AttrReason             = "reason"
	AttrSvixStatus         = "svix_status"
	AttrError              = "error"
	AttrAttempts           = "attempts"
	AttrEventID            = "event_id"
	AttrEventType          = "event_type"
	AttrApplication        = "application"
	AttrSourceSubscription = "source_subscription"
	AttrSourceMessageID    = "source_message_id"
	AttrFailedAt           = "failed_at"
	// AttrTraceParent has the name the Pub/Sub client libraries use.
	AttrTraceParent = "googclient_traceparent"
)

// Pub/Sub allows attribute values of at most 1024 bytes of UTF-8; the error
// text is kept shorter.
const (
	maxAttribute      = 1024
	maxErrorAttribute = 512
)

// Letter is one event to dead-letter and why.
type Letter struct {
	Reason Reason
	// Data is the event JSON, or the request body when it could not be decoded.
	Data               []byte
	SvixStatus         int
	Error              string
	Attempts           int
	EventID            string
	EventType          string
	Application        string
	SourceSubscription string
	SourceMessageID    string
	FailedAt           time.Time
	// TraceParent is the producer's W3C trace context, kept so a replay
	// continues the producer's trace.
	TraceParent string
}

// attributes returns l's metadata as Pub/Sub attributes, leaving out the
// empty ones.
func (l *Letter) attributes() map[string]string {
	attrs := map[string]string{
		AttrReason:   string(l.Reason),
		AttrAttempts: strconv.Itoa(l.Attempts),
		AttrFailedAt: l.FailedAt.UTC().Format(time.RFC3339Nano),
	}
	set := func(name, value string) {
		if value != "" {
			attrs[name] = truncate.String(value, maxAttribute)
		}
	}
	if l.SvixStatus != 0 {
		attrs[AttrSvixStatus] = strconv.Itoa(l.SvixStatus)
	}
	set(AttrError, truncate.String(l.Error, maxErrorAttribute))
	set(AttrEventID, l.EventID)
	set(AttrEventType, l.EventType)
	set(AttrApplication, l.Application)
	set(AttrSourceSubscription, l.SourceSubscription)
	set(AttrSourceMessageID, l.SourceMessageID)
	set(AttrTraceParent, l.TraceParent)
	return attrs
}

// Publisher publishes to the dead-letter topic. Its buffer is bounded: when
// Pub/Sub is unreachable and the buffer is full, Publish fails at once
// instead of blocking the server.
type Publisher struct {
	client    *pubsub.Client
	publisher *pubsub.Publisher
	topic     string
	timeout   time.Duration
}

// Buffer bounds of the publisher, for an outage of Pub/Sub.
const (
	maxBufferedMessages = 1000
	maxBufferedBytes    = 64 << 20
)

// NewPublisher checks that topic (a topic ID in client's project, or a full
// projects/P/topics/T name) exists and that Gwook may publish to it, and
// returns a Publisher whose Publish waits at most timeout for Pub/Sub.
func NewPublisher(ctx context.Context, client *pubsub.Client, topic string, timeout time.Duration) (*Publisher, error) {
	name, err := TopicName(client.Project(), topic)
	if err != nil {
		return nil, err
	}
	if _, err := client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name}); err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("dead-letter topic %s does not exist: create it, or fix DEAD_LETTER_TOPIC", name)
		}
		return nil, fmt.Errorf("dead-letter topic %s: %w", name, err)
	}
	if err := checkPublishPermission(ctx, client, name); err != nil {
		return nil, err
	}
	p := client.Publisher(name)
	p.PublishSettings.Timeout = timeout
	p.PublishSettings.FlowControlSettings = pubsub.FlowControlSettings{
		MaxOutstandingMessages: maxBufferedMessages,
		MaxOutstandingBytes:    maxBufferedBytes,
		LimitExceededBehavior:  pubsub.FlowControlSignalError,
	}
	return &Publisher{client: client, publisher: p, topic: name, timeout: timeout}, nil
}

// checkPublishPermission asks Pub/Sub whether the caller may publish to
// topic. A server without IAM (the emulator) cannot say, and is trusted.
func checkPublishPermission(ctx context.Context, client *pubsub.Client, topic string) error {
	const permission = "pubsub.topics.publish"
	resp, err := client.TopicAdminClient.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{
		Resource: topic, Permissions: []string{permission},
	})
	if status.Code(err) == codes.Unimplemented {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dead-letter topic %s: checking publish permission: %w", topic, err)
	}
	for _, p := range resp.GetPermissions() {
		if p == permission {
			return nil
		}
	}
	return fmt.Errorf("dead-letter topic %s is not writable: grant roles/pubsub.publisher on it to Gwook's service account", topic)
}

// TopicName returns the full name of topic, given as an ID in project or
// as a full projects/P/topics/T name.
func TopicName(project, topic string) (string, error) {
	if strings.HasPrefix(topic, "projects/") {
		parts := strings.Split(topic, "/")
		if len(parts) != 4 || parts[2] != "topics" || parts[1] == "" || parts[3] == "" {
			return "", fmt.Errorf("dead-letter topic %q is neither a topic ID nor projects/P/topics/T", topic)
		}
		return topic, nil
	}
	if topic == "" || strings.Contains(topic, "/") {
		return "", fmt.Errorf("dead-letter topic %q is neither a topic ID nor projects/P/topics/T", topic)
	}
	return "projects/" + project + "/topics/" + topic, nil
}

// ProjectOf returns P from a projects/P/... resource name, or "".
func ProjectOf(name string) string {
	parts := strings.Split(name, "/")
	if len(parts) >= 2 && parts[0] == "projects" {
		return parts[1]
	}
	return ""
}

// Publish stores l on the topic and waits until Pub/Sub has it, at most the
// publish timeout. It returns the message ID Pub/Sub assigned.
func (p *Publisher) Publish(ctx context.Context, l Letter) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	result := p.publisher.Publish(ctx, &pubsub.Message{Data: l.Data, Attributes: l.attributes()})
	id, err := result.Get(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("publishing to %s: no answer within %s", p.topic, p.timeout)
		}
		return "", fmt.Errorf("publishing to %s: %w", p.topic, err)
	}
	return id, nil
}

// Ping reports whether the topic can be read.
func (p *Publisher) Ping(ctx context.Context) error {
	_, err := p.client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: p.topic})
	return err
}

// Stop flushes what is buffered and stops the publisher.
func (p *Publisher) Stop() { p.publisher.Stop() }
