package pull

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/internal/telemetry"
	"github.com/gwook/gwook/test/logbuf"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// The tests run Run against the Pub/Sub emulator (PUBSUB_EMULATOR_HOST)
// and the Svix-compatible server, each on its own topic and subscription.

// waitTimeout bounds every wait for something that should happen.
const waitTimeout = 30 * time.Second

// How long a subscription is watched for a message that should not come
// back. A nacked message comes back at once: quietWindow is enough. One
// whose ack was lost (never sent before the client stopped) comes back
// only when its lease ends, at most leasePeriod after the client last
// extended it: leaseWindow.
const (
	quietWindow = 3 * time.Second
	leaseWindow = leasePeriod + 2*time.Second
)

// fixture is a topic with a pull subscription, a Svix-compatible server,
// a Pub/Sub client, and the log Run writes to.
type fixture struct {
	emu    *pubsubemu.Emulator
	topic  string
	sub    string
	svix   *svixserver.Server
	client *pubsub.Client
	logs   *logbuf.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	emu := pubsubemu.FromEnv(t)
	f := &fixture{emu: emu, svix: svixserver.New(t), logs: &logbuf.Buffer{}}
	f.topic = emu.CreateTopic(t, emu.UniqueID(t, "pull-events"))
	f.sub = emu.CreatePullSubscription(t, emu.UniqueID(t, "pull"), f.topic, 10*time.Second)
	f.client = emu.NewClient(t)
	return f
}

// config returns the Config of a Run over subs whose pipeline sends to
// f.svix with one attempt per event, dead-lettering to dl (nil for none).
func (f *fixture) config(t *testing.T, dl *deadletter.Publisher, subs ...string) Config {
	t.Helper()
	sender, err := svix.New(svix.Config{Token: "sk_test", ServerURL: f.svix.URL(), Timeout: 10 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
		Retry: svix.RetryPolicy{MaxAttempts: 1, MaxElapsed: 10 * time.Second, InitialInterval: time.Millisecond,
			MaxInterval: time.Millisecond, RetryAfterMax: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(pipeline.Config{Backend: svix.Backend{Sender: sender}, DeadLetters: dl,
		Logger: slog.New(slog.DiscardHandler)})
	return Config{
		Client:                 f.client,
		Subscriptions:          subs,
		MaxOutstandingMessages: 10,
		MaxOutstandingBytes:    1 << 20,
		LeaseExtension:         time.Minute,
		MaxEventBytes:          1 << 20,
		Pipeline:               p,
		Logger:                 slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// deadLetterTopic creates a dead-letter topic with a subscription to read
// it, and returns a publisher to the topic and the subscription.
func (f *fixture) deadLetterTopic(t *testing.T) (*deadletter.Publisher, string) {
	t.Helper()
	topic := f.emu.CreateTopic(t, f.emu.UniqueID(t, "pull-dlq"))
	sub := f.emu.CreatePullSubscription(t, f.emu.UniqueID(t, "pull-dlq-sub"), topic, 10*time.Second)
	dl, err := deadletter.NewPublisher(context.Background(), f.client, topic, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dl.Stop)
	return dl, sub
}

// start runs Run(cfg) until the returned stop is called or the test ends.
// stop cancels Run's context and fails the test unless Run returns within
// waitTimeout.
func start(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, cfg)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(waitTimeout):
				t.Fatalf("Run did not return within %v of its context's end", waitTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newEvent returns a valid event with a fresh id.
func newEvent() (id string, body []byte) {
	id = fmt.Sprintf("evt_pull_%d_%08x", time.Now().UnixNano(), rand.Uint32())
	return id, fmt.Appendf(nil, `{"id":%q,"type":"user.signed_up","source":"s","project":"p","user_id":"usr_pull","time":"2026-01-02T15:04:05Z","data":{}}`, id)
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNotRedelivered stops Run and fails the test if a message comes
// back on f.sub within window.
func (f *fixture) checkNotRedelivered(t *testing.T, stop func(), window time.Duration) {
	t.Helper()
	stop()
	if left := f.emu.DrainFor(t, f.sub, window, window+waitTimeout); len(left) != 0 {
		t.Errorf("%d messages delivered again after Run returned, want none: not acked", len(left))
	}
}

// pulled returns the "pulled message" lines of the Pub/Sub message msgID.
func pulled(logs *logbuf.Buffer, msgID string) []map[string]any {
	var out []map[string]any
	for _, l := range logs.Lines("pulled message") {
		if l["pull_message_id"] == msgID {
			out = append(out, l)
		}
	}
	return out
}

// pullFailed is the message of the line that says a streaming pull failed.
const pullFailed = "streaming pull failed; receiving again after a pause"

// TestRunAcksForwardedMessage: an event Svix accepts is acked, so it
// reaches Svix once and is never delivered again.
func TestRunAcksForwardedMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stop := start(t, f.config(t, nil, f.sub))
	id, body := newEvent()
	msgID := f.emu.Publish(t, f.topic, body, nil)

	f.svix.WaitForMessages(t, 1, waitTimeout)
	waitFor(t, "the message answered", func() bool { return len(pulled(f.logs, msgID)) > 0 })
	f.checkNotRedelivered(t, stop, quietWindow)

	if l := pulled(f.logs, msgID); len(l) != 1 || l[0]["outcome"] != "forwarded" || l[0]["acked"] != true {
		t.Errorf("log lines %v, want one forwarded and acked", l)
	}
	if msgs := f.svix.MessagesFor(id); len(msgs) != 1 || !bytes.Equal(msgs[0].Payload, body) {
		t.Errorf("%d messages at Svix for %s, want 1 with the event", len(msgs), id)
	}
}

// TestRunNacksWhileSvixIsUnavailable: while Svix answers 503 the message
// is nacked and pulled again; once Svix heals it is delivered once and
// acked.
func TestRunNacksWhileSvixIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svix.SetDefault(svixserver.Response{Status: 503})
	start(t, f.config(t, nil, f.sub))
	id, body := newEvent()
	msgID := f.emu.Publish(t, f.topic, body, nil)

	waitFor(t, "the message pulled three times", func() bool { return len(pulled(f.logs, msgID)) >= 3 })
	for _, l := range pulled(f.logs, msgID) {
		if l["outcome"] != "unavailable" || l["acked"] != false {
			t.Fatalf("while Svix answers 503: %v, want unavailable and not acked", l)
		}
	}
	if n := f.svix.Attempts(); n < 3 {
		t.Errorf("Svix had %d requests, want one per pull (at least 3)", n)
	}

	f.svix.SetDefault(svixserver.Response{})
	waitFor(t, "the message acked", func() bool {
		l := pulled(f.logs, msgID)
		return l[len(l)-1]["acked"] == true
	})
	if l := pulled(f.logs, msgID); l[len(l)-1]["outcome"] != "forwarded" {
		t.Errorf("after Svix healed: %v, want forwarded", l[len(l)-1])
	}
	if n := len(f.svix.MessagesFor(id)); n != 1 {
		t.Errorf("%d messages at Svix, want 1", n)
	}
}

// TestRunNacksInvalidMessageWithoutDeadLetterTopic: without a dead-letter
// topic an invalid event is not Handled (pipeline.Result.Handled), so it
// is nacked and pulled again, as a push of it is answered with an error;
// it never reaches Svix.
func TestRunNacksInvalidMessageWithoutDeadLetterTopic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	start(t, f.config(t, nil, f.sub))
	msgID := f.emu.Publish(t, f.topic, []byte(`{not json`), nil)

	waitFor(t, "the message pulled twice", func() bool { return len(pulled(f.logs, msgID)) >= 2 })
	for _, l := range pulled(f.logs, msgID) {
		if l["outcome"] != "invalid" || l["acked"] != false {
			t.Fatalf("%v, want invalid and not acked", l)
		}
	}
	if n := f.svix.Attempts(); n != 0 {
		t.Errorf("Svix had %d requests for an invalid event", n)
	}
}

// TestRunAcksInvalidMessageDeadLettered: with a dead-letter topic an
// invalid event is published there and acked: it is never delivered
// again.
func TestRunAcksInvalidMessageDeadLettered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dl, dlSub := f.deadLetterTopic(t)
	stop := start(t, f.config(t, dl, f.sub))
	invalid := []byte(`{not json`)
	msgID := f.emu.Publish(t, f.topic, invalid, nil)

	waitFor(t, "the message answered", func() bool { return len(pulled(f.logs, msgID)) > 0 })
	f.checkNotRedelivered(t, stop, quietWindow)

	if l := pulled(f.logs, msgID); len(l) != 1 || l[0]["outcome"] != "invalid" || l[0]["acked"] != true || l[0]["dead_lettered"] != true {
		t.Errorf("log lines %v, want one invalid, dead-lettered and acked", l)
	}
	letters := f.emu.DrainFor(t, dlSub, time.Second, waitTimeout)
	if len(letters) != 1 || !bytes.Equal(letters[0].Data, invalid) || letters[0].Attributes[deadletter.AttrSourceMessageID] != msgID {
		t.Errorf("dead letters %+v, want the invalid message %s", letters, msgID)
	}
}

// TestRunKeepsConsumingBesideMissingSubscription: a subscription that does
// not exist is logged as failing and does not keep Run from consuming the
// other one, after the failure as before it.
func TestRunKeepsConsumingBesideMissingSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	missing := f.emu.SubscriptionName(f.emu.UniqueID(t, "missing"))
	cfg := f.config(t, nil, missing, f.sub)
	cfg.Metrics = telemetry.NewMetrics("test")
	start(t, cfg)

	waitFor(t, "the missing subscription's failure logged", func() bool {
		for _, l := range f.logs.Lines(pullFailed) {
			if l["subscription"] == missing && l["level"] == "ERROR" && l["error"] != "" {
				return true
			}
		}
		return false
	})
	rec := httptest.NewRecorder()
	cfg.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !regexp.MustCompile(`(?m)^gwook_pull_failures_total [1-9]`).MatchString(rec.Body.String()) {
		t.Errorf("gwook_pull_failures_total is not counted after the failure:\n%s", rec.Body.String())
	}
	id, body := newEvent()
	f.emu.Publish(t, f.topic, body, nil)
	f.svix.WaitForMessages(t, 1, waitTimeout)
	if n := len(f.svix.MessagesFor(id)); n != 1 {
		t.Errorf("%d messages at Svix for %s, want 1", n, id)
	}
	for _, l := range f.logs.Lines(pullFailed) {
		if l["subscription"] == f.sub {
			t.Errorf("the existing subscription failed: %v", l)
		}
	}
}

// TestRunFinishesMessageOnShutdown: a message still being sent when Run's
// context ends is finished and acked before Run returns.
func TestRunFinishesMessageOnShutdown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svix.SetDefault(svixserver.Response{Delay: 2 * time.Second})
	stop := start(t, f.config(t, nil, f.sub))
	id, body := newEvent()
	msgID := f.emu.Publish(t, f.topic, body, nil)

	waitFor(t, "the event sent to Svix", func() bool { return f.svix.Attempts() > 0 })
	stop()
	if n := len(f.svix.MessagesFor(id)); n != 1 {
		t.Fatalf("%d messages at Svix for %s when Run returned, want 1", n, id)
	}
	if l := pulled(f.logs, msgID); len(l) != 1 || l[0]["outcome"] != "forwarded" || l[0]["acked"] != true {
		t.Fatalf("log lines %v when Run returned, want one forwarded and acked", l)
	}
	// The ack was sent before Run returned, not lost with the client.
	f.checkNotRedelivered(t, stop, leaseWindow)
}

// TestRunLogsPulledMessage: each message answered is logged as "pulled
// message" with its outcome, whether it was acked, and where it came from.
func TestRunLogsPulledMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	start(t, f.config(t, nil, f.sub))
	id, body := newEvent()
	msgID := f.emu.Publish(t, f.topic, body, nil)

	waitFor(t, "the message logged", func() bool { return len(pulled(f.logs, msgID)) > 0 })
	l := pulled(f.logs, msgID)[0]
	for k, want := range map[string]any{
		"level": "INFO", "outcome": "forwarded", "acked": true, "entry": "pull",
		"pull_subscription": f.sub, "pull_message_id": msgID, "event_id": id, "svix_status": float64(202),
	} {
		if l[k] != want {
			t.Errorf("%s = %v (%T), want %v", k, l[k], l[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["pull_publish_time"])); err != nil {
		t.Errorf("pull_publish_time %v: %v", l["pull_publish_time"], err)
	}
}

// The pause doubles while Receive keeps failing at once, up to maxRetry,
// and starts over after a stream that ran for a while.
func TestNextPause(t *testing.T) {
	var got []time.Duration
	pause := time.Duration(0)
	for range 7 {
		pause = nextPause(pause, 10*time.Millisecond)
		got = append(got, pause)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pauses %v, want %v", got, want)
	}
	if p := nextPause(30*time.Second, time.Hour); p != firstRetry {
		t.Errorf("after a stream that ran an hour: %v, want %v", p, firstRetry)
	}
	if p := nextPause(30*time.Second, maxRetry); p != maxRetry {
		t.Errorf("after a stream that ran maxRetry: %v, want %v", p, maxRetry)
	}
}
