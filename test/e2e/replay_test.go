package e2e

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/svixserver"
)

// replayTimeout bounds one run of the replay command.
const replayTimeout = 60 * time.Second

// replayResult is one run of `gwook replay`.
type replayResult struct {
	args           []string
	code           int
	stdout, stderr string
	elapsed        time.Duration
	// counts is the summary: "messages" (pulled), each outcome, "failed".
	counts map[string]int
}

var (
	summaryHead = regexp.MustCompile(`(?m)^replay: (\d+) messages in `)
	summaryLine = regexp.MustCompile(`(?m)^  (\S+) +(\d+)$`)
)

// replay runs the built gwook command's replay against the dead-letter
// setup's Svix server and emulator, with only the environment given here:
// two Svix attempts within 2 s, overridden by env.
func (s *deadLetterSetup) replay(t *testing.T, env map[string]string, args ...string) replayResult {
	t.Helper()
	vars := map[string]string{
		"SVIX_AUTH_TOKEN":             gwooktest.SvixToken,
		"SVIX_SERVER_URL":             s.g.Svix.URL(),
		"PUBSUB_PROJECT_ID":           s.emu.Project,
		"PUBSUB_EMULATOR_HOST":        s.emu.Host,
		"SVIX_RETRY_MAX_ATTEMPTS":     "2",
		"SVIX_RETRY_MAX_ELAPSED":      "2s",
		"SVIX_RETRY_INITIAL_INTERVAL": "1ms",
		"SVIX_RETRY_MAX_INTERVAL":     "5ms",
		"DATA_DIR":                    t.TempDir(),
	}
	maps.Copy(vars, env)
	ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gwookBin, append([]string{"replay"}, args...)...)
	cmd.Env = make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		cmd.Env = append(cmd.Env, k+"="+vars[k])
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := replayResult{args: args, elapsed: time.Since(start), stdout: stdout.String(), stderr: stderr.String(), counts: map[string]int{}}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		r.code = exitErr.ExitCode()
	default:
		t.Fatalf("gwook replay %v: %v (after %v)\nstdout:\n%s\nstderr:\n%s", args, err, r.elapsed, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, gwooktest.SvixToken) {
		t.Errorf("gwook replay %v printed the Svix token", args)
	}
	head := summaryHead.FindStringSubmatch(r.stdout)
	if head == nil {
		t.Fatalf("gwook replay %v exited %d without a summary\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	r.counts["messages"], _ = strconv.Atoi(head[1])
	for _, m := range summaryLine.FindAllStringSubmatch(r.stdout, -1) {
		r.counts[m[1]], _ = strconv.Atoi(m[2])
	}
	return r
}

// expect fails t unless the run exited with code and its summary has
// exactly the counts in want.
func (r replayResult) expect(t *testing.T, code int, want map[string]int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("gwook replay %v exited %d, want %d\nstdout:\n%s\nstderr:\n%s", r.args, r.code, code, r.stdout, r.stderr)
	}
	if !maps.Equal(r.counts, want) {
		t.Fatalf("gwook replay %v summary %v, want %v\nstdout:\n%s", r.args, r.counts, want, r.stdout)
	}
}

// TestNothingLostUnderRandomFailures pushes events while Svix fails at
// random, so that some exhaust their retries: each event must end at Svix
// or on the dead-letter topic, never both and never neither, and after a
// replay every event must be at Svix exactly once.
func TestNothingLostUnderRandomFailures(t *testing.T) {
	t.Parallel()
	const n = 40
	s := startWithDeadLetters(t, map[string]string{"SVIX_RETRY_MAX_ATTEMPTS": "2"})
	// Seed 7 draws runs of failures, so that several events fail both of
	// their attempts whatever order the pushes arrive in.
	s.g.Svix.FailRandomly(7, svixserver.Fault{Rate: 0.3, Response: svixserver.Response{Status: http.StatusInternalServerError}})
	events := uniqueEvents(t, n)
	for _, body := range events {
		s.emu.Publish(t, s.srcTopic, body, nil)
	}

	deadLettered := func() map[string]bool {
		ids := map[string]bool{}
		for _, l := range s.requestLines() {
			if l["dead_lettered"] == true {
				ids[l["event_id"].(string)] = true
			}
		}
		return ids
	}
	var dead map[string]bool
	for deadline := time.Now().Add(waitTimeout); ; {
		dead = deadLettered()
		settled := 0
		for id := range events {
			if dead[id] || len(s.g.Svix.MessagesFor(id)) > 0 {
				settled++
			}
		}
		if settled == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d events are at Svix or dead-lettered", waitTimeout, settled, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(dead) == 0 {
		t.Fatal("no event exhausted its retries; the test proves nothing about dead letters")
	}
	for id := range events {
		at := len(s.g.Svix.MessagesFor(id))
		if at > 1 || (at == 1) == dead[id] {
			t.Errorf("event %s: %d messages at Svix, dead-lettered %v; want exactly one of the two", id, at, dead[id])
		}
	}
	onTopic := map[string]bool{}
	for _, m := range s.waitDeadLetters(t, len(dead)) {
		id := m.Attributes["event_id"]
		if onTopic[id] || string(m.Data) != string(events[id]) || m.Attributes["reason"] != "unavailable" {
			t.Errorf("dead letter %s for event %q (reason %q): a repeat, or not the event", m.MessageID, id, m.Attributes["reason"])
		}
		onTopic[id] = true
	}
	if !maps.Equal(onTopic, dead) {
		t.Fatalf("the dead-letter topic holds %v, the request log says %v", slices.Sorted(maps.Keys(onTopic)), slices.Sorted(maps.Keys(dead)))
	}
	t.Logf("%d of %d events dead-lettered", len(dead), n)

	s.g.Svix.FailRandomly(0)
	r := s.replay(t, nil, "--subscription", s.dlqSub, "--idle", "2s")
	r.expect(t, 0, map[string]int{"messages": len(dead), "forwarded": len(dead), "failed": 0})
	for id, body := range events {
		msgs := s.g.Svix.MessagesFor(id)
		if len(msgs) != 1 || string(msgs[0].Payload) != string(body) {
			t.Errorf("event %s: %d messages at Svix after replay, want 1 with the event as payload", id, len(msgs))
		}
	}
	lines := s.requestLines()
	if len(lines) != n {
		t.Errorf("Gwook answered %d pushes for %d events: some were redelivered", len(lines), n)
	}
	for _, l := range lines {
		if l["status"] != float64(http.StatusOK) {
			t.Errorf("push answered %v, want 200: %v", l["status"], l)
		}
	}
	if left := s.peekDeadLetters(t); len(left) != 0 {
		t.Errorf("%d messages left on the dead-letter subscription after replay", len(left))
	}
}

// TestReplayLeavesInvalidEventsAndDryRunSendsNothing dead-letters an
// invalid push, checks that a replay skips it without looping and leaves it
// there, then that a dry run prints what it would send and acks nothing.
func TestReplayLeavesInvalidEventsAndDryRunSendsNothing(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	s := startWithDeadLetters(t, nil)

	invalidID := s.emu.Publish(t, s.srcTopic, []byte("not json"), nil)
	dl := s.waitDeadLetters(t, 1)[0]
	if string(dl.Data) != "not json" || dl.Attributes["reason"] != "invalid_event" ||
		dl.Attributes["source_message_id"] != invalidID || dl.Attributes["source_subscription"] != s.pushSub {
		t.Fatalf("dead letter %q with attributes %v, want the raw body, reason invalid_event and its source", dl.Data, dl.Attributes)
	}
	s.expectQuiet(t)
	if lines := s.requestLines(); len(lines) != 1 || lines[0]["status"] != float64(http.StatusOK) ||
		lines[0]["outcome"] != "invalid" || lines[0]["dead_lettered"] != true {
		t.Fatalf("request log %v, want one invalid push answered 200 once dead-lettered", lines)
	}

	r := s.replay(t, nil, "--subscription", s.dlqSub, "--idle", idle.String())
	r.expect(t, 0, map[string]int{"messages": 1, "skipped_invalid": 1, "failed": 0})
	if limit := idle + 5*time.Second; r.elapsed > limit {
		t.Errorf("replay with one skipped message took %v, want under %v: it loops", r.elapsed, limit)
	}
	if left := s.peekDeadLetters(t); len(left) != 1 || left[0].MessageID != dl.MessageID {
		t.Fatalf("after replay the dead-letter subscription holds %d messages, want the invalid one", len(left))
	}
	if n := s.g.Svix.Attempts(); n != 0 {
		t.Errorf("Svix saw %d attempts; an invalid event was sent", n)
	}

	s.g.Svix.SetDefault(svixserver.Response{Status: http.StatusInternalServerError})
	id, body := oneEvent(t)
	s.emu.Publish(t, s.srcTopic, body, nil)
	s.waitDeadLetters(t, 2)
	attempts := s.g.Svix.Attempts()

	dry := s.replay(t, nil, "--subscription", s.dlqSub, "--idle", idle.String(), "--dry-run")
	dry.expect(t, 0, map[string]int{"messages": 2, "would_send": 1, "skipped_invalid": 1, "failed": 0})
	if want := "would send " + id + " ("; !strings.Contains(dry.stdout, want) || !strings.Contains(dry.stdout, "dead-lettered as unavailable") {
		t.Errorf("dry-run output lacks %q ... dead-lettered as unavailable:\n%s", want, dry.stdout)
	}
	if n := s.g.Svix.Attempts(); n != attempts {
		t.Errorf("Svix saw %d attempts during the dry run", n-attempts)
	}
	if left := s.peekDeadLetters(t); len(left) != 2 {
		t.Errorf("after the dry run the dead-letter subscription holds %d messages, want 2", len(left))
	}
}

// TestReplayFailingAgainKeepsTheMessage replays while Svix still fails:
// the command must exit non-zero and leave the message for the next run.
func TestReplayFailingAgainKeepsTheMessage(t *testing.T) {
	t.Parallel()
	s := startWithDeadLetters(t, nil)
	s.g.Svix.SetDefault(svixserver.Response{Status: http.StatusInternalServerError})
	id, body := oneEvent(t)
	s.emu.Publish(t, s.srcTopic, body, nil)
	dl := s.waitDeadLetters(t, 1)[0]
	attempts := s.g.Svix.Attempts()

	// The subscription as an ID in PUBSUB_PROJECT_ID, as operators type it.
	subID := strings.TrimPrefix(s.dlqSub, "projects/"+s.emu.Project+"/subscriptions/")
	r := s.replay(t, nil, "--subscription", subID, "--idle", "2s")
	r.expect(t, 1, map[string]int{"messages": 1, "unavailable": 1, "failed": 1})
	if !strings.Contains(r.stderr, "failed again") {
		t.Errorf("stderr does not say events failed again:\n%s", r.stderr)
	}
	if n := s.g.Svix.Attempts() - attempts; n != 2 {
		t.Errorf("the replay made %d attempts at Svix, want SVIX_RETRY_MAX_ATTEMPTS=2", n)
	}
	if n := len(s.g.Svix.MessagesFor(id)); n != 0 {
		t.Errorf("Svix has %d messages for %s while failing", n, id)
	}
	left := s.peekDeadLetters(t)
	if len(left) != 1 || left[0].MessageID != dl.MessageID || string(left[0].Data) != string(body) ||
		!maps.Equal(left[0].Attributes, dl.Attributes) {
		t.Fatalf("after the failed replay the dead-letter subscription holds %d messages, want message %s unchanged", len(left), dl.MessageID)
	}
}

// TestReplayTakesProjectFromNames runs replay without PUBSUB_PROJECT_ID:
// the project must come from a full subscription name, or from a full
// DEAD_LETTER_TOPIC as the server takes it.
func TestReplayTakesProjectFromNames(t *testing.T) {
	t.Parallel()
	s := startWithDeadLetters(t, nil)
	subID := strings.TrimPrefix(s.dlqSub, "projects/"+s.emu.Project+"/subscriptions/")
	for _, tc := range []struct {
		name string
		env  map[string]string
		sub  string
	}{
		{"full subscription name", map[string]string{"PUBSUB_PROJECT_ID": ""}, s.dlqSub},
		{"full dead-letter topic name", map[string]string{"PUBSUB_PROJECT_ID": "", "DEAD_LETTER_TOPIC": s.dlqTopic}, subID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, body := oneEvent(t)
			s.emu.Publish(t, s.dlqTopic, body, map[string]string{"reason": "unavailable", "event_id": id})
			r := s.replay(t, tc.env, "--subscription", tc.sub, "--idle", "2s")
			r.expect(t, 0, map[string]int{"messages": 1, "forwarded": 1, "failed": 0})
			if n := len(s.g.Svix.MessagesFor(id)); n != 1 {
				t.Errorf("Svix has %d messages for %s after replay, want 1", n, id)
			}
		})
	}
}
