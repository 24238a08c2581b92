package direct

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/gwook/gwook/internal/delivery"
	"github.com/gwook/gwook/internal/store"
)

// Immediate first attempts.
//
// Waiting for River to fetch a new job costs a notification, a fetch, a
// read of the message and a completion, and inserting and deleting the job
// cost two writes of River's indexed table: round trips and writes that
// made most of a webhook's cost and of its lag. So a Send that finds room
// makes the first attempt of each of its deliveries itself, right after
// the commit, with the message it holds, and stores them without River
// jobs: each has a recovery time instead, handOverAfter after the commit
// (the delivery timeout and rescueMargin, as long as River waits before
// rescuing the job of a dead process). Recording the attempt clears it,
// or sets it to the retry's time. Every replica passes over the
// deliveries every recoverInterval and gives a River job to each whose
// recovery time has come, in the transaction that clears it
// (store.RecoverDeliveries): a retry after a first attempt, and the
// deliveries of a process that died before recording theirs. An attempt
// that cannot be made at once (the endpoint unknown to the catalog, or
// busy for immediateBusyWait; the queue stopping) is due for recovery at
// once, and the pass that gives it its job follows.
//
// Room is immediatePerWorker × Options.Workers first attempts at once per
// process, beside River's workers; a Send finding none stores its
// deliveries with jobs due now, for River's workers.

// immediatePerWorker is how many first attempts a process makes at once
// per queue worker (Options.Workers). A first attempt holds a goroutine,
// not a worker, and costs a third of a queued one's CPU (no job to insert,
// fetch, read and complete): with 10 endpoints an event takes 10 slots,
// and back to back on PostgreSQL, 10 endpoints, 64 producers, 10 per
// worker instead of 1 delivered 5,802 webhooks/s instead of 2,536, at
// 169 + 135 µs of CPU (gwook + PostgreSQL) per webhook instead of 225 + 274.
const immediatePerWorker = 10

// immediateBusyWait is how long a first attempt made by a Send waits for a
// slot of its endpoint (MaxInFlightPerEndpoint) before handing its
// delivery to River's workers. It holds a goroutine and an immediate slot, not a
// worker, so it waits longer than a worker's job does (busyWait): a burst
// to one endpoint queues here instead of costing a hand-over and a fetch
// per job, and a stuck endpoint holds at most a second of its events' slots.
const immediateBusyWait = time.Second

// recoverInterval is how often each replica gives River jobs to the
// deliveries whose recovery time has come: a retry after a first attempt
// waits up to this much longer than its schedule says.
const recoverInterval = 500 * time.Millisecond

// immediateSlots counts the first attempts a process may make at once,
// and their goroutines: taken by Send before it stores a message, given
// back as each attempt ends.
type immediateSlots struct {
	mu     sync.Mutex
	free   int
	closed bool
	// running counts the slots taken, so that Stop can wait for them.
	running sync.WaitGroup
}

// take takes n slots, all or none, and reports whether it did; none once
// closed.
func (s *immediateSlots) take(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || n == 0 || n > s.free {
		return false
	}
	s.free -= n
	s.running.Add(n)
	return true
}

// give gives n slots back.
func (s *immediateSlots) give(n int) {
	s.mu.Lock()
	s.free += n
	s.mu.Unlock()
	s.running.Add(-n)
}

// open makes n slots available; close takes them away, and wait waits for
// the slots taken to be given back, as long as ctx allows.
func (s *immediateSlots) open(n int) {
	s.mu.Lock()
	s.free, s.closed = n, false
	s.mu.Unlock()
}

func (s *immediateSlots) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *immediateSlots) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attemptNow makes the first attempt of the delivery a of msg, whose
// recovery time is handOverAfter after its commit, records it, and gives
// its slot back.
func (q *Queue) attemptNow(ctx context.Context, a deliveryArgs, msg store.Message) {
	defer q.immediate.give(1)
	ep, ok := q.catalog.Endpoint(a.ApplicationID, a.EndpointID)
	if !ok || ep.Disabled || !q.inFlight.acquire(ctx, ep.ID, immediateBusyWait) {
		// River's worker reads the endpoint from the store, or waits for
		// a slot, without holding this one.
		q.handOver(ctx, a)
		return
	}
	start := q.now()
	res := q.send(ctx, ep, msg, start)
	q.inFlight.release(ep.ID)
	var attemptErr *delivery.AttemptError
	if errors.As(res.Err, &attemptErr) && attemptErr.Kind == delivery.KindCanceled {
		// Cut short by the queue stopping: not an attempt.
		q.handOver(ctx, a)
		return
	}
	q.metrics.FirstAttempts("immediate", 1)
	// The record cleared the delivery's recovery time, or set it to the
	// retry's: nothing is left to do with River's job, since it has none.
	var snooze *river.JobSnoozeError
	var canceled *river.JobCancelError
	if err := q.conclude(ctx, a, 1, start, res); err != nil && !errors.As(err, &snooze) && !errors.As(err, &canceled) {
		// The attempt may not be recorded: the delivery is recovered at
		// its time, and the worker that gets it reads it again and makes
		// the attempt again if it must.
		q.logger.Warn("direct: recording an attempt failed; the delivery is recovered after its grace",
			"message_id", a.MessageID, "endpoint_id", a.EndpointID, "error", err)
	}
}

// handOver makes the delivery a due for recovery now, and has the
// recovery loop pass, so that River's workers make its first attempt.
func (q *Queue) handOver(ctx context.Context, a deliveryArgs) {
	q.metrics.FirstAttempts("handed_over", 1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := q.store.RecoverNow(ctx, store.DeliveryKey{MessageID: a.MessageID, EndpointID: a.EndpointID}); err != nil {
		q.logger.Warn("direct: handing a delivery to the workers failed; it is recovered after its grace",
			"message_id", a.MessageID, "endpoint_id", a.EndpointID, "error", err)
		return
	}
	select {
	case q.recoverNow <- struct{}{}:
	default: // a pass is asked for already
	}
}

// recoverDeliveries gives River jobs to the deliveries whose recovery time
// has come, every recoverInterval and when handOver asks, until ctx ends:
// the first attempts handed over, retries after a first attempt, and the
// deliveries of a replica that died before recording their first attempt.
func (q *Queue) recoverDeliveries(ctx context.Context) {
	ticker := time.NewTicker(recoverInterval)
	defer ticker.Stop()
	for {
		for {
			n, err := q.store.RecoverDeliveries(ctx, time.Now(), maxAttemptBatch, func(tx store.Tx, taken []store.RecoveredDelivery) error {
				jobs := make([]river.InsertManyParams, 0, len(taken))
				for _, d := range taken {
					jobs = append(jobs, q.jobs(d.ApplicationID, d.MessageID, []string{d.EndpointID})...)
				}
				_, err := q.insertJobs(ctx, tx, jobs)
				return err
			})
			if err != nil && ctx.Err() == nil {
				q.logger.Warn("direct: recovering deliveries failed; trying again", "error", err)
			}
			if err != nil || n < maxAttemptBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-q.recoverNow:
		}
	}
}
