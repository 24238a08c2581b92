// Package stats counts, per application and per minute, how Gwook answered
// each event, and adds those counts to the database in batches.
//
// A Recorder keeps the counts in memory and writes them every FlushInterval
// in one call of its write function, which adds each row's counts to the
// stored row of the same application and minute. Because writes add rather
// than set, any number of replicas can record events of the same
// application and minute: the stored row ends up with the sum.
//
// What a Recorder promises:
//
//   - Counts are exact: every event given to Add is written once, as long as
//     the process does not crash, the held rows stay under MaxPendingRows,
//     and each write either commits all of its rows or none (store.AddStats
//     is one transaction).
//   - A failed write loses nothing: its rows stay in memory, are added to
//     the counts that arrive meanwhile, and are written by the next flush.
//   - A crash loses at most the counts of one FlushInterval, plus those of
//     a write that was failing, or in progress, when it happened. Close
//     writes what is held, so a clean shutdown loses nothing.
//   - Memory is bounded: beyond MaxPendingRows held rows, events of an
//     application and minute not yet held are dropped and counted by
//     DroppedEvents; events of rows already held still count.
//
// The one way a count can be added twice is a write that committed but
// whose acknowledgement was lost, for example a connection that broke
// during COMMIT or a timeout that fired just after it. The Recorder cannot
// tell that from a write that did not commit, and retries: it prefers a
// rare count too high to a count lost each time the database is slow.
package stats

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gwook/gwook/internal/store"
)

// Outcome is how Gwook answered one event.
type Outcome int

// The outcomes.
const (
	// Forwarded: Svix accepted the event's message.
	Forwarded Outcome = iota
	// Filtered: the application's filter dropped the event on purpose.
	Filtered
	// Duplicate: the event had been seen already.
	Duplicate
	// DeadLettered: the event went to the dead letter topic.
	DeadLettered
	// Rejected: the event was refused for good.
	Rejected
	// Failed: handling the event failed.
	Failed

	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	Forwarded:    "forwarded",
	Filtered:     "filtered",
	Duplicate:    "duplicate",
	DeadLettered: "dead_lettered",
	Rejected:     "rejected",
	Failed:       "failed",
}

// String returns the outcome's wire name, such as "dead_lettered".
func (o Outcome) String() string {
	if o < 0 || o >= numOutcomes {
		return "outcome(" + strconv.Itoa(int(o)) + ")"
	}
	return outcomeNames[o]
}

// Defaults of Options.
const (
	DefaultFlushInterval  = 10 * time.Second
	DefaultFlushTimeout   = 5 * time.Second
	DefaultMaxPendingRows = 1_000_000
)

// dropLogInterval is the least time between two logs of dropped events.
const dropLogInterval = time.Minute

// Options configure a Recorder. The zero value gives the defaults.
type Options struct {
	// FlushInterval is the time between two writes of the loop started by
	// Start; default DefaultFlushInterval.
	FlushInterval time.Duration
	// FlushTimeout bounds one write; default DefaultFlushTimeout.
	FlushTimeout time.Duration
	// MaxPendingRows bounds the rows (application and minute) held in
	// memory, those waiting for a write and those of writes that failed;
	// default DefaultMaxPendingRows. Beyond it, events of rows not yet held
	// are dropped. A held row of an id as long as Svix's keeps about 165
	// bytes of heap (see BenchmarkPendingRowBytes), and a write needs some
	// 90 bytes more per row for the rows it is given; so the default bounds
	// the counts to some 165 MB, and 255 MB during a write of them all.
	MaxPendingRows int
	// Logger receives failed writes and dropped events from the loop;
	// default slog.Default().
	Logger *slog.Logger
	// Now is the clock that gives Add the minute of an event; default
	// time.Now.
	Now func() time.Time
	// OnFlush, when set, is told the result of every flush, for metrics.
	// It is called with no lock held that Add takes, but before the next
	// flush can start, so it must return quickly.
	OnFlush func(FlushResult)
}

// FlushResult is what one flush did.
type FlushResult struct {
	// Rows is the number of rows given to the write: written when Err is
	// nil, still held otherwise. It is zero when there was nothing to write,
	// and then no write was made.
	Rows int
	// Took is the time the flush took, write included.
	Took time.Duration
	// Err is the error of the write, or nil.
	Err error
	// Pending is the number of rows held after the flush: those that
	// arrived during it, and all of its rows when the write failed.
	Pending int
	// Dropped is the number of events dropped, because MaxPendingRows rows
	// were held, since the previous flush.
	Dropped int64
}

// key names one row: an application and a minute.
type key struct {
	app    string
	minute int64 // minutes since the Unix epoch
}

// counts are one row's counts, indexed by Outcome.
type counts [numOutcomes]int64

func (c *counts) add(o *counts) {
	for i := range c {
		c[i] += o[i]
	}
}

func (c *counts) storeCounts() store.StatsCounts {
	return store.StatsCounts{
		Forwarded:    c[Forwarded],
		Filtered:     c[Filtered],
		Duplicate:    c[Duplicate],
		DeadLettered: c[DeadLettered],
		Rejected:     c[Rejected],
		Failed:       c[Failed],
	}
}

// Recorder counts events per application, minute and outcome, and writes
// the counts in batches. Create it with NewRecorder, start its loop with
// Start, and stop it with Close. It is safe for concurrent use. A nil
// *Recorder records nothing: each of its methods does nothing.
type Recorder struct {
	write func(context.Context, []store.StatsRow) error
	opts  Options

	// mu guards live and heldRows; it is the only lock Add takes.
	mu   sync.Mutex
	live map[key]*counts
	// heldRows is the number of rows the flusher holds, being written or
	// kept after a failed write; it counts towards MaxPendingRows.
	heldRows int
	dropped  atomic.Int64

	// flushLock (capacity one) is held during a flush, so that flushes
	// never overlap; a channel rather than a mutex lets a waiting Flush
	// give up when its context ends.
	flushLock chan struct{}
	// These are guarded by flushLock.
	held            map[key]*counts // rows taken from live and not yet written
	droppedReported int64           // DroppedEvents as of the last FlushResult

	// lifeMu guards the life cycle: started, closed, stopLoop.
	lifeMu          sync.Mutex
	started, closed bool
	stopLoop        context.CancelFunc
	done            chan struct{} // closed when the loop has ended
}

// NewRecorder returns a Recorder that gives its counts to write, which must
// add each row's counts to the stored ones (creating the row when there is
// none) and either commit every row or none: store.Store.AddStats does.
// The rows come sorted by application and minute, so that writers that
// lock rows in that order cannot deadlock each other. write must not keep
// the slice after it returns.
func NewRecorder(write func(context.Context, []store.StatsRow) error, opts Options) *Recorder {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = DefaultFlushTimeout
	}
	if opts.MaxPendingRows <= 0 {
		opts.MaxPendingRows = DefaultMaxPendingRows
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Recorder{
		write:     write,
		opts:      opts,
		live:      map[key]*counts{},
		flushLock: make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

// Add counts one event of the application with the given outcome, in the
// minute of Options.Now. An empty application id, or an outcome that is
// none of the constants, is ignored.
func (r *Recorder) Add(applicationID string, o Outcome) {
	if r == nil || applicationID == "" {
		return
	}
	r.AddAt(applicationID, o, r.opts.Now())
}

// AddAt counts one event of the application with the given outcome, in the
// minute (UTC) of at. An empty application id, or an outcome that is none
// of the constants, is ignored.
//
// Events added after Close are held in memory; only a later Flush or Close
// writes them.
func (r *Recorder) AddAt(applicationID string, o Outcome, at time.Time) {
	if r == nil || applicationID == "" || o < 0 || o >= numOutcomes {
		return
	}
	k := key{app: applicationID, minute: minuteOf(at)}
	r.mu.Lock()
	c := r.live[k]
	if c == nil {
		if len(r.live)+r.heldRows >= r.opts.MaxPendingRows {
			r.mu.Unlock()
			r.dropped.Add(1)
			return
		}
		c = new(counts)
		// The id may be part of a larger string, such as a request body,
		// that a held row must not keep alive.
		k.app = strings.Clone(applicationID)
		r.live[k] = c
	}
	c[o]++
	r.mu.Unlock()
}

// minuteOf returns the minutes since the Unix epoch of the minute of t.
func minuteOf(t time.Time) int64 {
	s := t.Unix()
	m := s / 60
	if s%60 < 0 {
		m-- // round towards the past before 1970, as Truncate does
	}
	return m
}

// Pending returns the number of rows held in memory: counted and not yet
// written. A row of a failed write that has counted again since is counted
// twice, as it is held twice until the next flush.
func (r *Recorder) Pending() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live) + r.heldRows
}

// DroppedEvents returns the number of events dropped since NewRecorder
// because MaxPendingRows rows were held.
func (r *Recorder) DroppedEvents() int64 {
	if r == nil {
		return 0
	}
	return r.dropped.Load()
}

// Start starts the loop that flushes every FlushInterval until Close. It
// does nothing when the loop was started already or the Recorder closed.
func (r *Recorder) Start() {
	if r == nil {
		return
	}
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.started || r.closed {
		return
	}
	r.started = true
	ctx, stop := context.WithCancel(context.Background())
	r.stopLoop = stop
	go r.run(ctx)
}

// Close stops the loop, waiting for a write in progress, and then flushes
// what is held. ctx bounds the wait and the flush; when it ends first,
// Close returns its error and the counts stay held. Close returns the error
// of the flush, with the counts still held, so that a later Flush or Close
// may retry. Close may be called more than once: each call flushes.
func (r *Recorder) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.lifeMu.Lock()
	if !r.closed {
		r.closed = true
		if r.started {
			r.stopLoop()
		}
	}
	started := r.started
	r.lifeMu.Unlock()
	if started {
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("stats: waiting for the flush loop to end: %w", ctx.Err())
		}
	}
	return r.Flush(ctx)
}

// Flush writes what is held now, in one call of the write function bounded
// by ctx and FlushTimeout. When another flush is in progress, Flush waits
// for it first. When the write fails, the rows stay held, are added to the
// counts that arrive meanwhile, and are written by the next flush; Flush
// returns the error.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	return r.flush(ctx).Err
}

// lock takes flushLock, or returns ctx's error.
func (r *Recorder) lock(ctx context.Context) error {
	select {
	case r.flushLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stats: waiting for a flush in progress: %w", ctx.Err())
	}
}

func (r *Recorder) unlock() { <-r.flushLock }

// flush takes the live rows, adds them to the held ones, and writes those.
// The caller holds flushLock.
func (r *Recorder) flush(ctx context.Context) FlushResult {
	start := time.Now()
	r.mu.Lock()
	fresh := r.live
	if len(fresh) > 0 {
		// The next interval likely holds as many rows as this one.
		r.live = make(map[key]*counts, len(fresh))
		// An upper bound until the merge below tells the exact number.
		r.heldRows = len(r.held) + len(fresh)
	} else {
		fresh = nil
	}
	r.mu.Unlock()

	if fresh != nil {
		r.merge(fresh)
		r.mu.Lock()
		r.heldRows = len(r.held)
		r.mu.Unlock()
	}

	var result FlushResult
	if len(r.held) > 0 {
		rows := buildRows(r.held)
		ctx, cancel := context.WithTimeout(ctx, r.opts.FlushTimeout)
		err := r.write(ctx, rows)
		cancel()
		result.Rows = len(rows)
		if err != nil {
			result.Err = fmt.Errorf("stats: writing %d rows: %w", len(rows), err)
		} else {
			r.held = nil
			r.mu.Lock()
			r.heldRows = 0
			r.mu.Unlock()
		}
	}
	result.Took = time.Since(start)
	result.Pending = r.Pending()
	dropped := r.dropped.Load()
	result.Dropped = dropped - r.droppedReported
	r.droppedReported = dropped
	if r.opts.OnFlush != nil {
		r.opts.OnFlush(result)
	}
	return result
}

// merge adds fresh to r.held. The caller holds flushLock.
func (r *Recorder) merge(fresh map[key]*counts) {
	if len(r.held) == 0 {
		r.held = fresh
		return
	}
	for k, c := range fresh {
		if h := r.held[k]; h != nil {
			h.add(c)
		} else {
			r.held[k] = c
		}
	}
}

// buildRows returns the rows of held, sorted by application and minute.
func buildRows(held map[key]*counts) []store.StatsRow {
	rows := make([]store.StatsRow, 0, len(held))
	for k, c := range held {
		rows = append(rows, store.StatsRow{
			ApplicationID: k.app,
			Minute:        time.Unix(k.minute*60, 0).UTC(),
			Counts:        c.storeCounts(),
		})
	}
	slices.SortFunc(rows, func(a, b store.StatsRow) int {
		if c := strings.Compare(a.ApplicationID, b.ApplicationID); c != 0 {
			return c
		}
		return a.Minute.Compare(b.Minute)
	})
	return rows
}

// run flushes every FlushInterval until ctx ends, at Close, and logs failed
// writes once per run of failures and dropped events at most once a
// minute.
func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	ticker := time.NewTicker(r.opts.FlushInterval)
	defer ticker.Stop()
	failures := 0
	var droppedLogged int64
	var droppedLoggedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if ctx.Err() != nil {
			return // both were ready: Close wins
		}
		// ctx bounds the wait for a flush in progress only: a write once
		// started runs to its end (or FlushTimeout), since one cut short
		// may have committed all the same, and Close flushes next anyway.
		if r.lock(ctx) != nil {
			return
		}
		result := r.flush(context.Background())
		r.unlock()
		switch {
		case result.Err != nil && failures == 0:
			r.opts.Logger.Warn("stats: writing the counts failed; keeping them in memory and retrying every interval",
				"error", result.Err, "pending_rows", result.Pending)
			failures++
		case result.Err != nil:
			failures++
		case failures > 0:
			r.opts.Logger.Info("stats: writing the counts works again",
				"failed_flushes", failures, "rows", result.Rows)
			failures = 0
		}
		if dropped := r.dropped.Load(); dropped > droppedLogged && time.Since(droppedLoggedAt) >= dropLogInterval {
			r.opts.Logger.Warn("stats: too many rows held in memory; dropping the events of applications and minutes not held yet",
				"dropped_events", dropped-droppedLogged, "dropped_events_total", dropped,
				"max_pending_rows", r.opts.MaxPendingRows)
			droppedLogged = dropped
			droppedLoggedAt = time.Now()
		}
	}
}
