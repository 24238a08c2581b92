// Package replay reads Gwook's dead-letter subscription and sends each event
// through the pipeline again, for operators after an outage. Delivered
// events (and those Svix already has) are acked; everything else stays on
// the subscription for the next run.
package replay

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"golang.org/x/time/rate"

	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
)

// Options control one replay.
type Options struct {
	// Subscription is the dead-letter subscription: an ID in the client's
	// project, or projects/P/subscriptions/S.
	Subscription string
	// Limit stops after this many messages; 0 means no limit.
	Limit int
	// DryRun prints what would be sent, sends nothing and acks nothing.
	DryRun bool
	// IncludeInvalid replays invalid_event messages too; otherwise they are
	// left on the subscription.
	IncludeInvalid bool
	// Concurrency is how many events are sent at once.
	Concurrency int
	// Rate caps events sent per second; 0 means no cap.
	Rate float64
	// Idle is how long the subscription must stay empty to count as drained.
	Idle time.Duration
	// Out receives dry-run lines.
	Out io.Writer
	// Progress, when set, receives a live status line (a terminal).
	Progress io.Writer
}

// Summary counts what a replay did, by outcome.
type Summary struct {
	// Counts maps a pipeline outcome, "skipped_invalid" or "would_send"
	// (dry run) to how many messages ended so.
	Counts  map[string]int
	Pulled  int
	Elapsed time.Duration
}

// Failed is how many messages were sent and failed again.
func (s Summary) Failed() int {
	n := 0
	for outcome, c := range s.Counts {
		if !settled(outcome) && outcome != countSkipped && outcome != countWouldSend {
			n += c
		}
	}
	return n
}

// String is the summary an operator reads at the end.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay: %d messages in %s", s.Pulled, s.Elapsed.Round(time.Millisecond))
	if secs := s.Elapsed.Seconds(); secs > 0 {
		fmt.Fprintf(&b, " (%.1f/s)", float64(s.Pulled)/secs)
	}
	for _, outcome := range slices.Sorted(maps.Keys(s.Counts)) {
		fmt.Fprintf(&b, "\n  %-18s %d", outcome, s.Counts[outcome])
	}
	fmt.Fprintf(&b, "\n  %-18s %d", "failed", s.Failed())
	return b.String()
}

const (
	countSkipped   = "skipped_invalid"
	countWouldSend = "would_send"
	// pullBatch is how many messages one pull asks for.
	pullBatch = 100
	// emptyPullWait is the pause after a pull that brought nothing new.
	emptyPullWait = 250 * time.Millisecond
	// lease is how long a pulled message stays ours: long enough to send it
	// with every retry, and to hold the ones left for the next run.
	lease = 60 * time.Second
	// giveBackTimeout bounds returning held messages at the end, which
	// happens even after an interrupt.
	giveBackTimeout = 10 * time.Second
)

// settled reports whether outcome means the message can be acked: Svix has
// the event, or it was dropped on purpose.
func settled(outcome string) bool {
	switch pipeline.Outcome(outcome) {
	case pipeline.Forwarded, pipeline.Duplicate, pipeline.Filtered:
		return true
	}
	return false
}

// Run replays opts.Subscription through p until the subscription is drained
// (no new message for opts.Idle), opts.Limit messages were taken, or ctx is
// done. Messages not acked are returned to the subscription at the end.
func Run(ctx context.Context, client *pubsub.Client, p *pipeline.Pipeline, opts Options) (Summary, error) {
	r := &run{
		client: client.SubscriptionAdminClient, pipeline: p, opts: opts,
		sub:    subscriptionName(client.Project(), opts.Subscription),
		counts: map[string]int{}, held: map[string]string{}, seen: map[string]bool{},
		sem: make(chan struct{}, max(opts.Concurrency, 1)),
	}
	if opts.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	started := time.Now()
	stopProgress := r.showProgress(started)
	err := r.pullUntilDrained(ctx)
	r.workers.Wait()
	stopProgress()
	r.giveBack(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	return Summary{Counts: maps.Clone(r.counts), Pulled: len(r.seen), Elapsed: time.Since(started)}, err
}

type run struct {
	client   *vkit.SubscriptionAdminClient
	pipeline *pipeline.Pipeline
	opts     Options
	sub      string
	limiter  *rate.Limiter
	sem      chan struct{}
	workers  sync.WaitGroup

	mu     sync.Mutex
	counts map[string]int
	held   map[string]string // message ID -> ack ID, returned at the end
	seen   map[string]bool   // message IDs taken in this run
}

// pullUntilDrained pulls and dispatches messages until the subscription has
// been empty for opts.Idle, the limit is reached, or ctx is done.
func (r *run) pullUntilDrained(ctx context.Context) error {
	lastNew := time.Now()
	for ctx.Err() == nil && !r.limitReached() && time.Since(lastNew) < r.opts.Idle {
		resp, err := r.client.Pull(ctx, &pubsubpb.PullRequest{
			Subscription: r.sub,
			MaxMessages:  pullBatch,
			// A pull that waits for messages and is then cancelled can
			// strand messages until their ack deadline; asking for an
			// immediate answer and polling keeps every message in reach.
			ReturnImmediately: true, //lint:ignore SA1019 see above
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pulling from %s: %w", r.sub, err)
		}
		received := resp.GetReceivedMessages()
		if len(received) > 0 {
			r.extendLease(ctx, received)
		}
		fresh := 0
		for _, rm := range received {
			if r.take(ctx, rm) {
				fresh++
			}
		}
		if fresh > 0 {
			lastNew = time.Now()
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(emptyPullWait):
		}
	}
	return nil
}

func (r *run) limitReached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts.Limit > 0 && len(r.seen) >= r.opts.Limit
}

// take handles one received message and reports whether it was new to this
// run. Messages already seen, over the limit, skipped or dry-run are held
// and returned at the end, so the run never loops on them.
func (r *run) take(ctx context.Context, rm *pubsubpb.ReceivedMessage) bool {
	msg := rm.GetMessage()
	id := msg.GetMessageId()
	r.mu.Lock()
	if r.seen[id] || (r.opts.Limit > 0 && len(r.seen) >= r.opts.Limit) {
		r.held[id] = rm.GetAckId()
		r.mu.Unlock()
		return false
	}
	r.seen[id] = true
	r.mu.Unlock()

	reason := msg.GetAttributes()[deadletter.AttrReason]
	switch {
	case reason == string(deadletter.ReasonInvalidEvent) && !r.opts.IncludeInvalid:
		r.hold(id, rm.GetAckId(), countSkipped)
		return true
	case r.opts.DryRun:
		r.printDryRun(msg)
		r.hold(id, rm.GetAckId(), countWouldSend)
		return true
	}
	r.sem <- struct{}{}
	r.workers.Go(func() {
		defer func() { <-r.sem }()
		r.send(ctx, rm)
	})
	return true
}

// send takes one message through the pipeline and acks it when settled.
func (r *run) send(ctx context.Context, rm *pubsubpb.ReceivedMessage) {
	msg := rm.GetMessage()
	if r.limiter != nil {
		if err := r.limiter.Wait(ctx); err != nil {
			r.hold(msg.GetMessageId(), rm.GetAckId(), "interrupted")
			return
		}
	}
	ev, err := event.Decode(msg.GetData())
	m := ingest.Message{Event: ev, Err: err, Body: msg.GetData(), Delivery: ingest.Delivery{
		Entry: ingest.EntryReplay, Subscription: r.sub, MessageID: msg.GetMessageId(), Attributes: msg.GetAttributes(),
	}}
	outcome := string(r.pipeline.Process(ctx, &m).Outcome)
	if !settled(outcome) {
		r.hold(msg.GetMessageId(), rm.GetAckId(), outcome)
		return
	}
	if err := r.client.Acknowledge(context.WithoutCancel(ctx), &pubsubpb.AcknowledgeRequest{
		Subscription: r.sub, AckIds: []string{rm.GetAckId()},
	}); err != nil {
		// Svix has the event; a second replay gets 409 and acks it then.
		outcome = "ack_failed"
	}
	r.count(outcome)
}

func (r *run) hold(id, ackID, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held[id] = ackID
	r.counts[outcome]++
}

func (r *run) count(outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[outcome]++
}

// extendLease keeps pulled messages ours while they are sent or held.
func (r *run) extendLease(ctx context.Context, received []*pubsubpb.ReceivedMessage) {
	ids := make([]string, len(received))
	for i, rm := range received {
		ids[i] = rm.GetAckId()
	}
	_ = r.client.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: r.sub, AckIds: ids, AckDeadlineSeconds: int32(lease / time.Second),
	})
}

// giveBack returns every held message to the subscription at once, for the
// next run, even when ctx was cancelled.
func (r *run) giveBack(ctx context.Context) {
	r.mu.Lock()
	ids := slices.Collect(maps.Values(r.held))
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), giveBackTimeout)
	defer cancel()
	for chunk := range slices.Chunk(ids, 1000) {
		_ = r.client.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
			Subscription: r.sub, AckIds: chunk, AckDeadlineSeconds: 0,
		})
	}
}

func (r *run) printDryRun(msg *pubsubpb.PubsubMessage) {
	if r.opts.Out == nil {
		return
	}
	a := msg.GetAttributes()
	fmt.Fprintf(r.opts.Out, "would send %s (%s) to application %s: dead-lettered as %s after %s attempts (svix status %s) at %s\n",
		orDash(a[deadletter.AttrEventID]), orDash(a[deadletter.AttrEventType]), orDash(a[deadletter.AttrApplication]),
		orDash(a[deadletter.AttrReason]), orDash(a[deadletter.AttrAttempts]), orDash(a[deadletter.AttrSvixStatus]),
		orDash(a[deadletter.AttrFailedAt]))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// showProgress writes a status line to opts.Progress twice a second until
// the returned function is called.
func (r *run) showProgress(started time.Time) (stop func()) {
	if r.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(r.opts.Progress)
				return
			case <-tick.C:
				r.mu.Lock()
				line := progressLine(r.counts, len(r.seen), time.Since(started))
				r.mu.Unlock()
				fmt.Fprintf(r.opts.Progress, "\r\033[K%s", line)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func progressLine(counts map[string]int, pulled int, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay: %d pulled", pulled)
	for _, outcome := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, ", %d %s", counts[outcome], outcome)
	}
	if secs := elapsed.Seconds(); secs > 0 {
		fmt.Fprintf(&b, " | %.1f/s", float64(pulled)/secs)
	}
	return b.String()
}

// subscriptionName returns the full name of sub, given as an ID in project
// or as projects/P/subscriptions/S.
func subscriptionName(project, sub string) string {
	if strings.HasPrefix(sub, "projects/") {
		return sub
	}
	return "projects/" + project + "/subscriptions/" + sub
}
