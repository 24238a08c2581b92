// Package direct delivers events to applications' webhook endpoints itself,
// durably, without Svix: each accepted event becomes a message stored with
// one delivery per matching endpoint in one transaction; the replica that
// accepted it makes the first attempts, and River workers, on any replica
// sharing the database, make the rest: each attempt signed with the
// endpoint's secrets, recorded, and retried on the delivery schedule.
//
// # Guarantees
//
// Send returns only once the message and its deliveries are committed,
// each with a River job or with a recovery time, so an event it accepted
// survives a crash of the process at any moment. Delivery is at least
// once: a job in progress when its process died is worked again once River
// rescues it (RescueStuckJobsAfter, Timeout + 30 s), and a delivery whose
// first attempt a Send was making gets a job once its recovery time comes
// (as long after the commit). Without failures each message reaches each
// endpoint once: River hands a job to one worker at a time, a delivery gets
// a job only in the transaction that clears its recovery time, and a job
// whose delivery is already delivered or failed (its process died after
// recording the attempt, before the job was completed) ends without
// sending again.
//
// # Attempts
//
// An attempt sends the message's body as accepted, with webhook-id the
// message id (the same on every attempt to every endpoint) and a signature
// per active secret of the endpoint. The attempt is recorded with the
// delivery's new state; then delivery.Schedule decides: delivered, retried
// after a delay (a job is snoozed, which does not spend River's attempts:
// the count of attempts is the delivery's; a first attempt's delivery is
// due for recovery then), the endpoint gone (410: it is disabled) or the
// message failed for the endpoint (counted as stats.Failed). An attempt
// cut short by the queue stopping is not counted and is made again at once
// by the next worker. An endpoint deleted or disabled since the message was
// accepted is not sent to; its delivery fails with the reason.
//
// An endpoint that has failed every attempt, to any message and from any
// replica, for DisableAfter is disabled at its next failed attempt, whose
// delivery fails with it (store.Attempt.FailingSince tracks the run).
//
// At most MaxInFlightPerEndpoint attempts to one endpoint run at once in a
// process; a job finding its endpoint busy waits 20 ms for a slot, then is
// snoozed briefly, freeing its worker, so a slow endpoint cannot hold every
// worker.
//
// # Endpoints
//
// Send fans out to the endpoints that the catalog holds, without a query,
// so an endpoint created or changed on another replica takes its events
// from this one within the catalog's poll (about 1 s). An attempt signs
// with the secrets the catalog holds; an endpoint the catalog lacks or
// holds disabled is read from the store before its delivery is given up.
//
// # Round trips
//
// A Send makes the first attempts of its message itself, right after the
// commit, while River's workers make the retries (immediate.go): so a
// webhook that succeeds first time costs no insert, fetch, read or
// completion of a job, and waits for none. Concurrent Sends share the
// transactions that store their messages, and concurrent attempts share
// the queries that read their deliveries and record their attempts (a
// batcher each): a lone call goes at once, and under load many share one
// round trip to the database.
//
// On PostgreSQL River hears of new jobs at once (LISTEN/NOTIFY) and polls
// every 100 ms for retries that are due; on SQLite it polls every 20 ms.
package direct

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/gwook/gwook/internal/batch"
	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/delivery"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/telemetry"
	"github.com/gwook/gwook/internal/webhook"
)

// Defaults of Options.
const (
	DefaultWorkers                = 100
	DefaultMaxInFlightPerEndpoint = 10
)

// queueName is River's queue of delivery jobs.
const queueName = "gwook_delivery"

// River's settings.
const (
	// On PostgreSQL River LISTENs for new jobs and polls every
	// fetchPollInterval for those whose time has come (retries); on
	// SQLite it polls every sqlitePollInterval.
	fetchPollInterval  = 100 * time.Millisecond
	sqlitePollInterval = 20 * time.Millisecond
	fetchCooldown      = 5 * time.Millisecond
	// jobTimeoutMargin is how much longer than an attempt a job may run:
	// the reads and writes around the attempt.
	jobTimeoutMargin = 5 * time.Second
	// rescueMargin is how much longer than an attempt a job must run
	// before River takes it for the job of a dead process and works it
	// again.
	rescueMargin = 30 * time.Second
	// maxJobAttempts is River's own bound, reached only by jobs failing
	// with errors of the database; the schedule bounds the attempts.
	maxJobAttempts = 1000
	// completedRetention keeps finished jobs an hour, so that river_job
	// stays small; the deliveries table keeps their outcome.
	completedRetention = time.Hour
	// A job finding its endpoint busy waits busyWait for a slot, holding
	// its worker (cheaper than a snooze, which writes the job and fetches
	// it again), then is snoozed busySnooze, freeing it.
	busyWait   = 20 * time.Millisecond
	busySnooze = 50 * time.Millisecond
	// recordTimeout bounds recording an attempt already made, which goes
	// ahead when the job's context ends.
	recordTimeout = 10 * time.Second
	// backlogInterval is how often the backlog is read into the metrics.
	backlogInterval = 15 * time.Second
	// maxBatch and maxBatchDeliveries bound the messages, and their
	// deliveries, stored in one transaction; batchTimeout bounds its time.
	maxBatch           = 100
	maxBatchDeliveries = 2000
	batchTimeout       = 5 * time.Second
	// postgresBatchWriters is how many batches of messages with jobs are
	// written at once on PostgreSQL; SQLite has one writer connection, so
	// one.
	postgresBatchWriters = 4
	// The attempts' reads of their deliveries, and their records, are
	// batched too: maxAttemptBatch at most in one query, by
	// postgresAttemptWriters at once on PostgreSQL, one on SQLite.
	maxAttemptBatch        = 100
	postgresAttemptWriters = 2
	// recordLinger is how long a writer of attempts' records waits for
	// more to share its round trip: the webhook has arrived, and only its
	// record, and the slot of a first attempt, wait.
	recordLinger = 5 * time.Millisecond
)

// Options configure a Queue. The zero value gives the defaults.
type Options struct {
	// Workers is how many jobs the process works at once; its Sends make
	// immediatePerWorker times as many first attempts at once besides;
	// default DefaultWorkers.
	Workers int
	// MaxInFlightPerEndpoint bounds the attempts to one endpoint running
	// at once in the process; default DefaultMaxInFlightPerEndpoint.
	MaxInFlightPerEndpoint int
	// Timeout is the delivery client's timeout (DELIVERY_TIMEOUT), from
	// which River's job timeout and the time after which it rescues the
	// job of a dead process are derived; default delivery.DefaultTimeout.
	Timeout time.Duration
	// Logger receives River's logs and the queue's; default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock of the webhook timestamps and of the secrets'
	// expiry; default time.Now.
	Now func() time.Time
	// DisableAfter disables an endpoint that has failed every attempt
	// for this long (DELIVERY_DISABLE_AFTER); 0 never does.
	DisableAfter time.Duration
	// Metrics records the attempts, the queue's backlog and the endpoints
	// disabled; nil records nothing.
	Metrics *telemetry.Metrics
}

// Result is what Send did with an event.
type Result struct {
	// MessageID is the message's id: the webhook-id of its attempts.
	MessageID string
	// Endpoints is how many endpoints the message goes to; 0 when none
	// matched (the message is stored all the same).
	Endpoints int
	// Duplicate is true when the application had the event already: no
	// new message was made, and MessageID and Endpoints are the first's.
	Duplicate bool
}

// Queue sends events to endpoints through River jobs in the store's
// database. Create it with New, start its workers with Start and stop them
// with Stop; Send works whether the workers run or not.
type Queue struct {
	store    *store.Store
	catalog  *catalog.Catalog
	client   *delivery.Client
	schedule delivery.Schedule
	stats    *stats.Recorder
	logger   *slog.Logger
	now      func() time.Time
	// river works the jobs: pgRiver on PostgreSQL, liteRiver on SQLite,
	// which also insert them (insertJobs).
	river     riverClient
	pgRiver   *river.Client[pgx.Tx]
	liteRiver *river.Client[*sql.Tx]
	inFlight  *endpointLimit
	metrics   *telemetry.Metrics
	// workers is Options.Workers: River's workers, and as many first
	// attempts made at once by Sends (immediate.go).
	workers int
	// immediate are the slots of the first attempts made by Sends;
	// immediateCtx is their context, which stopImmediate cancels.
	immediate     immediateSlots
	immediateCtx  context.Context
	stopImmediate context.CancelFunc
	// handOverAfter is how far ahead of the commit the deliveries of a
	// Send's first attempts are due for recovery.
	handOverAfter time.Duration
	// recoverNow asks the recovery loop for a pass now (immediate.go).
	recoverNow chan struct{}
	// disableAfter is Options.DisableAfter.
	disableAfter time.Duration
	// immediates stores the messages of Sends that make the first
	// attempts themselves, enqueues those of Sends that leave them to
	// jobs, reads reads the deliveries that attempts make, and records
	// records the attempts: each in batches.
	immediates *batch.Batcher[outgoing, store.EnqueuedMessage]
	enqueues   *batch.Batcher[outgoing, store.EnqueuedMessage]
	reads      *batch.Batcher[store.DeliveryKey, deliveryRead]
	records    *batch.Batcher[store.AttemptRecord, store.RecordedAttempt]
	// stopBackground ends the goroutines reading the backlog and
	// recovering deliveries; background counts them. Nil until Start.
	stopBackground context.CancelFunc
	background     sync.WaitGroup
}

// deliveryArgs are a delivery job's arguments: one message to one
// endpoint.
type deliveryArgs struct {
	MessageID     string `json:"message_id"`
	EndpointID    string `json:"endpoint_id"`
	ApplicationID string `json:"application_id"`
}

func (deliveryArgs) Kind() string { return "gwook_delivery" }

// New returns a Queue on st, finding endpoints in cat (a started catalog of
// st), making attempts with client and retrying on schedule; failures are
// counted in rec, which may be nil.
func New(st *store.Store, cat *catalog.Catalog, client *delivery.Client, schedule delivery.Schedule, rec *stats.Recorder, opts Options) (*Queue, error) {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxInFlightPerEndpoint <= 0 {
		opts.MaxInFlightPerEndpoint = DefaultMaxInFlightPerEndpoint
	}
	if opts.Timeout <= 0 {
		opts.Timeout = delivery.DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	q := &Queue{
		store:    st,
		catalog:  cat,
		client:   client,
		schedule: schedule,
		stats:    rec,
		logger:   opts.Logger,
		now:      opts.Now,
		inFlight: newEndpointLimit(opts.MaxInFlightPerEndpoint),
		metrics:  opts.Metrics,
		workers:  opts.Workers,

		handOverAfter: opts.Timeout + rescueMargin,
		recoverNow:    make(chan struct{}, 1),
		disableAfter:  opts.DisableAfter,
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &worker{q: q}); err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	config := &river.Config{
		Workers:                     workers,
		Queues:                      map[string]river.QueueConfig{queueName: {MaxWorkers: opts.Workers}},
		FetchPollInterval:           fetchPollInterval,
		FetchCooldown:               fetchCooldown,
		JobTimeout:                  opts.Timeout + jobTimeoutMargin,
		RescueStuckJobsAfter:        opts.Timeout + rescueMargin,
		MaxAttempts:                 maxJobAttempts,
		CompletedJobRetentionPeriod: completedRetention,
		Logger:                      opts.Logger,
	}
	var err error
	// SQLite has one writer connection: one writer of each batcher.
	enqueueWriters, attemptWriters := 1, 1
	if st.Dialect() == store.Postgres {
		q.pgRiver, err = river.NewClient(st.RiverPostgres(), config)
		q.river = q.pgRiver
		enqueueWriters, attemptWriters = postgresBatchWriters, postgresAttemptWriters
	} else {
		config.PollOnly = true
		config.FetchPollInterval = sqlitePollInterval
		q.liteRiver, err = river.NewClient(st.RiverSQLite(), config)
		q.river = q.liteRiver
	}
	if err != nil {
		return nil, fmt.Errorf("direct: creating the River client: %w", err)
	}
	deliveries := func(m outgoing) int { return len(m.EndpointIDs) }
	// One writer of immediate messages, on either database: the events
	// that arrive while its statement runs go in the next one. Their
	// statement needs no transaction and is quick; with four writers, at
	// 1,000 events/s most carried one event. Messages with jobs take a
	// transaction with River's inserts, which several writers overlap
	// when gwook is behind.
	q.immediates = batch.New(1, maxBatch, maxBatchDeliveries, deliveries, batchTimeout, q.storeMessages)
	q.enqueues = batch.New(enqueueWriters, maxBatch, maxBatchDeliveries, deliveries, batchTimeout, q.storeMessages)
	q.reads = batch.New(attemptWriters, maxAttemptBatch, maxAttemptBatch, nil, batchTimeout, q.readDeliveries)
	q.records = batch.New(attemptWriters, maxAttemptBatch, maxAttemptBatch, nil, recordTimeout, q.recordAttempts).Linger(recordLinger)
	return q, nil
}

// Start starts the workers, the first attempts made by Sends, the
// recovery of deliveries (immediate.go), and the reading of the backlog
// into the metrics every backlogInterval. They run until Stop, or until
// ctx ends.
func (q *Queue) Start(ctx context.Context) error {
	if err := q.river.Start(ctx); err != nil {
		return fmt.Errorf("direct: starting the workers: %w", err)
	}
	q.immediateCtx, q.stopImmediate = context.WithCancel(ctx)
	q.immediate.open(immediatePerWorker * q.workers)
	backgroundCtx, stop := context.WithCancel(ctx)
	q.stopBackground = stop
	q.background.Go(func() { q.sampleBacklog(backgroundCtx) })
	q.background.Go(func() { q.recoverDeliveries(backgroundCtx) })
	return nil
}

// sampleBacklog reads the backlog into the metrics now and every
// backlogInterval until ctx ends.
func (q *Queue) sampleBacklog(ctx context.Context) {
	ticker := time.NewTicker(backlogInterval)
	defer ticker.Stop()
	for {
		readCtx, cancel := context.WithTimeout(ctx, backlogInterval)
		b, err := q.store.DeliveryBacklog(readCtx, queueName)
		cancel()
		if ctx.Err() != nil {
			return
		}
		q.metrics.DeliveryQueue(b.Jobs, b.OldestDue, err)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Stop ends Send (ErrStopped, after the batches being written, as long as
// ctx allows), stops fetching jobs and waits for the attempts in progress to
// end, as long as ctx allows; then it cancels them, and they are made again
// by the next worker to start.
func (q *Queue) Stop(ctx context.Context) error {
	q.immediate.close()
	// A batch still being written ends within batchTimeout; its Sends
	// have answered already if their own deadline was shorter.
	q.immediates.Close(ctx)
	q.enqueues.Close(ctx)
	// The attempts still running read and record through their batchers
	// until they have ended and River has stopped.
	defer q.records.Close(ctx)
	defer q.reads.Close(ctx)
	if q.stopImmediate != nil {
		if q.immediate.wait(ctx) != nil {
			// Cut short, they hand their jobs to the workers.
			q.stopImmediate()
			_ = q.immediate.wait(context.Background())
		}
		q.stopImmediate()
	}
	if q.stopBackground != nil {
		// Deliveries handed over and not yet recovered are recovered by
		// the next replica to pass, or by this one started again.
		q.stopBackground()
		q.background.Wait()
	}
	err := q.river.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = q.river.StopAndCancel(context.Background())
	}
	if err != nil {
		return fmt.Errorf("direct: stopping the workers: %w", err)
	}
	return nil
}

// Send stores the event n of application appID as a message, with a
// delivery job for each of the application's endpoints that is enabled and
// takes n's type, and returns once they are committed. The body sent is
// n.Raw, which must be set. The same event (by id) of the same application
// again makes nothing new: the Result is the first message's, Duplicate.
// An application that does not exist is an error wrapping
// store.ErrNotFound.
func (q *Queue) Send(ctx context.Context, appID string, n *event.Notification) (Result, error) {
	if len(n.Raw) == 0 {
		return Result{}, errors.New("direct: the event has no body (Notification.Raw)")
	}
	var ids []string
	for _, e := range q.catalog.Endpoints(appID) {
		if e.Takes(n.Type) {
			ids = append(ids, e.ID)
		}
	}
	m := outgoing{
		NewMessage: store.NewMessage{
			Message:     store.Message{ID: store.NewMessageID(), ApplicationID: appID, EventID: n.ID, EventType: n.Type, Body: n.Raw},
			EndpointIDs: ids,
		},
		immediate: q.immediate.take(len(ids)),
	}
	if m.immediate {
		m.RecoverAt = time.Now().Add(q.handOverAfter)
	}
	messages := q.enqueues
	if m.immediate {
		messages = q.immediates
	}
	r, err := messages.Do(ctx, m)
	if m.immediate && (err != nil || r.Duplicate) {
		q.immediate.give(len(ids))
	}
	if errors.Is(err, batch.ErrClosed) {
		return Result{}, ErrStopped
	}
	if err != nil {
		// Past a writer's taking it, the batch goes on and may store the
		// message; the caller sending the event again finds it a
		// duplicate.
		return Result{}, fmt.Errorf("direct: storing the message: %w", err)
	}
	if r.Duplicate {
		deliveries, err := q.store.ListDeliveries(ctx, r.Message.ID)
		if err != nil {
			return Result{}, fmt.Errorf("direct: %w", err)
		}
		return Result{MessageID: r.Message.ID, Endpoints: len(deliveries), Duplicate: true}, nil
	}
	if !m.immediate {
		q.metrics.FirstAttempts("queued", len(ids))
	} else {
		for _, id := range ids {
			a := deliveryArgs{MessageID: r.Message.ID, EndpointID: id, ApplicationID: appID}
			go q.attemptNow(q.immediateCtx, a, r.Message)
		}
	}
	return Result{MessageID: r.Message.ID, Endpoints: len(ids)}, nil
}

// ErrStopped: Send after Stop.
var ErrStopped = errors.New("direct: the queue is stopped")

// outgoing is a message a Send stores; immediate when the Send makes the
// first attempts itself (immediate.go), and its deliveries have a
// recovery time instead of jobs.
type outgoing struct {
	store.NewMessage
	immediate bool
}

// storeMessages stores a batch of messages in one transaction, with jobs
// due now for the deliveries of those not immediate.
func (q *Queue) storeMessages(ctx context.Context, batch []outgoing) ([]store.EnqueuedMessage, error) {
	messages := make([]store.NewMessage, len(batch))
	for i, m := range batch {
		messages[i] = m.NewMessage
	}
	return q.store.EnqueueMessages(ctx, messages, func(tx store.Tx, stored []int) error {
		var jobs []river.InsertManyParams
		for _, i := range stored {
			if m := batch[i]; !m.immediate {
				jobs = append(jobs, q.jobs(m.Message.ApplicationID, m.Message.ID, m.EndpointIDs)...)
			}
		}
		_, err := q.insertJobs(ctx, tx, jobs)
		return err
	})
}

// riverClient is what the Queue does with River's client of either
// driver besides inserting jobs in a transaction.
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// insertJobs inserts jobs in tx with the client of its driver.
func (q *Queue) insertJobs(ctx context.Context, tx store.Tx, jobs []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	if tx.Postgres != nil {
		return q.pgRiver.InsertManyTx(ctx, tx.Postgres, jobs)
	}
	return q.liteRiver.InsertManyTx(ctx, tx.SQLite, jobs)
}

// deliveryRead is a delivery an attempt reads, with its message; found is
// false when it does not exist.
type deliveryRead struct {
	store.DeliveryMessage
	found bool
}

// readDeliveries reads a batch of deliveries with their messages in one
// query.
func (q *Queue) readDeliveries(ctx context.Context, keys []store.DeliveryKey) ([]deliveryRead, error) {
	read, err := q.store.GetDeliveryMessages(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]deliveryRead, len(keys))
	for i, k := range keys {
		out[i].DeliveryMessage, out[i].found = read[k]
	}
	return out, nil
}

// errSameDelivery: a batch of records holding two attempts of one
// delivery, which RecordAttempts does not take; the batcher writes them
// one by one instead.
var errSameDelivery = errors.New("direct: two attempts of one delivery in a batch")

// recordAttempts records a batch of attempts in one transaction.
func (q *Queue) recordAttempts(ctx context.Context, records []store.AttemptRecord) ([]store.RecordedAttempt, error) {
	seen := make(map[store.DeliveryKey]bool, len(records))
	for _, r := range records {
		k := store.DeliveryKey{MessageID: r.Attempt.MessageID, EndpointID: r.Attempt.EndpointID}
		if seen[k] && len(records) > 1 {
			return nil, errSameDelivery
		}
		seen[k] = true
	}
	return q.store.RecordAttempts(ctx, records)
}

// Errors of Resend, beside store.ErrNotFound for a message that does not
// exist.
var (
	// ErrNoDelivery: the message was not for the endpoint, or, without
	// one, was for no endpoint at all.
	ErrNoDelivery = errors.New("the message was not for the endpoint")
	// ErrEndpointDisabled: the endpoint is disabled, so nothing is sent
	// to it.
	ErrEndpointDisabled = errors.New("the endpoint is disabled")
	// ErrEndpointDeleted: the endpoint was deleted since the message was
	// sent to it.
	ErrEndpointDeleted = errors.New("the endpoint was deleted")
	// ErrPending: the delivery is still pending, attempted on its
	// schedule; resending it then could race with an attempt in progress.
	ErrPending = errors.New("the delivery is still pending")
)

// Resend sends the message messageID of application appID again: its
// delivery to endpointID, or, for "", each of its deliveries to an enabled
// endpoint, is set back to pending with a new job, whatever its status,
// and returns once they are committed. The attempts are the same message
// (the same webhook-id and body), signed anew. A delivery that failed gets
// one more attempt (its count of attempts, which the schedule bounds, is
// kept); one still pending is attempted now besides its scheduled retry,
// and the attempts of both still count towards the schedule.
//
// It returns an error wrapping store.ErrNotFound for a message the
// application does not have, ErrNoDelivery for an endpoint the message was
// not for, and ErrEndpointDisabled or ErrEndpointDeleted for an endpoint
// that may not be sent to; without endpointID, those two only when no
// endpoint of the message may be sent to.
func (q *Queue) Resend(ctx context.Context, appID, messageID, endpointID string) error {
	if _, err := q.store.GetMessage(ctx, appID, messageID); err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	deliveries, err := q.store.ListDeliveries(ctx, messageID)
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	var candidates []string
	pending := false
	for _, d := range deliveries {
		if endpointID != "" && d.EndpointID != endpointID {
			continue
		}
		if d.Status == store.DeliveryPending {
			// Attempted on its schedule anyway; see ErrPending.
			pending = true
			continue
		}
		candidates = append(candidates, d.EndpointID)
	}
	if len(candidates) == 0 {
		switch {
		case pending:
			return fmt.Errorf("direct: message %s: %w", messageID, ErrPending)
		case endpointID == "":
			return fmt.Errorf("direct: message %s went to no endpoint: %w", messageID, ErrNoDelivery)
		}
		return fmt.Errorf("direct: message %s, endpoint %s: %w", messageID, endpointID, ErrNoDelivery)
	}
	var targets []string
	var refused error
	for _, id := range candidates {
		ep, err := q.store.GetEndpoint(ctx, appID, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			refused = fmt.Errorf("direct: endpoint %s: %w", id, ErrEndpointDeleted)
		case err != nil:
			return fmt.Errorf("direct: %w", err)
		case ep.Disabled:
			refused = fmt.Errorf("direct: endpoint %s: %w", id, ErrEndpointDisabled)
		default:
			targets = append(targets, id)
		}
	}
	if len(targets) == 0 {
		return refused
	}
	err = q.store.RequeueDeliveries(ctx, messageID, targets, func(tx store.Tx) error {
		_, err := q.insertJobs(ctx, tx, q.jobs(appID, messageID, targets))
		return err
	})
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	return nil
}

// jobs are the insert parameters of the delivery jobs of the message to
// each of endpointIDs, due now.
func (q *Queue) jobs(appID, messageID string, endpointIDs []string) []river.InsertManyParams {
	params := make([]river.InsertManyParams, len(endpointIDs))
	for i, id := range endpointIDs {
		params[i] = river.InsertManyParams{
			Args:       deliveryArgs{MessageID: messageID, EndpointID: id, ApplicationID: appID},
			InsertOpts: &river.InsertOpts{Queue: queueName, MaxAttempts: maxJobAttempts},
		}
	}
	return params
}

// worker works delivery jobs: one attempt each time.
type worker struct {
	river.WorkerDefaults[deliveryArgs]
	q *Queue
}

func (w *worker) Work(ctx context.Context, job *river.Job[deliveryArgs]) error {
	return w.q.attempt(ctx, job.Args)
}

// attempt makes one attempt of the delivery a, and returns what River is
// to do with the job: nil when it is done, a snooze to attempt again later,
// a cancel when there is nothing more to do, or another error (of the
// database) to have River retry it.
func (q *Queue) attempt(ctx context.Context, a deliveryArgs) error {
	read, err := q.reads.Do(ctx, store.DeliveryKey{MessageID: a.MessageID, EndpointID: a.EndpointID})
	if err != nil {
		return err
	}
	if !read.found {
		// The message went with its application.
		return river.JobCancel(fmt.Errorf("message %s is gone", a.MessageID))
	}
	d, msg := read.Delivery, read.Message
	if d.Status != store.DeliveryPending {
		// Done already, by a process that died before River heard of it.
		return nil
	}
	ep, err := q.endpoint(ctx, a.ApplicationID, a.EndpointID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return q.giveUp(ctx, a, "endpoint deleted")
	case err != nil:
		return err
	case ep.Disabled:
		return q.giveUp(ctx, a, "endpoint disabled")
	}

	if !q.inFlight.acquire(ctx, ep.ID, busyWait) {
		return river.JobSnooze(busySnooze)
	}
	start := q.now()
	res := q.send(ctx, ep, msg, start)
	q.inFlight.release(ep.ID)
	var attemptErr *delivery.AttemptError
	if errors.As(res.Err, &attemptErr) && attemptErr.Kind == delivery.KindCanceled {
		// Cut short by the queue stopping: not an attempt.
		return river.JobSnooze(0)
	}
	return q.conclude(ctx, a, d.Attempts+1, start, res)
}

// conclude records the attempt number of the delivery a, started at start
// with the result res, and returns what River is to do with its job, as
// attempt does.
func (q *Queue) conclude(ctx context.Context, a deliveryArgs, number int, start time.Time, res delivery.Result) error {
	verdict, delay := q.schedule.Next(number, res, rand.Float64)
	q.metrics.DeliveryAttempt(verdict.String(), res.Status, res.Duration)
	status := store.DeliveryPending
	switch verdict {
	case delivery.Delivered:
		status = store.DeliveryDelivered
	case delivery.Gone, delivery.Failed:
		status = store.DeliveryFailed
	}
	record := store.Attempt{
		MessageID:      a.MessageID,
		EndpointID:     a.EndpointID,
		At:             start,
		ResponseStatus: res.Status,
		Duration:       res.Duration,
		ResponseBody:   res.Body,
	}
	if res.Err != nil {
		record.Error = res.Err.Error()
	}
	// The attempt was made: record it even when the job's context ends.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if verdict == delivery.Gone {
		// Disabled before the delivery is seen to fail.
		if err := q.store.DisableEndpoint(recordCtx, a.ApplicationID, a.EndpointID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		q.metrics.EndpointDisabled("gone")
		q.logger.Warn("direct: endpoint answered 410 Gone and is disabled", "application_id", a.ApplicationID, "endpoint_id", a.EndpointID)
	}
	// A first attempt made by a Send is retried through its delivery's
	// recovery time; a job's, by snoozing the job.
	var recoverAt time.Time
	if verdict == delivery.Retry {
		recoverAt = time.Now().Add(delay)
	}
	recorded, err := q.records.Do(recordCtx, store.AttemptRecord{Attempt: record, Status: status, RecoverAt: recoverAt})
	if err == nil {
		err = recorded.Err
	}
	if errors.Is(err, store.ErrNotFound) {
		// The message went with its application meanwhile.
		return river.JobCancel(fmt.Errorf("message %s is gone", a.MessageID))
	}
	if err != nil {
		return err
	}
	if (verdict == delivery.Retry || verdict == delivery.Failed) && q.failingTooLong(recorded.Attempt.FailingSince) {
		if err := q.disableFailing(recordCtx, a, recorded.Attempt.FailingSince); err != nil {
			return err
		}
		if verdict == delivery.Retry {
			// No more attempts to a disabled endpoint: the message
			// failed for it.
			q.stats.Add(a.ApplicationID, stats.Failed)
			return q.giveUp(recordCtx, a, fmt.Sprintf("endpoint disabled: it failed every attempt since %s", recorded.Attempt.FailingSince.UTC().Format(time.RFC3339)))
		}
	}

	switch verdict {
	case delivery.Delivered:
		return nil
	case delivery.Retry:
		return river.JobSnooze(delay)
	case delivery.Gone:
		return river.JobCancel(fmt.Errorf("endpoint %s answered 410 Gone", a.EndpointID))
	default:
		q.stats.Add(a.ApplicationID, stats.Failed)
		return river.JobCancel(fmt.Errorf("message %s failed for endpoint %s after %d attempts", a.MessageID, a.EndpointID, number))
	}
}

// endpoint returns the endpoint appID/id as the catalog holds it. One that
// the catalog lacks or holds disabled is read from the store: the catalog
// may not have applied a change made on another replica yet (an endpoint
// just created there, or enabled again), and a delivery is given up only on
// the store's word.
func (q *Queue) endpoint(ctx context.Context, appID, id string) (store.Endpoint, error) {
	if ep, ok := q.catalog.Endpoint(appID, id); ok && !ep.Disabled {
		return ep, nil
	}
	return q.store.GetEndpoint(ctx, appID, id)
}

// send signs msg for ep at now and makes the attempt. A secret that cannot
// sign makes a failed attempt that sent nothing.
func (q *Queue) send(ctx context.Context, ep store.Endpoint, msg store.Message, now time.Time) delivery.Result {
	header := make(http.Header, 5)
	// The client sets its own User-Agent.
	if err := webhook.Headers(header, "", ep.Secrets(now), msg.ID, now, msg.Body); err != nil {
		return delivery.Result{Err: fmt.Errorf("signing: %w", err)}
	}
	return q.client.Send(ctx, delivery.Request{URL: ep.URL, Body: msg.Body, Header: header})
}

// failingTooLong reports whether an endpoint failing since since (zero: it
// is not failing) has failed for DisableAfter.
func (q *Queue) failingTooLong(since time.Time) bool {
	return q.disableAfter > 0 && !since.IsZero() && q.now().Sub(since) >= q.disableAfter
}

// disableFailing disables the endpoint of a, which has failed every attempt
// since since.
func (q *Queue) disableFailing(ctx context.Context, a deliveryArgs, since time.Time) error {
	if err := q.store.DisableEndpoint(ctx, a.ApplicationID, a.EndpointID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	q.metrics.EndpointDisabled("failing")
	q.logger.Warn("direct: endpoint failed every attempt for DELIVERY_DISABLE_AFTER and is disabled; enable it again through the API once it works",
		"application_id", a.ApplicationID, "endpoint_id", a.EndpointID,
		"failing_since", since.UTC().Format(time.RFC3339), "disable_after", q.disableAfter.String())
	return nil
}

// giveUp fails the delivery a without an attempt, for reason, and cancels
// its job.
func (q *Queue) giveUp(ctx context.Context, a deliveryArgs, reason string) error {
	if _, err := q.store.GiveUpDelivery(ctx, a.MessageID, a.EndpointID, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return river.JobCancel(fmt.Errorf("message %s not sent to endpoint %s: %s", a.MessageID, a.EndpointID, reason))
}

// endpointLimit bounds the attempts running at once per endpoint: a
// semaphore (a buffered channel) per endpoint, made at its first attempt
// and kept, about 100 bytes each.
type endpointLimit struct {
	max  int
	mu   sync.Mutex
	sems map[string]chan struct{}
}

func newEndpointLimit(max int) *endpointLimit {
	return &endpointLimit{max: max, sems: make(map[string]chan struct{})}
}

// acquire takes a slot of the endpoint, waiting up to wait for one to be
// free, and reports whether it got one.
func (l *endpointLimit) acquire(ctx context.Context, id string, wait time.Duration) bool {
	l.mu.Lock()
	sem, ok := l.sems[id]
	if !ok {
		sem = make(chan struct{}, l.max)
		l.sems[id] = sem
	}
	l.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case sem <- struct{}{}:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

func (l *endpointLimit) release(id string) {
	l.mu.Lock()
	sem := l.sems[id]
	l.mu.Unlock()
	<-sem
}
