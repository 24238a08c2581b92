package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pubsubemu"
)

// uniqueEvents returns n valid events with ids and dedup keys unique to
// this test run, cycling through the example events for their types and data.
func uniqueEvents(t testing.TB, n int) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("../events/event-[0-9]*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example events: %v", err)
	}
	run := time.Now().UnixNano()
	out := make(map[string][]byte, n)
	for i := range n {
		raw, err := os.ReadFile(paths[i%len(paths)])
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("evt_e2e_%d_%03d", run, i)
		ev["id"] = id
		ev["source"] = fmt.Sprintf("%v-%d", ev["source"], i) // a distinct dedup key per event
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = b
	}
	return out
}

// TestPushSubscriptionDeliversEachEventOnce publishes events to a topic
// whose push subscription points at Gwook, and checks that each reaches
// Svix exactly once and that Gwook acked every push at the first try.
func TestPushSubscriptionDeliversEachEventOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts pubsubemu.PushOptions
	}{
		{"wrapped", pubsubemu.PushOptions{}},
		{"unwrapped with metadata", pubsubemu.PushOptions{Unwrapped: true, WriteMetadata: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := pubsubemu.FromEnv(t)
			g := gwooktest.Start(t, nil, app.Options{})
			topic := emu.CreateTopic(t, emu.UniqueID(t, "events"))
			opts := tc.opts
			opts.Endpoint = g.PushURL()
			opts.AckDeadline = 30 * time.Second
			sub := emu.CreatePushSubscription(t, emu.UniqueID(t, "gwook-push"), topic, opts)

			const n = 20
			events := uniqueEvents(t, n)
			for _, body := range events {
				emu.Publish(t, topic, body, map[string]string{"origin": "e2e"})
			}
			g.Svix.WaitForMessages(t, n, 60*time.Second)

			for id, body := range events {
				msgs := g.Svix.MessagesFor(id)
				if len(msgs) != 1 {
					t.Fatalf("event %s reached Svix %d times", id, len(msgs))
				}
				if string(msgs[0].Payload) != string(body) {
					t.Errorf("event %s: payload %s, want %s", id, msgs[0].Payload, body)
				}
			}

			// The emulator redelivers a nacked push about once a second; a
			// quiet spell with no new attempt shows every push was acked.
			quietUntil := time.Now().Add(3 * time.Second)
			for time.Now().Before(quietUntil) {
				if got := g.Svix.Attempts(); got != n {
					t.Fatalf("Svix saw %d attempts for %d events: a push was redelivered", got, n)
				}
				time.Sleep(100 * time.Millisecond)
			}

			lines := g.Logs.Lines("request")
			forwarded := 0
			messageIDs := map[any]bool{}
			for _, l := range lines {
				if l["outcome"] != "forwarded" {
					continue
				}
				forwarded++
				messageIDs[l["push_message_id"]] = true
				if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["push_publish_time"])); err != nil {
					t.Errorf("log line without the push's publish time: %v", l)
				}
				if l["entry"] != "push" || l["caller"] != "token" || l["push_subscription"] != sub || l["status"] != float64(200) {
					t.Errorf("log line %v", l)
				}
			}
			if forwarded != n || len(messageIDs) != n {
				t.Errorf("logged %d forwarded pushes with %d distinct message ids, want %d", forwarded, len(messageIDs), n)
			}
		})
	}
}
