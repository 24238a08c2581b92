// Package pubsubemu provides helpers for tests against the real Google Cloud
// Pub/Sub emulator's REST API.
//
// The emulator is found through PUBSUB_EMULATOR_HOST (host:port), as the
// official client libraries do; scripts/test-services start runs it and prints
// the variables to export. Topics and subscriptions live in the project named
// by PUBSUB_PROJECT_ID, or "gwook-test" when that is unset; the emulator
// accepts any project id.
//
// Every helper takes the test's testing.TB, reports failures through it
// (including the emulator's response body) and must therefore be called from
// the test goroutine. Resources a helper creates are deleted by tb.Cleanup.
package pubsubemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
)

// DefaultProject is the project id used when PUBSUB_PROJECT_ID is unset.
const DefaultProject = "gwook-test"

// defaultClient bounds every request, so that a stuck emulator fails the test
// instead of hanging it.
var defaultClient = &http.Client{Timeout: 30 * time.Second}

// Emulator is a client for the Pub/Sub emulator's REST API.
type Emulator struct {
	// Host is the emulator's host:port, as in PUBSUB_EMULATOR_HOST.
	Host string
	// Project is the project id that topic and subscription ids belong to.
	Project string

	client *http.Client
}

// FromEnv returns an Emulator for PUBSUB_EMULATOR_HOST and PUBSUB_PROJECT_ID.
// It fails the test when the variable is unset or the emulator does not answer
// within 2 seconds: tests that need the emulator never skip silently.
func FromEnv(tb testing.TB) *Emulator {
	tb.Helper()
	const howTo = "run `make test`, or `scripts/test-services start` and export the variables it prints"
	host := strings.TrimSpace(os.Getenv("PUBSUB_EMULATOR_HOST"))
	if host == "" {
		tb.Fatalf("pubsubemu: PUBSUB_EMULATOR_HOST is not set; this test needs the Pub/Sub emulator: %s", howTo)
		return nil
	}
	project := os.Getenv("PUBSUB_PROJECT_ID")
	if project == "" {
		project = DefaultProject
	}
	e := &Emulator{Host: host, Project: project, client: defaultClient}

	ping := &http.Client{Timeout: 2 * time.Second}
	resp, err := ping.Get("http://" + host + "/")
	if err != nil {
		tb.Fatalf("pubsubemu: Pub/Sub emulator at PUBSUB_EMULATOR_HOST=%s does not answer: %v; %s", host, err, howTo)
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("pubsubemu: PUBSUB_EMULATOR_HOST=%s answered GET / with %s: %q; is it the Pub/Sub emulator? %s",
			host, resp.Status, body, howTo)
		return nil
	}
	return e
}

// UniqueID returns a fresh topic or subscription id for the running test:
// prefix, the end of the sanitized test name and a random suffix. The result
// is a valid Pub/Sub id: 3 to 255 characters from [A-Za-z0-9-_.~+], starting
// with a letter and not with "goog".
func (e *Emulator) UniqueID(tb testing.TB, prefix string) string {
	tb.Helper()
	const maxLen = 255
	suffix := fmt.Sprintf("-%012x", rand.Uint64()&(1<<48-1))

	head := sanitizeID(prefix)
	if head == "" || !isLetter(head[0]) || strings.HasPrefix(strings.ToLower(head), "goog") {
		head = "t" + head
	}
	if n := maxLen - len(suffix); len(head) > n {
		head = head[:n]
	}
	// Keep the end of the test name, which names the subtest, when the
	// whole does not fit.
	name := sanitizeID(tb.Name())
	if room := maxLen - len(head) - len(suffix) - 1; room > 0 && name != "" {
		if len(name) > room {
			name = name[len(name)-room:]
		}
		head += "-" + name
	}
	return head + suffix
}

// sanitizeID replaces every character that Pub/Sub does not allow in ids with
// '-'. '%' is replaced as well, since the ids end up in URL paths.
func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < 128 && (isLetter(byte(r)) || r >= '0' && r <= '9'),
			r == '-', r == '_', r == '.', r == '~', r == '+':
			return r
		default:
			return '-'
		}
	}, s)
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// NewClient returns a Pub/Sub client for e's project, which the library
// points at the emulator (PUBSUB_EMULATOR_HOST), closed when the test ends.
func (e *Emulator) NewClient(tb testing.TB) *pubsub.Client {
	tb.Helper()
	client, err := pubsub.NewClient(context.Background(), e.Project)
	if err != nil {
		tb.Fatalf("pubsubemu: Pub/Sub client: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// TopicName returns the full resource name of a topic: id is used as is when
// it already has the form projects/P/topics/T.
func (e *Emulator) TopicName(id string) string {
	if strings.HasPrefix(id, "projects/") {
		return id
	}
	return "projects/" + e.Project + "/topics/" + id
}

// SubscriptionName returns the full resource name of a subscription: id is
// used as is when it already has the form projects/P/subscriptions/S.
func (e *Emulator) SubscriptionName(id string) string {
	if strings.HasPrefix(id, "projects/") {
		return id
	}
	return "projects/" + e.Project + "/subscriptions/" + id
}

// CreateTopic creates a topic and returns its full name,
// projects/P/topics/ID. The topic is deleted when the test ends.
func (e *Emulator) CreateTopic(tb testing.TB, id string) string {
	tb.Helper()
	name := e.TopicName(id)
	var got struct {
		Name string `json:"name"`
	}
	e.call(tb, http.MethodPut, name, struct{}{}, &got)
	tb.Cleanup(func() { e.delete(tb, name) })
	return got.Name
}

// CreatePullSubscription creates a pull subscription to topic (an id or a
// full name) and returns its full name. An ackDeadline of zero means the
// emulator's default of 10 seconds; others are rounded up to whole seconds.
// The subscription is deleted when the test ends.
func (e *Emulator) CreatePullSubscription(tb testing.TB, id, topic string, ackDeadline time.Duration) string {
	tb.Helper()
	return e.createSubscription(tb, id, subscription{
		Topic:              e.TopicName(topic),
		AckDeadlineSeconds: seconds(ackDeadline),
	})
}

// PushOptions configures a push subscription.
type PushOptions struct {
	// Endpoint is the URL the emulator POSTs each message to.
	Endpoint string
	// Unwrapped sends the message data as the raw request body instead of
	// the JSON envelope {"message": {...}, "subscription": "..."}.
	Unwrapped bool
	// WriteMetadata, with Unwrapped, sends the message id, publish time and
	// subscription as x-goog-pubsub-* headers and the attributes as headers.
	WriteMetadata bool
	// AckDeadline is the subscription's ack deadline; zero means the
	// emulator's default of 10 seconds.
	AckDeadline time.Duration
	// Attributes are the push config attributes, such as x-goog-version.
	Attributes map[string]string
}

// CreatePushSubscription creates a push subscription to topic (an id or a
// full name) that delivers to opts.Endpoint, and returns its full name. The
// subscription is deleted when the test ends, which stops deliveries.
func (e *Emulator) CreatePushSubscription(tb testing.TB, id, topic string, opts PushOptions) string {
	tb.Helper()
	if opts.Endpoint == "" {
		tb.Fatalf("pubsubemu: CreatePushSubscription(%q): PushOptions.Endpoint is empty", id)
		return ""
	}
	if opts.WriteMetadata && !opts.Unwrapped {
		tb.Fatalf("pubsubemu: CreatePushSubscription(%q): PushOptions.WriteMetadata requires Unwrapped", id)
		return ""
	}
	cfg := &pushConfig{PushEndpoint: opts.Endpoint, Attributes: opts.Attributes}
	if opts.Unwrapped {
		cfg.NoWrapper = &noWrapper{WriteMetadata: opts.WriteMetadata}
	}
	return e.createSubscription(tb, id, subscription{
		Topic:              e.TopicName(topic),
		PushConfig:         cfg,
		AckDeadlineSeconds: seconds(opts.AckDeadline),
	})
}

type subscription struct {
	Topic              string      `json:"topic"`
	PushConfig         *pushConfig `json:"pushConfig,omitempty"`
	AckDeadlineSeconds int         `json:"ackDeadlineSeconds,omitempty"`
}

type pushConfig struct {
	PushEndpoint string            `json:"pushEndpoint"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	NoWrapper    *noWrapper        `json:"noWrapper,omitempty"`
}

type noWrapper struct {
	WriteMetadata bool `json:"writeMetadata"`
}

func (e *Emulator) createSubscription(tb testing.TB, id string, sub subscription) string {
	tb.Helper()
	name := e.SubscriptionName(id)
	var got struct {
		Name string `json:"name"`
	}
	e.call(tb, http.MethodPut, name, sub, &got)
	tb.Cleanup(func() { e.delete(tb, name) })
	return got.Name
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// Publish publishes one message to topic (an id or a full name) and returns
// the message id the emulator assigned.
func (e *Emulator) Publish(tb testing.TB, topic string, data []byte, attributes map[string]string) string {
	tb.Helper()
	type message struct {
		Data       []byte            `json:"data,omitempty"`
		Attributes map[string]string `json:"attributes,omitempty"`
	}
	req := struct {
		Messages []message `json:"messages"`
	}{Messages: []message{{Data: data, Attributes: attributes}}}
	var resp struct {
		MessageIDs []string `json:"messageIds"`
	}
	e.call(tb, http.MethodPost, e.TopicName(topic)+":publish", req, &resp)
	if len(resp.MessageIDs) != 1 {
		tb.Fatalf("pubsubemu: publish to %s: got %d message ids, want 1", topic, len(resp.MessageIDs))
		return ""
	}
	return resp.MessageIDs[0]
}

// ReceivedMessage is a message returned by Pull.
type ReceivedMessage struct {
	AckID       string
	MessageID   string
	Data        []byte
	Attributes  map[string]string
	PublishTime time.Time
	// DeliveryAttempt is set only for subscriptions with a dead-letter
	// policy; it is zero otherwise.
	DeliveryAttempt int
}

// Pull returns up to max messages that are ready on sub (an id or a full
// name) without waiting for more; it may return fewer than are available.
// The messages are not acknowledged.
func (e *Emulator) Pull(tb testing.TB, sub string, max int) []ReceivedMessage {
	tb.Helper()
	req := struct {
		MaxMessages       int  `json:"maxMessages"`
		ReturnImmediately bool `json:"returnImmediately"`
	}{MaxMessages: max, ReturnImmediately: true}
	var resp struct {
		ReceivedMessages []struct {
			AckID   string `json:"ackId"`
			Message struct {
				Data        []byte            `json:"data"`
				Attributes  map[string]string `json:"attributes"`
				MessageID   string            `json:"messageId"`
				PublishTime time.Time         `json:"publishTime"`
			} `json:"message"`
			DeliveryAttempt int `json:"deliveryAttempt"`
		} `json:"receivedMessages"`
	}
	e.call(tb, http.MethodPost, e.SubscriptionName(sub)+":pull", req, &resp)
	msgs := make([]ReceivedMessage, 0, len(resp.ReceivedMessages))
	for _, rm := range resp.ReceivedMessages {
		msgs = append(msgs, ReceivedMessage{
			AckID:           rm.AckID,
			MessageID:       rm.Message.MessageID,
			Data:            rm.Message.Data,
			Attributes:      rm.Message.Attributes,
			PublishTime:     rm.Message.PublishTime,
			DeliveryAttempt: rm.DeliveryAttempt,
		})
	}
	return msgs
}

// Ack acknowledges messages pulled from sub (an id or a full name). It does
// nothing when no ack ids are given.
func (e *Emulator) Ack(tb testing.TB, sub string, ackIDs ...string) {
	tb.Helper()
	if len(ackIDs) == 0 {
		return
	}
	req := struct {
		AckIDs []string `json:"ackIds"`
	}{AckIDs: ackIDs}
	e.call(tb, http.MethodPost, e.SubscriptionName(sub)+":acknowledge", req, nil)
}

// Nack returns messages pulled from sub (an id or a full name) to the
// subscription at once, by setting their ack deadline to zero, so that the
// next pull can receive them again. It does nothing when no ack ids are
// given.
func (e *Emulator) Nack(tb testing.TB, sub string, ackIDs ...string) {
	tb.Helper()
	if len(ackIDs) == 0 {
		return
	}
	req := struct {
		AckIDs             []string `json:"ackIds"`
		AckDeadlineSeconds int      `json:"ackDeadlineSeconds"`
	}{AckIDs: ackIDs, AckDeadlineSeconds: 0}
	e.call(tb, http.MethodPost, e.SubscriptionName(sub)+":modifyAckDeadline", req, nil)
}

// DeleteTopic deletes topic (an id or a full name) now, for tests of what
// happens when a topic disappears. Its subscriptions remain, detached from
// any topic.
func (e *Emulator) DeleteTopic(tb testing.TB, topic string) {
	tb.Helper()
	e.call(tb, http.MethodDelete, e.TopicName(topic), nil, nil)
}

// drainPoll is how long DrainFor waits after an empty pull.
const drainPoll = 50 * time.Millisecond

// DrainFor pulls and acknowledges messages from sub (an id or a full name)
// until none has arrived for quiet, or until deadline has passed since the
// call, whichever comes first, and returns them in the order received.
func (e *Emulator) DrainFor(tb testing.TB, sub string, quiet time.Duration, deadline time.Duration) []ReceivedMessage {
	tb.Helper()
	var all []ReceivedMessage
	start := time.Now()
	last := start
	for {
		msgs := e.Pull(tb, sub, 100)
		now := time.Now()
		if len(msgs) > 0 {
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				ids[i] = m.AckID
			}
			e.Ack(tb, sub, ids...)
			all = append(all, msgs...)
			last = now
		}
		if now.Sub(last) >= quiet || now.Sub(start) >= deadline {
			return all
		}
		if len(msgs) == 0 {
			time.Sleep(drainPoll)
		}
	}
}

// delete removes a topic or subscription at the end of a test. One that is
// already gone is fine.
func (e *Emulator) delete(tb testing.TB, name string) {
	tb.Helper()
	status, body, err := e.do(http.MethodDelete, name, nil)
	switch {
	case err != nil:
		tb.Errorf("pubsubemu: delete %s: %v", name, err)
	case status != http.StatusOK && status != http.StatusNotFound:
		tb.Errorf("pubsubemu: delete %s: status %d: %s", name, status, body)
	}
}

// call sends a request with a JSON body to /v1/{path}, fails the test unless
// the emulator answers 200 OK and decodes the answer into out, if not nil.
func (e *Emulator) call(tb testing.TB, method, path string, in, out any) {
	tb.Helper()
	status, body, err := e.do(method, path, in)
	if err != nil {
		tb.Fatalf("pubsubemu: %s %s: %v", method, path, err)
		return
	}
	if status != http.StatusOK {
		tb.Fatalf("pubsubemu: %s %s: status %d: %s", method, path, status, body)
		return
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			tb.Fatalf("pubsubemu: %s %s: decoding %s: %v", method, path, body, err)
		}
	}
}

// do sends one request to the emulator and returns the status and body. The
// emulator answers requests that carry a body without Content-Type
// application/json with a plain-text 404, so every request sets it.
func (e *Emulator) do(method, path string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+e.Host+"/v1/"+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	client := e.client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, out, nil
}
