package app

import (
	"context"
	"time"
)

// How direct delivery's records are kept up: the messages past
// MESSAGE_RETENTION are pruned once an hour. One prune may have a long
// backlog (the first after an upgrade, or after the database was down), so
// it is given minutes; it commits batch by batch, and what it did not
// reach is left to the next hour.
const (
	messagePruneInterval = time.Hour
	messagePruneTimeout  = 5 * time.Minute
)

// startRetention starts pruning the messages of direct delivery, with
// their deliveries and attempts, once they are older than
// MESSAGE_RETENTION and no longer pending, and registers its end. River
// prunes its finished jobs itself.
func (a *App) startRetention() {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.retentionUpkeep(ctx)
	}()
	a.closers = append(a.closers, func() {
		stop()
		<-done
	})
}

// retentionUpkeep prunes messages once an hour, the first time at once,
// until ctx ends.
func (a *App) retentionUpkeep(ctx context.Context) {
	tick := time.NewTicker(messagePruneInterval)
	defer tick.Stop()
	for {
		a.pruneMessages(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (a *App) pruneMessages(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, messagePruneTimeout)
	defer cancel()
	start := time.Now()
	n, err := a.store.PruneMessages(ctx, start.Add(-a.cfg.MessageRetention))
	if n.Rows() > 0 {
		a.logger.Info("direct delivery: pruned messages past their retention",
			"rows", n.Rows(), "messages", n.Messages, "deliveries", n.Deliveries, "attempts", n.Attempts,
			"retention", a.cfg.MessageRetention.String(), "duration_ms", time.Since(start).Milliseconds())
	}
	if err != nil && ctx.Err() == nil {
		a.logger.Warn("direct delivery: pruning messages past their retention failed; retrying in an hour", "error", err.Error())
	}
}
