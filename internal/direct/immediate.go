package direct

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/gwook/gwook/internal/delivery"
	"github.com/gwook/gwook/internal/store"
)

// Immediate first attempts.
//
// Waiting for River to fetch a new job costs a notification, a fetch, a
// read of the message and a completion: round trips that made most of a
// webhook's cost and of its lag. So a Send that finds room makes the first
// attempt of each of its deliveries itself, right after the commit, with
// the message it holds. Its jobs are inserted scheduled handOverAfter
// ahead (the delivery timeout and rescueMargin, as long as River waits
// before rescuing the job of a dead process), so no worker on any replica
// takes them while the attempt runs. Once the attempt is recorded, the job
// is deleted (delivered, failed, given up) or replaced in one transaction
// by one scheduled at the retry's time. A process that dies in between
// leaves the job, which River works once its time comes. An attempt that
// cannot be made at once (the endpoint unknown to the catalog, or busy for
// immediateBusyWait; the queue stopping) hands its job to River's
// workers, due now.
//
// Room is Options.Workers first attempts at once per process, beside
// River's workers; a Send finding none inserts its jobs due now, for
// River's workers.

// immediateBusyWait is how long a first attempt made by a Send waits for a
// slot of its endpoint (MaxInFlightPerEndpoint) before handing its job to
// River's workers. It holds a goroutine and an immediate slot, not a
// worker, so it waits longer than a worker's job does (busyWait): a burst
// to one endpoint queues here instead of costing a hand-over and a fetch
// per job, and a stuck endpoint holds at most a second of its events' slots.
const immediateBusyWait = time.Second

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

// attemptNow makes the first attempt of the delivery a of msg, whose job
// jobID is scheduled handOverAfter ahead, then settles the job, and gives
// its slot back.
func (q *Queue) attemptNow(ctx context.Context, a deliveryArgs, msg store.Message, jobID int64) {
	defer q.immediate.give(1)
	ep, ok := q.catalog.Endpoint(a.ApplicationID, a.EndpointID)
	if !ok || ep.Disabled || !q.inFlight.acquire(ctx, ep.ID, immediateBusyWait) {
		// River's worker reads the endpoint from the store, or waits for
		// a slot, without holding this one.
		q.metrics.FirstAttempts("handed_over", 1)
		q.handOver(ctx, jobID)
		return
	}
	start := q.now()
	res := q.send(ctx, ep, msg, start)
	q.inFlight.release(ep.ID)
	var attemptErr *delivery.AttemptError
	if errors.As(res.Err, &attemptErr) && attemptErr.Kind == delivery.KindCanceled {
		// Cut short by the queue stopping: not an attempt.
		q.metrics.FirstAttempts("handed_over", 1)
		q.handOver(ctx, jobID)
		return
	}
	q.metrics.FirstAttempts("immediate", 1)
	q.settle(ctx, a, jobID, q.conclude(ctx, a, 1, start, res))
}

// settle does with the job jobID of the delivery a what outcome, the
// result of concluding an attempt, would have River do with it.
func (q *Queue) settle(ctx context.Context, a deliveryArgs, jobID int64, outcome error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	var snooze *river.JobSnoozeError
	var canceled *river.JobCancelError
	var err error
	switch {
	case outcome == nil, errors.As(outcome, &canceled):
		_, err = q.deletes.Do(ctx, jobID)
	case errors.As(outcome, &snooze):
		err = q.reschedule(ctx, a, jobID, snooze.Duration)
	default:
		// The attempt may not be recorded: River's worker reads the
		// delivery again and makes it again if it must.
		q.logger.Warn("direct: recording an attempt failed; the delivery is left to the queue's workers",
			"message_id", a.MessageID, "endpoint_id", a.EndpointID, "error", outcome)
		q.handOver(ctx, jobID)
		return
	}
	if err != nil {
		// The job stays scheduled: River works it once its time comes,
		// and finds the delivery as it was recorded.
		q.logger.Warn("direct: settling a delivery's job failed; River works it after its grace",
			"message_id", a.MessageID, "endpoint_id", a.EndpointID, "job_id", jobID, "error", err)
	}
}

// handOver makes the job jobID due now, for River's workers.
func (q *Queue) handOver(ctx context.Context, jobID int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := q.river.JobRetry(ctx, jobID); err != nil {
		q.logger.Warn("direct: handing a job to the workers failed; River works it after its grace",
			"job_id", jobID, "error", err)
	}
}

// reschedule replaces the job jobID of the delivery a by one due after
// delay, in one transaction.
func (q *Queue) reschedule(ctx context.Context, a deliveryArgs, jobID int64, delay time.Duration) error {
	return q.store.InJobTx(ctx, func(tx store.Tx) error {
		var err error
		if tx.Postgres != nil {
			_, err = q.pgRiver.JobDeleteTx(ctx, tx.Postgres, jobID)
		} else {
			_, err = q.liteRiver.JobDeleteTx(ctx, tx.SQLite, jobID)
		}
		switch {
		case errors.Is(err, rivertype.ErrJobRunning), errors.Is(err, rivertype.ErrNotFound):
			// A worker has it, or had it: the delivery is its.
			return nil
		case err != nil:
			return err
		}
		_, err = q.insertJobs(ctx, tx, q.jobs(a.ApplicationID, a.MessageID, []string{a.EndpointID}, time.Now().Add(delay)))
		return err
	})
}

// deleteJobs deletes a batch of jobs in one query; a job running in a
// worker is left to it.
func (q *Queue) deleteJobs(ctx context.Context, ids []int64) ([]struct{}, error) {
	_, err := q.river.JobDeleteMany(ctx, river.NewJobDeleteManyParams().IDs(ids...).First(len(ids)))
	if err != nil {
		return nil, err
	}
	return make([]struct{}, len(ids)), nil
}

// jobIDs maps the jobs inserted to their deliveries.
func jobIDs(inserted []*rivertype.JobInsertResult) (map[store.DeliveryKey]int64, error) {
	ids := make(map[store.DeliveryKey]int64, len(inserted))
	for _, r := range inserted {
		var a deliveryArgs
		if err := json.Unmarshal(r.Job.EncodedArgs, &a); err != nil {
			return nil, fmt.Errorf("reading job %d: %w", r.Job.ID, err)
		}
		ids[store.DeliveryKey{MessageID: a.MessageID, EndpointID: a.EndpointID}] = r.Job.ID
	}
	return ids, nil
}
