package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// pulling runs g's streaming pull until the test ends, and returns a
// function that stops it and waits for it to return, as a shutdown does.
func pulling(t *testing.T, g *gwooktest.Gwook) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.App.Pull(ctx)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("Pull did not return within %v of its context's end", waitTimeout)
		}
	}
	t.Cleanup(stop)
	return stop
}

// pulledLines returns Gwook's log lines for pulled messages, by event id.
func pulledLines(g *gwooktest.Gwook) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, l := range g.Logs.Lines("pulled message") {
		id := fmt.Sprint(l["event_id"])
		out[id] = append(out[id], l)
	}
	return out
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPullForwardsFiltersAndDeadLetters consumes a subscription by
// streaming pull: valid events reach Svix once, an event of an excluded
// type is filtered, an invalid one is dead-lettered, and all are acked
// (nothing is left on the subscription, nothing redelivered); the trace
// continues from googclient_traceparent.
func TestPullForwardsFiltersAndDeadLetters(t *testing.T) {
	emu := pubsubemu.FromEnv(t)
	dlqTopic := emu.CreateTopic(t, emu.UniqueID(t, "pull-dlq"))
	dlqSub := emu.CreatePullSubscription(t, emu.UniqueID(t, "pull-dlq-sub"), dlqTopic, 10*time.Second)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "pull-events"))
	sub := emu.CreatePullSubscription(t, emu.UniqueID(t, "gwook-pull"), topic, 10*time.Second)
	g := gwooktest.Start(t, map[string]string{
		"PUBSUB_PROJECT_ID":    emu.Project,
		"PUBSUB_SUBSCRIPTIONS": sub,
		"DEAD_LETTER_TOPIC":    dlqTopic,
		"FILTER_EXCLUDE_TYPES": "internal.*",
	}, app.Options{})
	stop := pulling(t, g)

	const n = 10
	events := uniqueEvents(t, n)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, body := range events {
		emu.Publish(t, topic, body, map[string]string{"googclient_traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
	}
	filteredID := fmt.Sprintf("evt_pull_filtered_%d", time.Now().UnixNano())
	emu.Publish(t, topic, fmt.Appendf(nil, `{"id":%q,"type":"internal.audit","source":"s","project":"p","user_id":"usr_1","time":"2026-12-01T10:00:00Z","data":{}}`, filteredID), nil)
	invalid := []byte(`{"id":"evt_pull_invalid","type":"user.signed_up","time":"not a time"}`)
	invalidMsg := emu.Publish(t, topic, invalid, nil)

	g.Svix.WaitForMessages(t, n, waitTimeout)
	waitFor(t, "a log line for every message", func() bool { return len(g.Logs.Lines("pulled message")) >= n+2 })
	lines := pulledLines(g)
	for id, body := range events {
		if msgs := g.Svix.MessagesFor(id); len(msgs) != 1 || string(msgs[0].Payload) != string(body) {
			t.Errorf("event %s: %d messages at Svix, want 1 with its payload", id, len(msgs))
		}
		l := lines[id]
		if len(l) != 1 || l[0]["outcome"] != "forwarded" || l[0]["entry"] != "pull" || l[0]["acked"] != true ||
			l[0]["pull_subscription"] != sub || l[0]["trace_id"] != traceID || l[0]["pull_message_id"] == "" {
			t.Errorf("event %s: log lines %v", id, l)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l[0]["pull_publish_time"])); err != nil {
			t.Errorf("event %s: publish time %v", id, l[0]["pull_publish_time"])
		}
	}
	if l := lines[filteredID]; len(l) != 1 || l[0]["outcome"] != "filtered" || l[0]["acked"] != true || l[0]["filter_rule"] != "global_types" {
		t.Errorf("filtered event: log lines %v", l)
	}
	if l := lines["evt_pull_invalid"]; len(l) != 1 || l[0]["outcome"] != "invalid" || l[0]["acked"] != true || l[0]["dead_lettered"] != true {
		t.Errorf("invalid event: log lines %v", l)
	}
	letters := emu.DrainFor(t, dlqSub, time.Second, waitTimeout)
	if len(letters) != 1 || string(letters[0].Data) != string(invalid) ||
		letters[0].Attributes[deadletter.AttrReason] != string(deadletter.ReasonInvalidEvent) ||
		letters[0].Attributes[deadletter.AttrSourceSubscription] != sub || letters[0].Attributes[deadletter.AttrSourceMessageID] != invalidMsg {
		t.Errorf("dead letters %+v, want the invalid event from %s", letters, sub)
	}

	// Every message was acked: after the pull stops, none is redelivered.
	stop()
	if left := emu.DrainFor(t, sub, quietWindow, waitTimeout); len(left) != 0 {
		t.Errorf("%d messages left on the subscription after they were all answered", len(left))
	}
	if got := len(g.Logs.Lines("pulled message")); got != n+2 {
		t.Errorf("%d messages pulled, want %d: one was redelivered", got, n+2)
	}
}

// TestPullNacksWhileSvixIsDown pulls while Svix answers 503, without a
// dead-letter topic: the message is nacked and pulled again until Svix
// heals, then delivered once.
func TestPullNacksWhileSvixIsDown(t *testing.T) {
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "pull-events"))
	sub := emu.CreatePullSubscription(t, emu.UniqueID(t, "gwook-pull"), topic, 10*time.Second)
	g := gwooktest.Start(t, map[string]string{
		"PUBSUB_PROJECT_ID":       emu.Project,
		"PUBSUB_SUBSCRIPTIONS":    sub,
		"SVIX_RETRY_MAX_ATTEMPTS": "2",
	}, app.Options{})
	g.Svix.SetDefault(svixserver.Response{Status: 503})
	pulling(t, g)

	events := uniqueEvents(t, 1)
	var id string
	for k, body := range events {
		id = k
		emu.Publish(t, topic, body, nil)
	}
	waitFor(t, "the event pulled three times", func() bool { return len(pulledLines(g)[id]) >= 3 })
	for _, l := range pulledLines(g)[id] {
		if l["outcome"] != "unavailable" || l["acked"] != false {
			t.Fatalf("while Svix is down: %v", l)
		}
	}
	if n := len(g.Svix.MessagesFor(id)); n != 0 {
		t.Fatalf("%d messages at Svix while it answered 503", n)
	}

	g.Svix.SetDefault(svixserver.Response{})
	g.Svix.WaitForMessages(t, 1, waitTimeout)
	waitFor(t, "the event acked", func() bool {
		l := pulledLines(g)[id]
		return l[len(l)-1]["acked"] == true
	})
	l := pulledLines(g)[id]
	if last := l[len(l)-1]; last["outcome"] != "forwarded" {
		t.Errorf("after Svix healed: %v", last)
	}
	if n := len(g.Svix.MessagesFor(id)); n != 1 {
		t.Errorf("%d messages at Svix, want 1", n)
	}
	t.Logf("pulled %d times before Svix healed", len(l)-1)
}
