// Package replay reads Gwook's dead-letter subscription and sends each event
// through the pipeline again, for operators after an outage. Delivered
// events (and those Svix already has) are acked; everything else stays on
// the subscription for the next run. A dry run asks the pipeline what it
// would do with each event and says so, sending and acking nothing.
//
// It pulls synchronously and keeps each message leased (ModifyAckDeadline,
// renewed on a ticker) from the pull until it is acked or returned at the
// end, so a slow Svix never lets Pub/Sub hand a message out again during
// the run and the summary counts each message once.
package replay

import (
	"cmp"
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
	"github.com/gwook/gwook/internal/pipeline"
)

// Options control one replay.
type Options struct {
	// Subscription is the dead-letter subscription: an ID in the client's
	// project, or projects/P/subscriptions/S.
	Subscription string
	// Limit stops after this many messages; 0 means no limit.
	Limit int
	// DryRun says per message what a real run would do, sends nothing and
	// acks nothing.
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
	// Lease is the ack deadline the run keeps on every message it holds,
	// renewed every third of it until the message is acked or returned;
	// 0 means DefaultLease. Whole seconds, at least one.
	Lease time.Duration
	// Out receives the dry run's line per message.
	Out io.Writer
	// Progress, when set, receives a live status line (a terminal).
	Progress io.Writer
}

// DefaultLease is the ack deadline a run keeps on the messages it holds.
// It is renewed while the run lasts, so it only bounds how long a message
// stays out of reach after the run dies without returning it.
const DefaultLease = 60 * time.Second

// Summary counts what a replay did, by outcome.
type Summary struct {
	// Counts maps a pipeline outcome, "skipped_invalid", "ack_failed",
	// "interrupted", or a dry run's "would_send", "would_filter" or
	// "would_fail_invalid" to how many messages ended so.
	Counts  map[string]int
	Pulled  int
	Elapsed time.Duration
}

// Failed is how many messages were sent and failed again.
func (s Summary) Failed() int {
	n := 0
	for outcome, c := range s.Counts {
		if !settled(outcome) && outcome != countSkipped && !strings.HasPrefix(outcome, dryRunPrefix) {
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
	countSkipped = "skipped_invalid"
	// A dry run counts what a real run would do under these names.
	dryRunPrefix          = "would_"
	countWouldSend        = dryRunPrefix + "send"
	countWouldFilter      = dryRunPrefix + "filter"
	countWouldFailInvalid = dryRunPrefix + "fail_invalid"
	// pullBatch is how many messages one pull asks for.
	pullBatch = 100
	// emptyPullWait is the pause after a pull that brought nothing new.
	emptyPullWait = 250 * time.Millisecond
	// giveBackTimeout bounds returning held messages at the end, which
	// happens even after an interrupt.
	giveBackTimeout = 10 * time.Second
	// ackIDsPerRequest keeps acknowledge and modify requests well below
	// Pub/Sub's request size limit.
	ackIDsPerRequest = 1000
)

// settled reports whether outcome means the message can be acked: Svix has
// the event, or it was dropped on purpose.
func settled(outcome string) bool {
	switch pipeline.Outcome(outcome) {
	case pipeline.Forwarded, pipeline.Duplicate, pipeline.Filtered, pipeline.NoApplication:
		return true
	}
	return false
}

// Run replays opts.Subscription through p until the subscription is drained
// (no new message for opts.Idle), opts.Limit messages were taken, or ctx is
// done. Every message pulled stays leased to the run until it is acked or,
// at the end, returned to the subscription.
func Run(ctx context.Context, client *pubsub.Client, p *pipeline.Pipeline, opts Options) (Summary, error) {
	lease := DefaultLease
	if opts.Lease > 0 {
		lease = max(opts.Lease.Round(time.Second), time.Second)
	}
	r := &run{
		client: client.SubscriptionAdminClient, pipeline: p, opts: opts, lease: lease,
		sub:    subscriptionName(client.Project(), opts.Subscription),
		counts: map[string]int{}, seen: map[string]bool{}, acked: map[string]bool{}, leased: map[string][]string{},
		sem: make(chan struct{}, max(opts.Concurrency, 1)),
	}
	if opts.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	started := time.Now()
	stopProgress := r.showProgress(started)
	stopLeases := r.keepLeases(ctx)
	err := r.pullUntilDrained(ctx)
	r.workers.Wait()
	stopLeases()
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
	lease    time.Duration
	sub      string
	limiter  *rate.Limiter
	sem      chan struct{}
	workers  sync.WaitGroup

	mu     sync.Mutex
	counts map[string]int
	seen   map[string]bool // message IDs taken in this run
	acked  map[string]bool // message IDs settled and acked in this run
	// leased holds the ack IDs of every message the run holds, by message
	// ID (Pub/Sub may deliver one message twice): kept leased while the
	// run lasts, acked when the message settles, returned at the end.
	leased map[string][]string
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
		r.hold(ctx, received)
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

// hold makes the received messages the run's: their ack IDs join the
// leased ones and get the run's lease at once (until then the
// subscription's own ack deadline applies).
func (r *run) hold(ctx context.Context, received []*pubsubpb.ReceivedMessage) {
	if len(received) == 0 {
		return
	}
	ackIDs := make([]string, len(received))
	r.mu.Lock()
	for i, rm := range received {
		ackIDs[i] = rm.GetAckId()
		id := rm.GetMessage().GetMessageId()
		r.leased[id] = append(r.leased[id], rm.GetAckId())
	}
	r.mu.Unlock()
	r.extend(ctx, ackIDs)
}

// take handles one held message and reports whether it was new to this
// run. A message settled earlier in the run is acked again at once (Pub/Sub
// delivered it twice); any other message seen before, or over the limit,
// stays held and is returned at the end, so the run never loops on it.
func (r *run) take(ctx context.Context, rm *pubsubpb.ReceivedMessage) bool {
	msg := rm.GetMessage()
	id := msg.GetMessageId()
	r.mu.Lock()
	if r.acked[id] {
		ackIDs := r.leased[id]
		delete(r.leased, id)
		r.mu.Unlock()
		_ = r.acknowledge(ctx, ackIDs)
		return false
	}
	if r.seen[id] || (r.opts.Limit > 0 && len(r.seen) >= r.opts.Limit) {
		r.mu.Unlock()
		return false
	}
	r.seen[id] = true
	r.mu.Unlock()

	reason := msg.GetAttributes()[deadletter.AttrReason]
	switch {
	case reason == string(deadletter.ReasonInvalidEvent) && !r.opts.IncludeInvalid:
		r.count(countSkipped)
		if r.opts.DryRun {
			r.printf("would skip %s as invalid and leave it: %s; --include-invalid replays it\n", describe(msg, nil), origin(msg))
		}
		return true
	case r.opts.DryRun:
		r.dryRun(msg)
		return true
	}
	r.sem <- struct{}{}
	r.workers.Go(func() {
		defer func() { <-r.sem }()
		r.send(ctx, msg)
	})
	return true
}

// message is what the pipeline receives for msg.
func (r *run) message(msg *pubsubpb.PubsubMessage) *pipeline.Message {
	ev, err := event.Decode(msg.GetData())
	return &pipeline.Message{Event: ev, Err: err, Body: msg.GetData(), Delivery: pipeline.Delivery{
		Entry: pipeline.EntryReplay, Subscription: r.sub, MessageID: msg.GetMessageId(), Attributes: msg.GetAttributes(),
	}}
}

// send takes one message through the pipeline and acks it when settled;
// otherwise it stays leased until the end of the run.
func (r *run) send(ctx context.Context, msg *pubsubpb.PubsubMessage) {
	if r.limiter != nil {
		if err := r.limiter.Wait(ctx); err != nil {
			r.count("interrupted")
			return
		}
	}
	outcome := string(r.pipeline.Process(ctx, r.message(msg)).Outcome)
	if !settled(outcome) {
		r.count(outcome)
		return
	}
	r.mu.Lock()
	ackIDs := r.leased[msg.GetMessageId()]
	delete(r.leased, msg.GetMessageId())
	r.acked[msg.GetMessageId()] = true
	r.mu.Unlock()
	if err := r.acknowledge(context.WithoutCancel(ctx), ackIDs); err != nil {
		// Svix has the event; a second replay gets 409 and acks it then.
		outcome = "ack_failed"
	}
	r.count(outcome)
}

// dryRun says what a real run would do with msg, from the pipeline's own
// checks, and counts it.
func (r *run) dryRun(msg *pubsubpb.PubsubMessage) {
	m := r.message(msg)
	res, send := r.pipeline.Plan(m)
	switch {
	case send:
		r.count(countWouldSend)
		r.printf("would send %s to application %s: %s\n", describe(msg, m), res.AppID, origin(msg))
	case res.Outcome == pipeline.Filtered:
		r.count(countWouldFilter)
		r.printf("would drop %s as filtered (%s: %s) and ack it: %s\n", describe(msg, m), res.Filter.Rule, res.Filter.Reason, origin(msg))
	case res.Outcome == pipeline.NoApplication:
		r.count(countWouldFilter)
		r.printf("would drop %s: no application %s (UNKNOWN_APPLICATION=drop), and ack it: %s\n", describe(msg, m), res.AppID, origin(msg))
	default:
		r.count(countWouldFailInvalid)
		r.printf("would fail %s as invalid and leave it (%v): %s\n", describe(msg, m), res.Err, origin(msg))
	}
}

func (r *run) count(outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[outcome]++
}

func (r *run) printf(format string, args ...any) {
	if r.opts.Out != nil {
		fmt.Fprintf(r.opts.Out, format, args...)
	}
}

// keepLeases renews the lease of every message the run holds every third
// of the lease, until the returned function is called. A renewal that
// fails is tried again at the next tick, still well within the lease.
func (r *run) keepLeases(ctx context.Context) (stop func()) {
	return every(r.lease/3, func() {
		r.mu.Lock()
		var ackIDs []string
		for _, ids := range r.leased {
			ackIDs = append(ackIDs, ids...)
		}
		r.mu.Unlock()
		// Sends still finishing after an interrupt keep their leases too.
		r.extend(context.WithoutCancel(ctx), ackIDs)
	})
}

// every calls tick every interval, in a goroutine of its own, until the
// returned function is called; that function returns once tick is no
// longer running.
func every(interval time.Duration, tick func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tick()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// extend sets the ack deadline of ackIDs to the run's lease.
func (r *run) extend(ctx context.Context, ackIDs []string) {
	ctx, cancel := context.WithTimeout(ctx, r.lease/3)
	defer cancel()
	r.modifyDeadline(ctx, ackIDs, r.lease)
}

func (r *run) modifyDeadline(ctx context.Context, ackIDs []string, deadline time.Duration) {
	for chunk := range slices.Chunk(ackIDs, ackIDsPerRequest) {
		_ = r.client.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
			Subscription: r.sub, AckIds: chunk, AckDeadlineSeconds: int32(deadline / time.Second),
		})
	}
}

func (r *run) acknowledge(ctx context.Context, ackIDs []string) error {
	for chunk := range slices.Chunk(ackIDs, ackIDsPerRequest) {
		if err := r.client.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: r.sub, AckIds: chunk}); err != nil {
			return err
		}
	}
	return nil
}

// giveBack returns every message still held to the subscription at once,
// for the next run, even when ctx was cancelled.
func (r *run) giveBack(ctx context.Context) {
	r.mu.Lock()
	var ackIDs []string
	for _, ids := range r.leased {
		ackIDs = append(ackIDs, ids...)
	}
	clear(r.leased)
	r.mu.Unlock()
	if len(ackIDs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), giveBackTimeout)
	defer cancel()
	r.modifyDeadline(ctx, ackIDs, 0)
}

// describe names the event of msg for a dry-run line: its id and type from
// the decoded event m when there is one, else from the dead-letter
// attributes.
func describe(msg *pubsubpb.PubsubMessage, m *pipeline.Message) string {
	a := msg.GetAttributes()
	id, typ := a[deadletter.AttrEventID], a[deadletter.AttrEventType]
	if m != nil {
		id, typ = cmp.Or(m.Event.ID, id), cmp.Or(m.Event.Type, typ)
	}
	return fmt.Sprintf("%s (%s)", orDash(id), orDash(typ))
}

// Attributes Pub/Sub sets on a message its dead-letter policy forwards,
// such as a push subscription's after max_delivery_attempts.
const (
	attrSourceDeliveryCount = "CloudPubSubDeadLetterSourceDeliveryCount"
	attrSourceSubscription  = "CloudPubSubDeadLetterSourceSubscription"
)

// origin says where msg came from, from its attributes: Gwook's dead-letter
// topic, a subscription's dead-letter policy, or neither.
func origin(msg *pubsubpb.PubsubMessage) string {
	a := msg.GetAttributes()
	switch {
	case a[deadletter.AttrReason] != "":
		return fmt.Sprintf("dead-lettered as %s after %s attempts (svix status %s) at %s",
			a[deadletter.AttrReason], orDash(a[deadletter.AttrAttempts]), orDash(a[deadletter.AttrSvixStatus]), orDash(a[deadletter.AttrFailedAt]))
	case a[attrSourceDeliveryCount] != "":
		return fmt.Sprintf("dead-lettered by subscription %s after %s deliveries", orDash(a[attrSourceSubscription]), a[attrSourceDeliveryCount])
	}
	return "message " + msg.GetMessageId()
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
	stopTicks := every(500*time.Millisecond, func() {
		r.mu.Lock()
		line := progressLine(r.counts, len(r.seen), time.Since(started))
		r.mu.Unlock()
		fmt.Fprintf(r.opts.Progress, "\r\033[K%s", line)
	})
	return func() {
		stopTicks()
		fmt.Fprintln(r.opts.Progress)
	}
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
