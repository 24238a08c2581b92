package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/delivery"
	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/webhook"
)

// directBackend is Gwook's own delivery queue as the pipeline's backend.
// An event is Forwarded once its message and delivery jobs are committed.
type directBackend struct{ queue *direct.Queue }

func (b directBackend) Send(ctx context.Context, appID string, n *event.Notification) pipeline.Sent {
	ctx, cancel := context.WithTimeout(ctx, config.EnqueueTimeout)
	defer cancel()
	r, err := b.queue.Send(ctx, appID, n)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The application was deleted after the pipeline found it.
		return pipeline.Sent{Backend: pipeline.BackendDirect, Outcome: pipeline.Rejected,
			Err: fmt.Errorf("application %q does not exist, so no endpoint receives its events", appID)}
	case err != nil:
		return pipeline.Sent{Backend: pipeline.BackendDirect, Outcome: pipeline.Unavailable, Err: err}
	case r.Duplicate:
		return pipeline.Sent{Backend: pipeline.BackendDirect, Outcome: pipeline.Duplicate, MessageID: r.MessageID,
			Err: errors.New("the application has an event with this id already")}
	}
	return pipeline.Sent{Backend: pipeline.BackendDirect, Outcome: pipeline.Forwarded, MessageID: r.MessageID}
}

// startDirect builds Gwook's own delivery queue and, when work is true,
// starts its workers (the replay command only enqueues). Stopping them is
// registered with the closers, bounded by config.DeliveryStopTimeout.
func (a *App) startDirect(work bool) (*direct.Queue, error) {
	cfg := a.cfg
	schedule, err := delivery.ParseSchedule(cfg.DeliveryRetrySchedule) // checked by config
	if err != nil {
		return nil, err
	}
	client := delivery.NewClient(delivery.ClientOptions{
		Timeout:   cfg.DeliveryTimeout,
		URLs:      netguard.Policy{AllowPrivate: cfg.DeliveryAllowPrivateNetworks},
		UserAgent: webhook.UserAgent(a.version),
	})
	q, err := direct.New(a.store, a.catalog, client, schedule, a.stats, direct.Options{
		Workers:                cfg.DeliveryWorkers,
		MaxInFlightPerEndpoint: cfg.DeliveryMaxInFlightPerEndpoint,
		Timeout:                cfg.DeliveryTimeout,
		Logger:                 a.logger,
		DisableAfter:           cfg.DeliveryDisableAfter,
		Metrics:                a.metrics,
	})
	if err != nil {
		return nil, err
	}
	if !work {
		return q, nil
	}
	if err := q.Start(context.Background()); err != nil {
		return nil, err
	}
	a.startRetention()
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), config.DeliveryStopTimeout)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			a.logger.Warn("stopping the webhook workers", "error", err.Error())
		}
		client.CloseIdleConnections()
	})
	return q, nil
}
