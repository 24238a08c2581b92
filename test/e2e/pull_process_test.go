package e2e

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// pullSetup is a subscription with events on it, a slow Svix-compatible
// server, and the environment of gwook processes that consume it.
type pullSetup struct {
	*statsSetup
	events map[string][]byte
}

// newPullSetup publishes n events to a fresh topic whose subscription the
// gwook processes pull, each holding at most outstanding messages, and
// makes Svix answer after delay, so that messages are held when a
// process is stopped.
func newPullSetup(t *testing.T, n, outstanding int, delay time.Duration) *pullSetup {
	t.Helper()
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "pull-events"))
	sub := emu.CreatePullSubscription(t, emu.UniqueID(t, "gwook-pull"), topic, 10*time.Second)
	svx := svixserver.New(t)
	svx.SetDefault(svixserver.Response{Delay: delay})
	s := &pullSetup{statsSetup: &statsSetup{svix: svx, env: []string{
		"SVIX_AUTH_TOKEN=sk_pull_test.eu",
		"SVIX_SERVER_URL=" + svx.URL(),
		"AUTH_USERNAME=producer",
		"AUTH_PASSWORD=pull-test-pass",
		"PUBSUB_PROJECT_ID=" + emu.Project,
		"PUBSUB_SUBSCRIPTIONS=" + sub,
		"PULL_MAX_OUTSTANDING_MESSAGES=" + strconv.Itoa(outstanding),
		"SVIX_RETRY_MAX_ELAPSED=5s",
		// The events share types, projects and sources with other tests'
		// in the same Redis: suppression would drop them as duplicates.
		"DEDUP_TTL=0",
		"METRICS_PORT=0",
		"LOG_FORMAT=json",
		"DATA_DIR=" + t.TempDir(),
	}}, events: uniqueEvents(t, n)}
	for _, body := range s.events {
		emu.Publish(t, topic, body, nil)
	}
	return s
}

// checkEachOnce waits until every event is at Svix and fails t when one is
// there twice.
func (s *pullSetup) checkEachOnce(t *testing.T) {
	t.Helper()
	s.svix.WaitForMessages(t, len(s.events), 90*time.Second)
	for id := range s.events {
		if n := len(s.svix.MessagesFor(id)); n != 1 {
			t.Errorf("event %s: %d messages at Svix, want 1", id, n)
		}
	}
	if n := len(s.svix.Messages()); n != len(s.events) {
		t.Errorf("%d messages at Svix for %d events", n, len(s.events))
	}
}

// pulledFromLog returns the "pulled message" lines of a process's log.
func pulledFromLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(string(b), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["msg"] == "pulled message" {
			out = append(out, line)
		}
	}
	return out
}

// TestPullSurvivesSIGKILL kills a gwook process with SIGKILL while it holds
// pulled messages, starts another, and checks that every event reaches
// Svix exactly once: the messages held were never acked and are
// redelivered, and Svix's idempotency key (the event id) keeps those that
// had reached Svix before the kill to one message.
func TestPullSurvivesSIGKILL(t *testing.T) {
	const n = 200
	s := newPullSetup(t, n, 20, 20*time.Millisecond)
	first := s.start(t, "gwook-pull-1")
	deadline := time.Now().Add(waitTimeout)
	for len(s.svix.Messages()) < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages at Svix within %v\n%s", len(s.svix.Messages()), waitTimeout, first.p.LogTail(20))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.p.Done()
	before, attempts := len(s.svix.Messages()), s.svix.Attempts()
	if before >= n {
		t.Fatalf("all %d events at Svix before the kill: nothing was held", n)
	}
	s.start(t, "gwook-pull-2")
	s.checkEachOnce(t)
	t.Logf("%d of %d events at Svix when the first process was killed (%d requests); %d requests in all",
		before, n, attempts, s.svix.Attempts())
}

// TestPullShutdown sends SIGTERM to a gwook process while it holds pulled
// messages: it stops pulling, finishes the messages held, acks each one
// Svix took, and exits 0; another process then delivers the rest, each
// event once.
func TestPullShutdown(t *testing.T) {
	const n = 60
	s := newPullSetup(t, n, 10, 200*time.Millisecond)
	first := s.start(t, "gwook-pull-1")
	deadline := time.Now().Add(waitTimeout)
	for len(s.svix.Messages()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages at Svix within %v\n%s", len(s.svix.Messages()), waitTimeout, first.p.LogTail(20))
		}
		time.Sleep(5 * time.Millisecond)
	}
	started := time.Now()
	if err := first.p.Stop(10 * time.Second); err != nil {
		t.Fatalf("gwook after SIGTERM: %v\n%s", err, first.p.LogTail(20))
	}
	took := time.Since(started)
	atSvix := len(s.svix.Messages())
	lines := pulledFromLog(t, first.p.Log)
	acked := 0
	for _, l := range lines {
		if l["acked"] == true && l["outcome"] == "forwarded" {
			acked++
		} else {
			t.Errorf("a message answered otherwise than forwarded and acked: %v", l)
		}
	}
	if acked != atSvix || atSvix >= n {
		t.Errorf("%d messages acked, %d at Svix, of %d: want every message Svix took acked, and some left", acked, atSvix, n)
	}
	if !strings.Contains(first.p.LogTail(40), "streaming pull stopped") {
		t.Errorf("no \"streaming pull stopped\" line:\n%s", first.p.LogTail(20))
	}
	t.Logf("stopped in %v with %d of %d events at Svix, each acked", took.Round(time.Millisecond), atSvix, n)

	s.start(t, "gwook-pull-2")
	s.checkEachOnce(t)
}
