package app

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/stats"
)

// statsMaxPendingRows bounds the stats rows a replica holds while the
// database refuses them: about 165 bytes each (BenchmarkPendingRowBytes),
// so 33 MB, or more than three hours of 1,000 busy applications.
const statsMaxPendingRows = 200_000

// How the stats in the database are kept up: pruned once an hour, and the
// top filtered applications (a gauge) read at most once a minute, after a
// write that added rows.
const (
	statsPruneInterval  = time.Hour
	topFilteredInterval = time.Minute
	topFilteredWindow   = time.Hour
	topFilteredLimit    = 10
	statsUpkeepTimeout  = 10 * time.Second
)

// startStats starts the recorder of per-application stats and its upkeep,
// and registers their end: the last write of what the recorder holds,
// bounded by config.StatsFlushTimeout.
func (a *App) startStats() *stats.Recorder {
	ctx, stop := context.WithCancel(context.Background())
	refresh := make(chan struct{}, 1)
	var lastRefresh atomic.Int64 // Unix nanoseconds of the last top-filtered read
	rec := stats.NewRecorder(a.store.AddStats, stats.Options{
		FlushInterval:  a.cfg.StatsFlushInterval,
		FlushTimeout:   config.StatsFlushTimeout,
		MaxPendingRows: statsMaxPendingRows,
		Logger:         a.logger,
		OnFlush: func(r stats.FlushResult) {
			a.metrics.StatsFlush(r.Rows, r.Took, r.Err, r.Pending)
			if r.Dropped > 0 {
				a.metrics.StatsDropped(int(r.Dropped))
			}
			if r.Err == nil && r.Rows > 0 && time.Since(time.Unix(0, lastRefresh.Load())) >= topFilteredInterval {
				select {
				case refresh <- struct{}{}:
				default:
				}
			}
		},
	})
	rec.Start()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.statsUpkeep(ctx, refresh, &lastRefresh)
	}()
	a.closers = append(a.closers, func() {
		stop()
		<-done
		flushCtx, cancel := context.WithTimeout(context.Background(), config.StatsFlushTimeout)
		defer cancel()
		if err := rec.Close(flushCtx); err != nil {
			a.logger.Error("stats: the last write failed; the counts since the previous write are lost",
				"error", err.Error(), "rows", rec.Pending())
		}
	})
	return rec
}

// statsUpkeep prunes stats past their retention once an hour (the first
// time at once) and reads the top filtered applications when refresh says
// so, until ctx ends.
func (a *App) statsUpkeep(ctx context.Context, refresh <-chan struct{}, lastRefresh *atomic.Int64) {
	prune := time.NewTicker(statsPruneInterval)
	defer prune.Stop()
	a.pruneStats(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			a.pruneStats(ctx)
		case <-refresh:
			lastRefresh.Store(time.Now().UnixNano())
			a.readTopFiltered(ctx)
		}
	}
}

func (a *App) pruneStats(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, statsUpkeepTimeout)
	defer cancel()
	now := time.Now()
	n, err := a.store.PruneStats(ctx, now.Add(-a.cfg.StatsRetention), now.Add(-config.StatsDayRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		a.logger.Warn("stats: pruning old rows failed; retrying in an hour", "error", err.Error())
	case n > 0:
		a.logger.Info("stats: pruned rows past their retention", "rows", n)
	}
}

func (a *App) readTopFiltered(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, statsUpkeepTimeout)
	defer cancel()
	top, err := a.store.TopFiltered(ctx, time.Now().Add(-topFilteredWindow), topFilteredLimit)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("stats: reading the top filtered applications failed", "error", err.Error())
		}
		return
	}
	counts := make(map[string]int64, len(top))
	for _, c := range top {
		counts[c.ApplicationID] = c.Count
	}
	a.metrics.SetTopFiltered(counts)
}
