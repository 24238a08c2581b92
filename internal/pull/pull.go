// Package pull consumes Pub/Sub subscriptions by streaming pull
// (PUBSUB_SUBSCRIPTIONS): each message goes through the pipeline as a push
// does, and is acked exactly when a push would be answered 200
// (pipeline.Result.Handled), nacked otherwise.
//
// Flow control bounds the messages and bytes held at once per
// subscription; the client library extends the ack deadline of the
// messages held (lease extension) up to LeaseExtension. A message is
// processed to its end even when Run's context ends: on shutdown the
// streams stop, the messages held are finished and each is acked or
// nacked, and Run returns once the client has sent those answers.
package pull

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/telemetry"
	"github.com/gwook/gwook/internal/truncate"
)

// Config is what a Puller is built from.
type Config struct {
	Client *pubsub.Client
	// Subscriptions are full names, projects/P/subscriptions/S.
	Subscriptions []string
	// MaxOutstandingMessages and MaxOutstandingBytes are the flow control
	// of each subscription: messages and bytes of data held at once
	// (PULL_MAX_OUTSTANDING_MESSAGES, PULL_MAX_OUTSTANDING_BYTES).
	MaxOutstandingMessages int
	MaxOutstandingBytes    int
	// LeaseExtension is how long the client keeps extending the ack
	// deadline of a message held.
	LeaseExtension time.Duration
	// MaxEventBytes is MAX_EVENT_BYTES: larger data is invalid.
	MaxEventBytes int
	Pipeline      *pipeline.Pipeline
	Logger        *slog.Logger
	// Metrics counts the streaming pulls that failed; nil counts nothing.
	Metrics *telemetry.Metrics
}

// leasePeriod is the longest the client extends a message's ack deadline
// by at a time (it extends every 5 s), and the ack deadline of the
// messages a stream delivers: a message held by a process that dies is
// delivered again within it, not after the client's default of 60 s.
const leasePeriod = 10 * time.Second

// The pauses before Receive is called again after it failed (a
// subscription missing or not readable, the service unreachable): the
// first, doubled after each failure up to the last (see nextPause).
const (
	firstRetry = time.Second
	maxRetry   = 30 * time.Second
)

// Run consumes every subscription of cfg until ctx ends, then returns once
// every message it held has been processed and acked or nacked. A failing
// subscription is logged and received again after a pause; it never stops
// the others.
func Run(ctx context.Context, cfg Config) {
	var wg sync.WaitGroup
	for _, name := range cfg.Subscriptions {
		wg.Go(func() { receive(ctx, &cfg, name) })
	}
	wg.Wait()
}

func receive(ctx context.Context, cfg *Config, name string) {
	sub := cfg.Client.Subscriber(name)
	sub.ReceiveSettings.MaxOutstandingMessages = cfg.MaxOutstandingMessages
	sub.ReceiveSettings.MaxOutstandingBytes = cfg.MaxOutstandingBytes
	sub.ReceiveSettings.MaxExtension = cfg.LeaseExtension
	sub.ReceiveSettings.MaxDurationPerAckExtension = leasePeriod
	// Flow control holds for the subscription, whatever the number of
	// streams.
	sub.ReceiveSettings.EnablePerStreamFlowControl = false
	var pause time.Duration // none yet
	for {
		started := time.Now()
		cfg.Logger.Info("streaming pull started", "subscription", name,
			"max_outstanding_messages", cfg.MaxOutstandingMessages, "max_outstanding_bytes", cfg.MaxOutstandingBytes)
		// Without ShutdownOptions, Receive waits on shutdown until every
		// callback has returned and its ack or nack has been sent.
		err := sub.Receive(ctx, func(msgCtx context.Context, msg *pubsub.Message) {
			handle(msgCtx, cfg, name, msg)
		})
		if ctx.Err() != nil {
			cfg.Logger.Info("streaming pull stopped", "subscription", name)
			return
		}
		pause = nextPause(pause, time.Since(started))
		errText := "the stream ended"
		if err != nil {
			errText = err.Error()
		}
		cfg.Metrics.PullFailure()
		cfg.Logger.Error("streaming pull failed; receiving again after a pause", "subscription", name,
			"error", errText, "retry_in_ms", pause.Milliseconds())
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// nextPause is the pause before Receive is called again, after one that
// failed having run for ran, when the pause before it was last (0 for
// none): firstRetry after the first failure, and after a stream that ran
// longer than maxRetry, whose failure is a new one; doubled, up to
// maxRetry, while Receive keeps failing at once.
func nextPause(last, ran time.Duration) time.Duration {
	if last == 0 || ran > maxRetry {
		return firstRetry
	}
	return min(2*last, maxRetry)
}

// handle takes one pulled message through the pipeline and acks or nacks
// it. The processing outlives msgCtx, which ends on shutdown: a message
// held is finished with its real outcome (bounded by the request budget),
// not cut off.
func handle(msgCtx context.Context, cfg *Config, subscription string, msg *pubsub.Message) {
	started := time.Now()
	attempt := 0
	if msg.DeliveryAttempt != nil {
		attempt = *msg.DeliveryAttempt
	}
	m := ingest.DecodePulled(&ingest.Pulled{
		Subscription: subscription, ID: msg.ID, Data: msg.Data, Attributes: msg.Attributes,
		PublishTime: msg.PublishTime, DeliveryAttempt: attempt, OrderingKey: msg.OrderingKey,
	}, cfg.MaxEventBytes)
	res := cfg.Pipeline.Process(context.WithoutCancel(msgCtx), &m)
	acked := res.Handled()
	if acked {
		msg.Ack()
	} else {
		msg.Nack()
	}
	logResult(cfg.Logger, &m, &res, acked, time.Since(started))
}

// maxEchoedField bounds the event fields echoed into the log line, as the
// HTTP log line does: an invalid event's id may be megabytes long.
const maxEchoedField = event.MaxSvixIDLength + 4

func bounded(s string) string { return truncate.String(s, maxEchoedField) }

// logResult writes one line per pulled message, with the fields of the
// HTTP request line that apply, the pull_* fields in place of push_*, and
// whether the message was acked.
func logResult(logger *slog.Logger, m *pipeline.Message, res *pipeline.Result, acked bool, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("outcome", string(res.Outcome)),
		slog.String("entry", string(m.Delivery.Entry)),
		slog.Bool("acked", acked),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
		slog.String("event_id", bounded(m.Event.ID)),
		slog.String("event_type", bounded(m.Event.Type)),
		slog.String("application", res.AppID),
		slog.String("pull_message_id", m.Delivery.MessageID),
		slog.String("pull_subscription", m.Delivery.Subscription),
		slog.String("pull_publish_time", m.Delivery.PublishTime),
		slog.Int("pull_delivery_attempt", m.Delivery.DeliveryAttempt),
	}
	if res.TraceID != "" {
		attrs = append(attrs, slog.String("trace_id", res.TraceID))
	}
	if res.Sent.MessageID != "" {
		attrs = append(attrs, slog.String("message_id", res.Sent.MessageID))
	}
	if res.Sent.Backend == pipeline.BackendSvix {
		attrs = append(attrs, slog.Int("svix_status", res.Sent.Status), slog.Int("attempts", res.Sent.Attempts))
	}
	if res.Err != nil {
		attrs = append(attrs, slog.String("error", res.Err.Error()))
	}
	if res.Outcome == pipeline.Filtered {
		attrs = append(attrs, slog.String("filter_rule", string(res.Filter.Rule)), slog.String("filter_reason", res.Filter.Reason))
	}
	if res.DeadLettered || res.DeadLetterErr != nil {
		attrs = append(attrs, slog.Bool("dead_lettered", res.DeadLettered))
	}
	if res.DeadLetterErr != nil {
		attrs = append(attrs, slog.String("dead_letter_error", res.DeadLetterErr.Error()))
	}
	if res.Sent.Body != "" {
		attrs = append(attrs, slog.String("svix_body", res.Sent.Body))
	}
	level := slog.LevelInfo
	if res.Outcome == pipeline.NoApplication {
		// Events of users without an application may be most of the
		// traffic with UNKNOWN_APPLICATION=drop; gwook_events_total
		// counts them.
		level = slog.LevelDebug
	}
	logger.LogAttrs(context.Background(), level, "pulled message", attrs...)
}
