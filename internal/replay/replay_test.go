package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/replay"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// runTimeout bounds one replay.Run.
const runTimeout = 60 * time.Second

// setup is a dead-letter topic with its pull subscription on the Pub/Sub
// emulator, and the Svix-compatible server the pipeline sends to.
type setup struct {
	emu    *pubsubemu.Emulator
	topic  string
	sub    string
	svix   *svixserver.Server
	client *pubsub.Client
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	emu := pubsubemu.FromEnv(t)
	s := &setup{emu: emu, svix: svixserver.New(t)}
	s.topic = emu.CreateTopic(t, emu.UniqueID(t, "dead-letters"))
	s.sub = emu.CreatePullSubscription(t, emu.UniqueID(t, "replay"), s.topic, 10*time.Second)
	s.client = emu.NewClient(t)
	return s
}

// pipeline builds the pipeline the replay command builds, from the
// environment env adds to the Svix server's settings.
func (s *setup) pipeline(t *testing.T, env map[string]string) *pipeline.Pipeline {
	t.Helper()
	vars := map[string]string{
		"SVIX_AUTH_TOKEN":             "sk_test_replay",
		"SVIX_SERVER_URL":             s.svix.URL(),
		"SVIX_RETRY_MAX_ATTEMPTS":     "2",
		"SVIX_RETRY_INITIAL_INTERVAL": "1ms",
		"SVIX_RETRY_MAX_INTERVAL":     "5ms",
		"DEDUP_TTL":                   "0",
		"DATA_DIR":                    t.TempDir(),
	}
	maps.Copy(vars, env)
	cfg, err := config.LoadReplay(context.Background(), envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.NewPipeline(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a.Pipeline()
}

// run replays the subscription through p and returns the summary and
// what the run wrote to Out.
func (s *setup) run(t *testing.T, p *pipeline.Pipeline, opts replay.Options) (replay.Summary, string) {
	t.Helper()
	opts.Subscription = s.sub
	opts.Concurrency = max(opts.Concurrency, 1)
	if opts.Idle == 0 {
		opts.Idle = time.Second
	}
	var out bytes.Buffer
	opts.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	sum, err := replay.Run(ctx, s.client, p, opts)
	if err != nil {
		t.Fatalf("replay.Run: %v\n%s", err, out.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("replay.Run did not finish within %v", runTimeout)
	}
	return sum, out.String()
}

// left returns the IDs of the messages the subscription holds, and gives
// them back.
func (s *setup) left(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	var ackIDs []string
	for {
		msgs := s.emu.Pull(t, s.sub, 100)
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			ids[m.MessageID] = true
			ackIDs = append(ackIDs, m.AckID)
		}
	}
	s.emu.Nack(t, s.sub, ackIDs...)
	return ids
}

// event returns an event with id and type for application user.
func event(id, typ, user string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"source":"replay-test","project":"p","user_id":%q,"time":"2026-01-02T15:04:05Z","data":{}}`,
		id, typ, user)
}

// deadLettered are the attributes Gwook gives an event it dead-lettered.
func deadLettered(reason, id, typ string) map[string]string {
	return map[string]string{"reason": reason, "event_id": id, "event_type": typ, "attempts": "3", "svix_status": "503"}
}

// TestDryRunSaysWhatARealRunDoes puts one message of each kind on the
// dead-letter subscription, and checks that a dry run, with the type
// filter a real run applies, says per message what the real run then does,
// and that the real run does exactly that.
func TestDryRunSaysWhatARealRunDoes(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	tag := strings.ReplaceAll(s.emu.UniqueID(t, "evt"), "-", "_")
	sendID, filteredID, invalidID, undeliverableID := tag+"_send", tag+"_filtered", tag+"_bad_user", tag+"_undeliverable"
	s.emu.Publish(t, s.topic, event(sendID, "user.signed_up", "usr_1"), deadLettered("unavailable", sendID, "user.signed_up"))
	s.emu.Publish(t, s.topic, event(filteredID, "audit.read", "usr_1"), deadLettered("rate_limited", filteredID, "audit.read"))
	skippedMsg := s.emu.Publish(t, s.topic, []byte("not json"), map[string]string{"reason": "invalid_event"})
	// Valid JSON whose user_id is no Svix application UID: invalid only
	// once validated, so a real run sends it to the pipeline and fails.
	invalidMsg := s.emu.Publish(t, s.topic, event(invalidID, "user.signed_up", "not an app id!"), deadLettered("unavailable", invalidID, "user.signed_up"))
	// What a push subscription's dead-letter policy forwards: the event
	// as published, with Pub/Sub's attributes only.
	s.emu.Publish(t, s.topic, event(undeliverableID, "user.signed_up", "usr_2"), map[string]string{
		"CloudPubSubDeadLetterSourceDeliveryCount": "10",
		"CloudPubSubDeadLetterSourceSubscription":  "gwook-push",
	})
	p := s.pipeline(t, map[string]string{"FILTER_EXCLUDE_TYPES": "audit.*"})

	dry, out := s.run(t, p, replay.Options{DryRun: true})
	want := map[string]int{"would_send": 2, "would_filter": 1, "would_fail_invalid": 1, "skipped_invalid": 1}
	if !maps.Equal(dry.Counts, want) || dry.Pulled != 5 || dry.Failed() != 0 {
		t.Fatalf("dry run: counts %v, pulled %d, failed %d; want %v, 5, 0\n%s", dry.Counts, dry.Pulled, dry.Failed(), want, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, want := range []string{
		"would send " + sendID + " (user.signed_up) to application usr_1: dead-lettered as unavailable after 3 attempts (svix status 503)",
		"would drop " + filteredID + " (audit.read) as filtered",
		"would skip - (-) as invalid and leave it: dead-lettered as invalid_event",
		"would fail " + invalidID + " (user.signed_up) as invalid and leave it (event failed validation: user_id: ",
		"would send " + undeliverableID + " (user.signed_up) to application usr_2: dead-lettered by subscription gwook-push after 10 deliveries",
	} {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("dry run printed %d lines starting %q, want 1:\n%s", n, want, out)
		}
	}
	if len(lines) != 5 {
		t.Errorf("dry run printed %d lines for 5 messages:\n%s", len(lines), out)
	}
	if n := s.svix.Attempts(); n != 0 {
		t.Errorf("the dry run made %d calls to Svix", n)
	}
	if left := s.left(t); len(left) != 5 {
		t.Fatalf("after the dry run the subscription holds %d messages, want all 5", len(left))
	}

	real, _ := s.run(t, p, replay.Options{})
	want = map[string]int{"forwarded": 2, "filtered": 1, "invalid": 1, "skipped_invalid": 1}
	if !maps.Equal(real.Counts, want) || real.Pulled != 5 || real.Failed() != 1 {
		t.Fatalf("real run: counts %v, pulled %d, failed %d; want %v, 5, 1", real.Counts, real.Pulled, real.Failed(), want)
	}
	for _, id := range []string{sendID, undeliverableID} {
		if n := len(s.svix.MessagesFor(id)); n != 1 {
			t.Errorf("Svix has %d messages for %s, want 1", n, id)
		}
	}
	if n := s.svix.Attempts(); n != 2 {
		t.Errorf("the real run made %d calls to Svix, want 2 (one per event sent)", n)
	}
	if left := s.left(t); !maps.Equal(left, map[string]bool{skippedMsg: true, invalidMsg: true}) {
		t.Errorf("after the real run the subscription holds %v, want the skipped %s and the invalid %s", left, skippedMsg, invalidMsg)
	}

	// With --include-invalid the skipped message is judged like any other.
	dry, out = s.run(t, p, replay.Options{DryRun: true, IncludeInvalid: true})
	if want := map[string]int{"would_fail_invalid": 2}; !maps.Equal(dry.Counts, want) {
		t.Errorf("dry run with IncludeInvalid: counts %v, want %v\n%s", dry.Counts, want, out)
	}
}

// TestLeaseOutlastsSlowSvix replays while Svix answers each message more
// slowly than the lease, one message at a time, so that every message is
// held, in flight or waiting, several leases long, while another consumer
// pulls from the same subscription: it must get nothing during the run,
// and each message must reach Svix once, be acked, and be counted once.
func TestLeaseOutlastsSlowSvix(t *testing.T) {
	t.Parallel()
	const n = 3
	const lease = 2 * time.Second
	s := newSetup(t)
	tag := strings.ReplaceAll(s.emu.UniqueID(t, "evt"), "-", "_")
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s_%d", tag, i)
		ids = append(ids, id)
		s.emu.Publish(t, s.topic, event(id, "user.signed_up", "usr_1"), deadLettered("unavailable", id, "user.signed_up"))
	}
	s.svix.SetDefault(svixserver.Response{Delay: lease + time.Second})
	p := s.pipeline(t, nil)

	type result struct {
		sum replay.Summary
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	go func() {
		sum, err := replay.Run(ctx, s.client, p, replay.Options{Subscription: s.sub, Lease: lease, Concurrency: 1, Idle: time.Second})
		done <- result{sum, err}
	}()
	// The other consumer: whatever it gets, the run's lease had run out.
	var res result
	stolen := map[string]bool{}
	for running := true; running; {
		select {
		case res = <-done:
			running = false
		case <-time.After(100 * time.Millisecond):
			if s.svix.Attempts() == 0 {
				continue // the run has not pulled everything yet
			}
			for _, m := range s.emu.Pull(t, s.sub, 10) {
				stolen[m.MessageID] = true
				s.emu.Nack(t, s.sub, m.AckID)
			}
		}
	}
	if res.err != nil || ctx.Err() != nil {
		t.Fatalf("replay.Run: %v (context: %v)", res.err, ctx.Err())
	}
	if len(stolen) > 0 {
		t.Errorf("another consumer received %d messages during the run: their lease ran out", len(stolen))
	}
	sum := res.sum
	if want := map[string]int{"forwarded": n}; !maps.Equal(sum.Counts, want) || sum.Pulled != n || sum.Failed() != 0 {
		t.Fatalf("counts %v, pulled %d, failed %d; want %v, %d, 0", sum.Counts, sum.Pulled, sum.Failed(), want, n)
	}
	if got := s.svix.Attempts(); got != n {
		t.Errorf("Svix saw %d attempts for %d messages: a message was sent twice", got, n)
	}
	for _, id := range ids {
		if got := len(s.svix.MessagesFor(id)); got != 1 {
			t.Errorf("Svix has %d messages for %s, want 1", got, id)
		}
	}
	if left := s.left(t); len(left) != 0 {
		t.Errorf("after the run the subscription still holds %d messages", len(left))
	}
}

// TestUnknownApplicationsDropped replays with UNKNOWN_APPLICATION=drop: an
// event of a user with an application in the database is sent, one of a
// user without is dropped and acked, as the server would answer them.
func TestUnknownApplicationsDropped(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	dataDir := databaseWith(t, "usr_known", nil)
	tag := strings.ReplaceAll(s.emu.UniqueID(t, "evt"), "-", "_")
	knownID, unknownID := tag+"_known", tag+"_unknown"
	s.emu.Publish(t, s.topic, event(knownID, "user.signed_up", "usr_known"), deadLettered("unavailable", knownID, "user.signed_up"))
	s.emu.Publish(t, s.topic, event(unknownID, "user.signed_up", "usr_unknown"), deadLettered("unavailable", unknownID, "user.signed_up"))
	p := s.pipeline(t, map[string]string{"UNKNOWN_APPLICATION": "drop", "DATA_DIR": dataDir})

	dry, out := s.run(t, p, replay.Options{DryRun: true})
	if want := map[string]int{"would_send": 1, "would_filter": 1}; !maps.Equal(dry.Counts, want) ||
		!strings.Contains(out, "would drop "+unknownID+" (user.signed_up): no application usr_unknown (UNKNOWN_APPLICATION=drop)") {
		t.Fatalf("dry run: counts %v, want %v\n%s", dry.Counts, want, out)
	}
	real, _ := s.run(t, p, replay.Options{})
	if want := map[string]int{"forwarded": 1, "no_application": 1}; !maps.Equal(real.Counts, want) || real.Failed() != 0 {
		t.Fatalf("real run: counts %v, failed %d; want %v, 0", real.Counts, real.Failed(), want)
	}
	if n := len(s.svix.MessagesFor(unknownID)); n != 0 {
		t.Errorf("Svix has %d messages for the event of a user without an application", n)
	}
	if left := s.left(t); len(left) != 0 {
		t.Errorf("the subscription still holds %v", left)
	}
}

// TestApplicationFiltersApplied checks that a replay drops what the
// application's filter in the database drops, as the server would, and
// that the dry run names the rule.
func TestApplicationFiltersApplied(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	dataDir := databaseWith(t, "usr_filtered", &store.Filter{Expression: `event.type != "user.signed_up"`})
	tag := strings.ReplaceAll(s.emu.UniqueID(t, "evt"), "-", "_")
	droppedID, sentID := tag+"_dropped", tag+"_sent"
	s.emu.Publish(t, s.topic, event(droppedID, "user.signed_up", "usr_filtered"), deadLettered("unavailable", droppedID, "user.signed_up"))
	s.emu.Publish(t, s.topic, event(sentID, "user.deleted", "usr_filtered"), deadLettered("unavailable", sentID, "user.deleted"))
	p := s.pipeline(t, map[string]string{"DATA_DIR": dataDir})

	dry, out := s.run(t, p, replay.Options{DryRun: true})
	if want := map[string]int{"would_send": 1, "would_filter": 1}; !maps.Equal(dry.Counts, want) ||
		!strings.Contains(out, "would drop "+droppedID+" (user.signed_up) as filtered (expression: expression is false)") {
		t.Fatalf("dry run: counts %v, want %v\n%s", dry.Counts, want, out)
	}
	real, _ := s.run(t, p, replay.Options{})
	if want := map[string]int{"forwarded": 1, "filtered": 1}; !maps.Equal(real.Counts, want) || real.Failed() != 0 {
		t.Fatalf("real run: counts %v, failed %d; want %v, 0", real.Counts, real.Failed(), want)
	}
	if n := len(s.svix.MessagesFor(droppedID)); n != 0 {
		t.Errorf("Svix has %d messages for the event the filter drops", n)
	}
}

// databaseWith makes a SQLite database holding the application appID, with
// filter f when it is not nil, and returns its data directory.
func databaseWith(t *testing.T, appID string, f *store.Filter) string {
	t.Helper()
	dataDir := t.TempDir()
	st, err := store.Open(context.Background(), "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateApplication(context.Background(), store.Application{ID: appID, Name: appID}); err != nil {
		t.Fatal(err)
	}
	if f != nil {
		f.ApplicationID = appID
		if _, _, err := st.PutFilter(context.Background(), *f); err != nil {
			t.Fatal(err)
		}
	}
	return dataDir
}
