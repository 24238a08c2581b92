// Package pipeline is the one path every event takes, whichever way it came
// in: validate, filter, resolve the Svix application, suppress duplicates,
// send, and dead-letter what could not be sent. It returns an Outcome; only
// the HTTP layer turns an outcome into a status code.
//
// Its promise: an event is delivered, deliberately dropped (filtered or
// duplicate), or on the dead-letter topic, or the Result says that none of
// these happened (DeadLetterErr, or an outcome the caller must retry such
// as InFlight), so the caller must not take it as handled.
//
// Duplicate suppression follows the claim protocol of package dedup: the
// event claims its key, is sent, and then commits the claim (the backend
// has it) or releases it (the send failed). An event that finds its key in
// flight for another event waits up to Dedup.Wait for that event's outcome,
// polling the key, and is answered InFlight when it is still unknown.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/time/rate"

	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/eventtype"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/telemetry"
)

// Outcome is what became of one event.
type Outcome string

// The outcomes of Process.
const (
	Forwarded        Outcome = "forwarded"         // the backend accepted the event: Svix created the message, or the queue stored it
	Filtered         Outcome = "filtered"          // dropped on purpose by the global type filter or the application's filter
	Duplicate        Outcome = "duplicate"         // inside the dedup window, or the backend already has this event id
	Invalid          Outcome = "invalid"           // the body is not a valid event
	Rejected         Outcome = "rejected"          // the backend refused the event for good (Svix: 4xx other than 409 and 429)
	RateLimited      Outcome = "rate_limited"      // Svix answered 429 after every retry
	Unavailable      Outcome = "unavailable"       // the backend failed or was unreachable (after every retry), or refused Gwook's token
	DedupUnavailable Outcome = "dedup_unavailable" // the dedup store failed and DEDUP_FAILURE_MODE is closed
	InFlight         Outcome = "in_flight"         // another event with the same dedup key is still being sent: try again
	NoApplication    Outcome = "no_application"    // the user_id has no application and UNKNOWN_APPLICATION is drop
)

// Result is the Outcome of one event and what led to it.
type Result struct {
	Outcome Outcome
	// AppID is the Svix application the event was for, once resolved.
	AppID string
	// Sent is what the backend reported; zero when it was not called.
	Sent Sent
	// Err explains any outcome but Forwarded and Filtered. For Invalid it is
	// an *event.InvalidError.
	Err error
	// DeadLettered is true once the event is safe on the dead-letter topic.
	DeadLettered bool
	// DeadLetterErr is why publishing to the dead-letter topic failed.
	DeadLetterErr error
	// TraceID is the trace the event was processed in.
	TraceID string
	// RetryAfter is, for InFlight, the longest the other event can still
	// hold the key (the rest of its lease): when to try again at the latest.
	RetryAfter time.Duration
	// Filter is, for Filtered, the decision of the filter that dropped
	// the event: its rule and reason.
	Filter filter.Decision
}

// Handled reports whether the event of r is delivered, deliberately
// dropped (filtered, duplicate, no application) or on the dead-letter
// topic: the caller may then forget it. A push is answered 200 exactly
// then, and a pulled message acked; anything else is Pub/Sub's to deliver
// again.
func (r *Result) Handled() bool {
	if r.DeadLettered {
		return true
	}
	if r.DeadLetterErr != nil {
		return false
	}
	switch r.Outcome {
	case Forwarded, Filtered, Duplicate, NoApplication:
		return true
	}
	return false
}

// Dedup configures duplicate suppression. A nil Store turns it off.
type Dedup struct {
	Store dedup.Deduper
	// TTL is the window: how long a delivered event makes other events with
	// its key duplicates (DEDUP_TTL).
	TTL time.Duration
	// Lease is how long a claim stays in flight when it is neither committed
	// nor released, because its holder died: the send budget. It must be
	// positive.
	Lease time.Duration
	// Wait is how long an event whose key is in flight for another event
	// waits for that event's outcome before it is answered InFlight
	// (DEDUP_WAIT); 0 answers at once.
	Wait time.Duration
	// KeyFields are the event fields of the key (DEDUP_KEY_FIELDS), taken
	// within the event's Svix application.
	KeyFields []string
	// FailOpen forwards events when the store fails (Svix's idempotency key
	// still stops exact repeats); otherwise they get DedupUnavailable.
	FailOpen bool
}

// Config is what a Pipeline is built from.
type Config struct {
	Backend Backend
	// Filter is the global type filter (FILTER_INCLUDE_TYPES and
	// FILTER_EXCLUDE_TYPES), applied to every event first.
	Filter filter.Types
	// EventTypes, when set, returns the catalogued event type of a name,
	// nil for a type not in the catalogue; it must answer from memory. An
	// event of a type with a schema has its data checked against it, and
	// an event of an archived type is dropped as Filtered, before the
	// global filter.
	EventTypes func(name string) *eventtype.Type
	// AppFilter, when set, returns the filter of an application, nil for
	// none; it must answer from memory. It applies after the global filter
	// and before duplicate suppression.
	AppFilter func(appID string) *filter.Filter
	// Stats, when set, counts each event Process answers for good under its
	// application; replays are not counted.
	Stats *stats.Recorder
	// AppID, when set, is the Svix application for every event; otherwise
	// each event's user_id is the application UID.
	AppID string
	// Applications, when set, tells whether a user id has an application
	// in Gwook's database; it must answer from memory. An event for a user
	// without one is sent with the user id as the Svix uid, or, with
	// DropUnknown, ends as NoApplication.
	Applications func(userID string) bool
	DropUnknown  bool
	Dedup        Dedup
	// DeadLetters receives what could not be delivered; nil means no topic.
	DeadLetters *deadletter.Publisher
	Logger      *slog.Logger
	// Metrics counts events and their steps; nil counts nothing.
	Metrics *telemetry.Metrics
	// Reporter sends error reports; nil sends none.
	Reporter *telemetry.Reporter
	// Tracer starts the pipeline's spans; nil starts none.
	Tracer trace.Tracer
}

// Pipeline processes events. It is safe for concurrent use.
type Pipeline struct {
	cfg Config
	// dedupErrorLog logs failures of the dedup store at most once a minute;
	// gwook_dedup_errors_total counts every one.
	dedupErrorLog rate.Sometimes
	// errDuplicate and errInFlight explain the Duplicate and InFlight
	// outcomes; they depend on the configuration only, so they are made
	// once, not for every suppressed event.
	errDuplicate, errInFlight error
}

// New returns a Pipeline.
func New(cfg Config) *Pipeline {
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer(telemetry.TracerName)
	}
	return &Pipeline{cfg: cfg, dedupErrorLog: rate.Sometimes{First: 1, Interval: time.Minute},
		errDuplicate: fmt.Errorf("another event with the same %v was delivered within %s", cfg.Dedup.KeyFields, cfg.Dedup.TTL),
		errInFlight:  fmt.Errorf("another event with the same %v is being sent; try again once its outcome is known", cfg.Dedup.KeyFields)}
}

// The pauses between two claims of a key in flight for another event: the
// first, doubled after each claim up to the last. Most sends take
// milliseconds, so the first polls are quick; the cap keeps a long wait to a
// few claims a second.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 200 * time.Millisecond
)

// Process takes one decoded message through the pipeline. Replayed messages
// skip duplicate suppression (a replay is deliberate) and are never
// dead-lettered again (they stay on the dead-letter subscription).
//
// A message whose attributes carry the producer's trace context
// (googclient_traceparent) is processed in the producer's trace.
func (p *Pipeline) Process(ctx context.Context, m *Message) Result {
	ctx, links := telemetry.PushContext(ctx, m.Delivery.Attributes)
	ctx, span := p.cfg.Tracer.Start(ctx, "gwook.pipeline", trace.WithLinks(links...), trace.WithAttributes(
		attribute.String("gwook.entry", string(m.Delivery.Entry)),
		attribute.String("gwook.event.id", m.Event.ID),
		attribute.String("gwook.event.type", m.Event.Type),
		attribute.String("messaging.message.id", m.Delivery.MessageID),
	))
	defer span.End()

	r := p.process(ctx, m)
	if sc := span.SpanContext(); sc.IsValid() {
		r.TraceID = sc.TraceID().String()
	}
	fate := string(r.Outcome)
	if r.DeadLettered {
		fate = "dead_lettered"
	}
	span.SetAttributes(attribute.String("gwook.outcome", fate), attribute.String("gwook.application", r.AppID))
	if r.Err != nil && r.Outcome != Filtered && r.Outcome != Duplicate && r.Outcome != InFlight {
		span.SetStatus(codes.Error, string(r.Outcome))
	}
	p.cfg.Metrics.Event(string(m.Delivery.Entry), fate)
	if r.Outcome == Filtered {
		p.cfg.Metrics.FilterDrop(string(r.Filter.Rule))
		span.SetAttributes(attribute.String("gwook.filter.rule", string(r.Filter.Rule)))
	}
	if m.Delivery.Entry != EntryReplay {
		p.count(&r)
	}
	p.report(ctx, m, &r)
	return r
}

// count adds r to the application's stats when it is how Gwook answered
// the event for good: forwarded, filtered, duplicate, dead-lettered or
// rejected. An outcome the caller must retry is counted when the retry
// ends.
func (p *Pipeline) count(r *Result) {
	if p.cfg.Stats == nil || r.AppID == "" {
		return
	}
	switch {
	case r.DeadLettered:
		p.cfg.Stats.Add(r.AppID, stats.DeadLettered)
	case r.Outcome == Forwarded:
		p.cfg.Stats.Add(r.AppID, stats.Forwarded)
	case r.Outcome == Filtered:
		p.cfg.Stats.Add(r.AppID, stats.Filtered)
	case r.Outcome == Duplicate:
		p.cfg.Stats.Add(r.AppID, stats.Duplicate)
	case r.Outcome == Rejected:
		p.cfg.Stats.Add(r.AppID, stats.Rejected)
	}
}

// report sends an error report for the failures an operator must hear of.
// Replays are left out: the operator running one sees its summary.
func (p *Pipeline) report(ctx context.Context, m *Message, r *Result) {
	if m.Delivery.Entry == EntryReplay {
		return
	}
	rep := telemetry.Report{Err: r.Err, EventType: m.Event.Type, Application: r.AppID,
		PushSubscription: m.Delivery.Subscription, SvixStatus: r.Sent.Status, Reason: string(r.Outcome)}
	switch {
	case r.Outcome == Invalid && (m.Delivery.Entry == EntryPush || m.Delivery.Entry == EntryPull):
		rep.Kind, rep.Reason = "invalid_"+string(m.Delivery.Entry), string(deadletter.ReasonInvalidEvent)
	case r.Outcome == Invalid && m.Delivery.Entry == EntryFirehose:
		rep.Kind, rep.Reason = "invalid_firehose_record", string(deadletter.ReasonInvalidEvent)
	case r.Outcome == Rejected:
		rep.Kind = "svix_rejected"
	case r.Outcome == RateLimited || r.Outcome == Unavailable:
		rep.Kind = string(r.Outcome)
	default:
		return
	}
	p.cfg.Reporter.Report(ctx, rep)
	if r.DeadLetterErr != nil {
		rep.Kind, rep.Err = "dead_letter_failed", r.DeadLetterErr
		p.cfg.Reporter.Report(ctx, rep)
	}
}

func (p *Pipeline) process(ctx context.Context, m *Message) Result {
	planned, send := p.Plan(m)
	if !send {
		if planned.Outcome == Invalid {
			return p.invalid(ctx, m, planned.Err)
		}
		return planned
	}
	appID := planned.AppID

	claim, res := p.claim(ctx, m, appID)
	if res != nil {
		res.AppID = appID
		return *res
	}
	sent := p.cfg.Backend.Send(ctx, appID, &m.Event)
	r := Result{Outcome: outcomeOf(sent.Outcome), AppID: appID, Sent: sent, Err: sent.Err}
	if claim.Status == dedup.Claimed {
		p.settle(ctx, claim, r.Outcome)
	}
	switch {
	case r.Outcome == Unavailable && sent.Unauthorized:
		// The backend refused Gwook's credentials: the event is not at
		// fault and is left with the caller (Unavailable: a 5xx, so
		// Pub/Sub redelivers and producers retry), to go through once
		// the credentials are fixed.
	case r.Outcome == RateLimited:
		p.deadLetter(ctx, m, &r, deadletter.ReasonRateLimited)
	case r.Outcome == Unavailable:
		p.deadLetter(ctx, m, &r, deadletter.ReasonUnavailable)
	}
	return r
}

// invalid ends an invalid event; a push, a pulled message or a Firehose
// record is dead-lettered so that its sender stops redelivering something that can
// never succeed.
func (p *Pipeline) invalid(ctx context.Context, m *Message, err error) Result {
	r := Result{Outcome: Invalid, Err: err}
	if m.Delivery.Entry.redelivers() {
		p.deadLetter(ctx, m, &r, deadletter.ReasonInvalidEvent)
	}
	return r
}

// claim claims the event's dedup key in the application appID, waiting for
// the outcome of another event that holds it in flight (see claimWaiting).
// It returns the claim, Claimed when the event holds the key and must
// settle it after the send, and a final Result when the event must stop
// here.
func (p *Pipeline) claim(ctx context.Context, m *Message, appID string) (dedup.Claim, *Result) {
	d := p.cfg.Dedup
	if d.Store == nil || m.Delivery.Entry == EntryReplay {
		return dedup.Claim{}, nil
	}
	ctx, span := p.cfg.Tracer.Start(ctx, "gwook.dedup.claim")
	c, err := p.claimWaiting(ctx, dedup.Key(appID, &m.Event, d.KeyFields), m.Event.ID)
	result := claimResult(c, err)
	span.SetAttributes(attribute.String("gwook.dedup.result", result))
	if c.Holder != "" {
		span.SetAttributes(attribute.String("gwook.dedup.holder", c.Holder))
	}
	span.End()
	p.cfg.Metrics.DedupClaim(result)
	if err != nil {
		p.dedupErrorLog.Do(func() {
			p.cfg.Logger.Error("dedup store failed", "error", err.Error(), "fail_open", d.FailOpen, "next_log_in", "1m")
		})
		if d.FailOpen {
			return dedup.Claim{}, nil
		}
		return dedup.Claim{}, &Result{Outcome: DedupUnavailable, Err: fmt.Errorf("dedup store: %w", err)}
	}
	switch c.Status {
	case dedup.Claimed:
		return c, nil
	case dedup.Duplicate:
		return dedup.Claim{}, &Result{Outcome: Duplicate, Err: p.errDuplicate}
	}
	return dedup.Claim{}, &Result{Outcome: InFlight, RetryAfter: c.Remaining, Err: p.errInFlight}
}

// claimWaiting claims key for eventID. While another event holds it in
// flight, it claims again after a pause (firstPoll, doubling up to maxPoll)
// until that event's outcome is known or Dedup.Wait has passed: the answer is
// then Duplicate when the other event was delivered, Claimed when it failed
// or its lease ran out, and InFlight when it is still being sent. The claims
// made while waiting end with the wait, so the wait is at most Dedup.Wait
// however slow the store is; a claim it cuts off, like a caller that goes
// away, ends the wait with the last answer (InFlight).
func (p *Pipeline) claimWaiting(ctx context.Context, key, eventID string) (dedup.Claim, error) {
	d := p.cfg.Dedup
	c, err := d.Store.Claim(ctx, key, eventID, d.Lease)
	if err != nil || c.Status != dedup.InFlight || d.Wait <= 0 {
		return c, err
	}
	wait, cancel := context.WithTimeout(ctx, d.Wait)
	defer cancel()
	pause := firstPoll
	for {
		t := time.NewTimer(pause)
		select {
		case <-wait.Done():
			t.Stop()
			return c, nil
		case <-t.C:
		}
		next, err := d.Store.Claim(wait, key, eventID, d.Lease)
		switch {
		case err != nil && wait.Err() != nil:
			return c, nil
		case err != nil || next.Status != dedup.InFlight:
			return next, err
		}
		c = next
		pause = min(2*pause, maxPoll)
	}
}

// claimResult is the gwook_dedup_claims_total result of a claim.
func claimResult(c dedup.Claim, err error) string {
	switch {
	case err != nil:
		return "error"
	case c.Own:
		return "own"
	}
	return c.Status.String()
}

// settle ends the claim c after the send: a commit when the backend has the
// event (outcome Forwarded, or Duplicate for Svix's 409 or an event id the
// queue has already), a release otherwise. The answer waits for a release
// but not for a commit, which the store takes at once and writes with its
// next pipeline. A failure is counted and logged; it does not change the
// outcome.
func (p *Pipeline) settle(ctx context.Context, c dedup.Claim, o Outcome) {
	store := p.cfg.Dedup.Store
	if o == Forwarded || o == Duplicate {
		_, span := p.cfg.Tracer.Start(ctx, "gwook.dedup.commit")
		store.Commit(c, p.cfg.Dedup.TTL, func(err error) {
			defer span.End()
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
				p.commitFailed(c, err)
			}
		})
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dedup.SettleTimeout)
	defer cancel()
	ctx, span := p.cfg.Tracer.Start(ctx, "gwook.dedup.release")
	defer span.End()
	if err := store.Release(ctx, c); err != nil {
		span.SetStatus(codes.Error, err.Error())
		p.cfg.Metrics.DedupReleaseError()
		p.cfg.Logger.Warn("releasing dedup claim failed; the key stays in flight until its lease runs out",
			"error", err.Error(), "event_id", c.EventID)
	}
}

// commitFailed logs and counts a commit that failed.
func (p *Pipeline) commitFailed(c dedup.Claim, err error) {
	if errors.Is(err, dedup.ErrNotHeld) {
		p.cfg.Logger.Warn("dedup claim lost before its commit: its lease ran out and another event took the key, so both may be delivered",
			"event_id", c.EventID, "lease", p.cfg.Dedup.Lease.String())
	} else {
		p.cfg.Logger.Warn("committing dedup claim failed; the key stays in flight until its lease runs out, and later events with the key are then not suppressed",
			"error", err.Error(), "event_id", c.EventID)
	}
	p.cfg.Metrics.DedupCommitError()
}

// deadLetter publishes the event of m to the dead-letter topic, when there
// is one and m is not a replay, and records the result in r.
func (p *Pipeline) deadLetter(ctx context.Context, m *Message, r *Result, reason deadletter.Reason) {
	if p.cfg.DeadLetters == nil || m.Delivery.Entry == EntryReplay {
		return
	}
	data := m.Event.Raw
	if len(data) == 0 {
		data = m.Body
	}
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	letter := deadletter.Letter{
		TraceParent: m.Delivery.Attributes[telemetry.PushTraceParentAttribute],
		Reason:      reason, Data: data, SvixStatus: r.Sent.Status, Error: errText, Attempts: r.Sent.Attempts,
		EventID: m.Event.ID, EventType: m.Event.Type, Application: r.AppID,
		SourceSubscription: m.Delivery.Subscription, SourceMessageID: m.Delivery.MessageID, FailedAt: time.Now(),
	}
	// The publish outlives a caller that hangs up: the event is safer on
	// the topic than nowhere.
	ctx, span := p.cfg.Tracer.Start(ctx, "gwook.dead_letter.publish", trace.WithAttributes(attribute.String("gwook.reason", string(reason))))
	defer span.End()
	started := time.Now()
	_, err := p.cfg.DeadLetters.Publish(context.WithoutCancel(ctx), letter)
	p.cfg.Metrics.DeadLetterPublish(string(reason), time.Since(started), err)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		r.DeadLetterErr = err
		p.cfg.Logger.Error("dead-letter publish failed", "error", err.Error(), "reason", string(reason),
			"event_id", m.Event.ID, "event_type", m.Event.Type, "push_message_id", m.Delivery.MessageID)
		return
	}
	r.DeadLettered = true
}

// application resolves the Svix application of n.
func (p *Pipeline) application(n *event.Notification) (string, error) {
	if p.cfg.AppID != "" {
		return p.cfg.AppID, nil
	}
	if !event.ValidSvixID(n.UserID) {
		return "", &event.InvalidError{Reason: "event failed validation", Fields: []event.FieldError{{
			Field: "user_id", Rule: "svixid",
			Detail: `is the Svix application UID here, so it must match ^[a-zA-Z0-9\-_.]+$ and be at most 256 characters`,
		}}}
	}
	return n.UserID, nil
}

// outcomeOf is the Outcome of a backend's outcome o: o itself when it is
// one a backend may report, otherwise Unavailable.
func outcomeOf(o Outcome) Outcome {
	switch o {
	case Forwarded, Duplicate, Rejected, RateLimited, Unavailable:
		return o
	}
	return Unavailable
}
