package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Direct delivery keeps, beside River's jobs, three tables: messages (one
// per accepted event and application), deliveries (the state of a message's
// delivery to one endpoint) and delivery_attempts (every attempt). A message
// is stored with its deliveries, and River's jobs or their recovery times
// (recovery.go), in one transaction (EnqueueMessages); each attempt is
// recorded with the delivery's new state in one transaction
// (RecordAttempts).

// MaxAttemptBody is how much of a response body an attempt record keeps.
const MaxAttemptBody = 1 << 10

// Message is an accepted event as it is delivered to an application's
// endpoints.
type Message struct {
	// ID is "msg_" and 22 characters: the webhook-id of every attempt.
	ID            string
	ApplicationID string
	// EventID is the event's id; an application has one message per
	// event id.
	EventID   string
	EventType string
	// Body is the event exactly as accepted.
	Body      []byte
	CreatedAt time.Time
}

// DeliveryStatus is where a message's delivery to one endpoint stands.
type DeliveryStatus string

// The delivery statuses.
const (
	// DeliveryPending: not delivered yet; an attempt is due or scheduled.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: the endpoint answered 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed: no more attempts will be made.
	DeliveryFailed DeliveryStatus = "failed"
)

// Delivery is the state of a message's delivery to one endpoint.
type Delivery struct {
	MessageID  string
	EndpointID string
	Status     DeliveryStatus
	// Attempts is the number of attempts made.
	Attempts int
	// LastError is why the last attempt failed, or why the delivery was
	// given up without one; empty when it did not fail.
	LastError string
	UpdatedAt time.Time
}

// Attempt is one attempt to deliver a message to an endpoint.
type Attempt struct {
	// ID is "atm_" and 22 characters, set by RecordAttempt.
	ID         string
	MessageID  string
	EndpointID string
	// At is when the attempt started.
	At time.Time
	// ResponseStatus is the HTTP status answered, 0 when there was no
	// response (stored as NULL).
	ResponseStatus int
	Duration       time.Duration // stored in whole milliseconds
	// Error is why the attempt failed; empty when it succeeded.
	Error string
	// ResponseBody is the start of the response body, at most
	// MaxAttemptBody bytes (RecordAttempt truncates a longer one).
	ResponseBody []byte
	// FailingSince, set by RecordAttempt, is when the endpoint's unbroken
	// run of failed attempts began, this one included; zero after an
	// attempt that delivered. It is the endpoint's, across messages and
	// replicas, and is not kept with the attempt.
	FailingSince time.Time
}

// NewMessageID returns a new message id, "msg_" and 22 characters.
func NewMessageID() string { return newID("msg_") }

const messageColumns = `id, application_id, event_id, event_type, body, created_at`

func scanMessage(row interface{ Scan(...any) error }) (Message, error) {
	var m Message
	err := row.Scan(&m.ID, &m.ApplicationID, &m.EventID, &m.EventType, &m.Body, timeCol{&m.CreatedAt})
	return m, err
}

const deliveryColumns = `message_id, endpoint_id, status, attempts, last_error, updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var status string
	err := row.Scan(&d.MessageID, &d.EndpointID, &status, &d.Attempts, &d.LastError, timeCol{&d.UpdatedAt})
	d.Status = DeliveryStatus(status)
	return d, err
}

// tailRow is a row whose Scan fills tail after the destinations it is
// given: the columns a query selects after a scanned record's.
type tailRow struct {
	row  interface{ Scan(...any) error }
	tail []any
}

func (r tailRow) Scan(dest ...any) error { return r.row.Scan(append(dest, r.tail...)...) }

func scanWithTail(row interface{ Scan(...any) error }, tail ...any) tailRow {
	return tailRow{row: row, tail: tail}
}

const attemptColumns = `id, message_id, endpoint_id, created_at, response_status, duration_ms, error, response_body`

func scanAttempt(row interface{ Scan(...any) error }) (Attempt, error) {
	var a Attempt
	var status sql.NullInt64
	var ms int64
	err := row.Scan(&a.ID, &a.MessageID, &a.EndpointID, timeCol{&a.At}, &status, &ms, &a.Error, &a.ResponseBody)
	a.ResponseStatus = int(status.Int64)
	a.Duration = time.Duration(ms) * time.Millisecond
	return a, err
}

// NewMessage is a message to store with the endpoints it goes to.
type NewMessage struct {
	Message     Message
	EndpointIDs []string
	// RecoverAt, when set, is the recovery time of each of its deliveries:
	// they get no River job now, since the caller makes their first
	// attempts, and RecoverDeliveries gives them one from then on.
	RecoverAt time.Time
}

// EnqueuedMessage is what EnqueueMessages did with one NewMessage.
type EnqueuedMessage struct {
	// Message is the message as stored: the new one, or, for a
	// Duplicate, the one the application had.
	Message Message
	// Duplicate is true when the application had a message of the event
	// already (stored before, or earlier in the same batch): nothing new
	// was stored for this one.
	Duplicate bool
}

// EnqueueMessages is EnqueueMessage for a batch, in one transaction and a
// few statements whatever its size: each message that is new is stored
// (with ID NewMessageID when empty and CreatedAt now) with a pending
// delivery to each of its EndpointIDs, then enqueue is called with the
// transaction and the indexes in batch of the messages stored, and the
// whole commits or fails together: an application that does not exist
// fails the batch with ErrNotFound. The result has one entry per message of
// batch, in order.
//
// On PostgreSQL the batch is one statement, and when each of its
// deliveries has a recovery time (NewMessage.RecoverAt), so that none
// needs a job, it runs on its own, without a transaction around it, and
// enqueue is not called: one round trip instead of four.
func (s *Store) EnqueueMessages(ctx context.Context, batch []NewMessage, enqueue func(tx Tx, stored []int) error) ([]EnqueuedMessage, error) {
	now := dbTime(s.now())
	out := make([]EnqueuedMessage, len(batch))
	needsJobs := false
	for i, nm := range batch {
		m := nm.Message
		m.Body = slices.Clone(m.Body)
		if m.Body == nil {
			m.Body = []byte{}
		}
		if m.ID == "" {
			m.ID = NewMessageID()
		}
		m.CreatedAt = now
		out[i].Message = m
		needsJobs = needsJobs || (nm.RecoverAt.IsZero() && len(nm.EndpointIDs) > 0)
	}
	var inserted map[string]bool
	var err error
	if s.dialect == Postgres && (!needsJobs || enqueue == nil) {
		inserted, err = s.insertBatchPostgres(ctx, s.pool, batch, out, now)
	} else {
		err = s.InJobTx(ctx, func(tx Tx) error {
			var err error
			if tx.Postgres != nil {
				inserted, err = s.insertBatchPostgres(ctx, tx.Postgres, batch, out, now)
			} else {
				inserted, err = s.insertBatchSQLite(ctx, tx, batch, out, now)
			}
			if err != nil || enqueue == nil {
				return err
			}
			var stored []int
			for i := range out {
				if inserted[out[i].Message.ID] {
					stored = append(stored, i)
				}
			}
			if err := enqueue(tx, stored); err != nil {
				return fmt.Errorf("enqueueing the deliveries: %w", err)
			}
			return nil
		})
	}
	if err != nil {
		return nil, dbError("storing messages", err)
	}
	for i := range out {
		if inserted[out[i].Message.ID] {
			continue
		}
		existing, err := scanMessage(s.read.QueryRowContext(ctx,
			`SELECT `+messageColumns+` FROM messages WHERE application_id = $1 AND event_id = $2`,
			out[i].Message.ApplicationID, out[i].Message.EventID))
		if err != nil {
			return nil, dbError("reading the message of a duplicate event", err)
		}
		out[i] = EnqueuedMessage{Message: existing, Duplicate: true}
	}
	return out, nil
}

// pgQuerier runs a query on PostgreSQL: the pool, or a transaction.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// enqueuePostgres stores a batch of messages, skipping each whose
// application has its event already, and the deliveries of those stored,
// in one statement of fixed text, so that PostgreSQL plans it once: the
// messages are arrays $1-$5, the deliveries $7-$9.
const enqueuePostgres = `WITH m AS (
	INSERT INTO messages (` + messageColumns + `)
	SELECT v.*, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[]) AS v
	ON CONFLICT (application_id, event_id) DO NOTHING
	RETURNING id
), d AS (
	INSERT INTO deliveries (` + deliveryColumns + `, recover_at)
	SELECT v.message_id, v.endpoint_id, $10, 0, '', $6, v.recover_at
	FROM unnest($7::text[], $8::text[], $9::timestamptz[]) AS v (message_id, endpoint_id, recover_at)
	JOIN m ON m.id = v.message_id
)
SELECT id FROM m`

// insertBatchPostgres stores the messages of out, with the deliveries of
// batch, in one statement (enqueuePostgres), and returns the ids of those
// stored.
func (s *Store) insertBatchPostgres(ctx context.Context, q pgQuerier, batch []NewMessage, out []EnqueuedMessage, now time.Time) (map[string]bool, error) {
	n := len(out)
	ids, apps, events, types, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([][]byte, n)
	var deliveryMessages, deliveryEndpoints []string
	var recoverAt []*time.Time
	for i, e := range out {
		m := e.Message
		ids[i], apps[i], events[i], types[i], bodies[i] = m.ID, m.ApplicationID, m.EventID, m.EventType, m.Body
		var at *time.Time
		if r := batch[i].RecoverAt; !r.IsZero() {
			r = dbTime(r)
			at = &r
		}
		for _, ep := range batch[i].EndpointIDs {
			deliveryMessages = append(deliveryMessages, m.ID)
			deliveryEndpoints = append(deliveryEndpoints, ep)
			recoverAt = append(recoverAt, at)
		}
	}
	rows, err := q.Query(ctx, enqueuePostgres, ids, apps, events, types, bodies, now,
		deliveryMessages, deliveryEndpoints, recoverAt, string(DeliveryPending))
	if err != nil {
		return nil, err
	}
	return scanInserted(rows, n)
}

// insertBatchSQLite stores the messages of out, and the deliveries of
// batch of those stored, in tx: a statement each.
func (s *Store) insertBatchSQLite(ctx context.Context, tx Tx, batch []NewMessage, out []EnqueuedMessage, now time.Time) (map[string]bool, error) {
	query := []byte(`INSERT INTO messages (` + messageColumns + `) VALUES `)
	args := []any{s.timeArg(now)}
	for i, e := range out {
		if i > 0 {
			query = append(query, ", "...)
		}
		n := len(args)
		query = fmt.Appendf(query, "($%d, $%d, $%d, $%d, $%d, $1)", n+1, n+2, n+3, n+4, n+5)
		m := e.Message
		args = append(args, m.ID, m.ApplicationID, m.EventID, m.EventType, m.Body)
	}
	query = append(query, ` ON CONFLICT (application_id, event_id) DO NOTHING RETURNING id`...)
	r, err := tx.query(ctx, string(query), args...)
	if err != nil {
		return nil, err
	}
	inserted, err := scanInserted(r, len(out))
	if err != nil {
		return nil, err
	}

	query = []byte(`INSERT INTO deliveries (` + deliveryColumns + `, recover_at) VALUES `)
	args = []any{string(DeliveryPending), s.timeArg(now)}
	rows := 0
	for i := range out {
		if !inserted[out[i].Message.ID] || len(batch[i].EndpointIDs) == 0 {
			continue
		}
		args = append(args, out[i].Message.ID, s.timeArgOrNull(batch[i].RecoverAt))
		id, at := len(args)-1, len(args)
		for _, ep := range batch[i].EndpointIDs {
			if rows > 0 {
				query = append(query, ", "...)
			}
			rows++
			query = fmt.Appendf(query, "($%d, $%d, $1, 0, '', $2, $%d)", id, len(args)+1, at)
			args = append(args, ep)
		}
	}
	if rows > 0 {
		if _, err := tx.exec(ctx, string(query), args...); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// scanInserted reads the ids of the messages a batch's insert returned.
func scanInserted(r rows, n int) (map[string]bool, error) {
	defer r.Close()
	inserted := make(map[string]bool, n)
	for r.Next() {
		var id string
		if err := r.Scan(&id); err != nil {
			return nil, err
		}
		inserted[id] = true
	}
	return inserted, r.Err()
}

// GetMessage returns the message with the given id of the given
// application.
func (s *Store) GetMessage(ctx context.Context, appID, id string) (Message, error) {
	m, err := scanMessage(s.read.QueryRowContext(ctx,
		`SELECT `+messageColumns+` FROM messages WHERE application_id = $1 AND id = $2`, appID, id))
	if err != nil {
		return Message{}, dbError("reading a message", err)
	}
	return m, nil
}

// ListMessages returns a page of the messages of the given application,
// oldest first. An application without messages, or that does not exist,
// has an empty page.
func (s *Store) ListMessages(ctx context.Context, appID string, opts ListOptions) (Page[Message], error) {
	return listPage(ctx, s, opts, listQuery[Message]{what: "listing messages",
		from:   `SELECT ` + messageColumns + ` FROM messages`,
		filter: `application_id = $2`, filterArgs: []any{appID}, scan: scanMessage,
		key: func(m Message) (time.Time, string) { return m.CreatedAt, m.ID }})
}

// DeliveryKey names a message's delivery to one endpoint.
type DeliveryKey struct {
	MessageID  string
	EndpointID string
}

// DeliveryMessage is a delivery's state with its message.
type DeliveryMessage struct {
	Delivery Delivery
	Message  Message
}

// maxKeysPerQuery bounds the deliveries GetDeliveryMessages reads in one
// query.
const maxKeysPerQuery = 250

// GetDeliveryMessages returns the state and the message of each of the
// deliveries keys that exists, in one query per 250 keys: what concurrent
// attempts need, read together.
func (s *Store) GetDeliveryMessages(ctx context.Context, keys []DeliveryKey) (map[DeliveryKey]DeliveryMessage, error) {
	out := make(map[DeliveryKey]DeliveryMessage, len(keys))
	for chunk := range slices.Chunk(keys, maxKeysPerQuery) {
		if err := s.getDeliveryMessages(ctx, chunk, out); err != nil {
			return nil, dbError("reading deliveries and their messages", err)
		}
	}
	return out, nil
}

// appendKeys appends keys to query as a list of rows, (VALUES ($n,
// $n+1), ...), and their values to args.
func appendKeys(query []byte, args []any, keys []DeliveryKey) ([]byte, []any) {
	query = append(query, "(VALUES "...)
	for i, k := range keys {
		if i > 0 {
			query = append(query, ", "...)
		}
		query = fmt.Appendf(query, "($%d, $%d)", len(args)+1, len(args)+2)
		args = append(args, k.MessageID, k.EndpointID)
	}
	return append(query, ')'), args
}

// getDeliveryMessages adds the deliveries keys that exist, with their
// messages, to out.
func (s *Store) getDeliveryMessages(ctx context.Context, keys []DeliveryKey, out map[DeliveryKey]DeliveryMessage) error {
	query := []byte(`SELECT d.message_id, d.endpoint_id, d.status, d.attempts, d.last_error, d.updated_at,
			m.id, m.application_id, m.event_id, m.event_type, m.body, m.created_at
		FROM deliveries d JOIN messages m ON m.id = d.message_id
		WHERE (d.message_id, d.endpoint_id) IN `)
	query, args := appendKeys(query, nil, keys)
	rows, err := s.read.QueryContext(ctx, string(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var dm DeliveryMessage
		m := &dm.Message
		d, err := scanDelivery(scanWithTail(rows, &m.ID, &m.ApplicationID, &m.EventID, &m.EventType, &m.Body, timeCol{&m.CreatedAt}))
		if err != nil {
			return err
		}
		dm.Delivery = d
		out[DeliveryKey{MessageID: d.MessageID, EndpointID: d.EndpointID}] = dm
	}
	return rows.Err()
}

// ListDeliveries returns the message's deliveries, one per endpoint it was
// fanned out to, by endpoint id.
func (s *Store) ListDeliveries(ctx context.Context, messageID string) ([]Delivery, error) {
	of, err := s.DeliveriesOf(ctx, []string{messageID})
	if err != nil {
		return nil, err
	}
	if of[messageID] == nil {
		return []Delivery{}, nil
	}
	return of[messageID], nil
}

// maxIDsPerQuery bounds the ids DeliveriesOf puts in one query's IN list,
// far below the bind parameter limits of SQLite (32,766) and PostgreSQL
// (65,535), and above MaxLimit, so that a page of messages takes one query.
const maxIDsPerQuery = 500

// DeliveriesOf returns the deliveries of each of the messages messageIDs,
// each message's by endpoint id as ListDeliveries orders them, in one
// query for up to 500 ids (a page of messages). A message without
// deliveries, or that does not exist, has no entry.
func (s *Store) DeliveriesOf(ctx context.Context, messageIDs []string) (map[string][]Delivery, error) {
	out := make(map[string][]Delivery, len(messageIDs))
	for ids := range slices.Chunk(messageIDs, maxIDsPerQuery) {
		if err := s.deliveriesOf(ctx, ids, out); err != nil {
			return nil, dbError("listing deliveries", err)
		}
	}
	return out, nil
}

// deliveriesOf adds the deliveries of the messages ids to out.
func (s *Store) deliveriesOf(ctx context.Context, ids []string, out map[string][]Delivery) error {
	in, args := inList(ids, 1)
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+deliveryColumns+` FROM deliveries WHERE message_id IN (`+in+`) ORDER BY message_id, endpoint_id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return err
		}
		out[d.MessageID] = append(out[d.MessageID], d)
	}
	return rows.Err()
}

// AttemptRecord is an attempt to record with the status its delivery
// takes.
type AttemptRecord struct {
	Attempt Attempt
	Status  DeliveryStatus
	// RecoverAt is the delivery's new recovery time when it has one (its
	// first attempt was made by the replica that accepted its event): the
	// retry's time, or zero to clear it. A delivery without one, which a
	// River job carries, keeps none.
	RecoverAt time.Time
}

// RecordedAttempt is what RecordAttempts stored of one AttemptRecord: the
// attempt (with its ID and FailingSince) and the delivery as stored; or
// Err, wrapping ErrNotFound, when the delivery does not exist, and nothing
// was stored for it.
type RecordedAttempt struct {
	Attempt  Attempt
	Delivery Delivery
	Err      error
}

// errNoDelivery is RecordedAttempt.Err for an attempt of no delivery.
var errNoDelivery = fmt.Errorf("store: recording an attempt: %w", ErrNotFound)

// RecordAttempts stores each attempt of records (its ID set here, its
// response body truncated to MaxAttemptBody), adds one to its delivery's
// attempts and sets the delivery's status and last error (the attempt's
// Error): all in one transaction, on PostgreSQL in one statement. An
// attempt with status DeliveryDelivered ends its endpoint's run of failed
// attempts; any other starts one at its At when none is running; an
// endpoint's attempts take effect in the order of their At. The result has
// one entry per record, in order. Records must name distinct deliveries.
func (s *Store) RecordAttempts(ctx context.Context, records []AttemptRecord) ([]RecordedAttempt, error) {
	out := make([]RecordedAttempt, len(records))
	for i, r := range records {
		a := r.Attempt
		a.ID = newID("atm_")
		a.At = dbTime(a.At)
		a.Duration = a.Duration.Truncate(time.Millisecond)
		if len(a.ResponseBody) > MaxAttemptBody {
			a.ResponseBody = a.ResponseBody[:MaxAttemptBody]
		}
		a.ResponseBody = slices.Clip(slices.Clone(a.ResponseBody))
		if a.ResponseBody == nil {
			a.ResponseBody = []byte{}
		}
		out[i].Attempt = a
		out[i].Err = errNoDelivery
	}
	// In the order of At, which the endpoints' runs of failures follow.
	order := make([]int, len(records))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return out[i].Attempt.At.Compare(out[j].Attempt.At) })
	// failingBefore is each endpoint's failing_since before the batch.
	failingBefore := make(map[string]*time.Time)
	var err error
	if s.dialect == Postgres {
		err = s.recordAttemptsPostgres(ctx, records, order, out, failingBefore)
	} else {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			for _, i := range order {
				if err := s.recordAttemptSQLite(ctx, tx, &out[i], records[i].Status, records[i].RecoverAt, failingBefore); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, dbError("recording attempts", err)
	}
	// Each failed attempt's FailingSince is the start of the run of
	// failures it belongs to.
	runs := make(map[string]time.Time)
	for _, i := range order {
		if out[i].Err != nil {
			continue
		}
		a := &out[i].Attempt
		since, seen := runs[a.EndpointID]
		if before := failingBefore[a.EndpointID]; !seen && before != nil {
			since = *before
		}
		switch {
		case records[i].Status == DeliveryDelivered:
			since = time.Time{}
		case since.IsZero():
			since = a.At
		}
		a.FailingSince = since
		runs[a.EndpointID] = since
	}
	return out, nil
}

// appendAttemptArgs appends the values of a's columns (attemptColumns) to
// args: a status of 0 is NULL, the duration whole milliseconds.
func (s *Store) appendAttemptArgs(args []any, a Attempt) []any {
	var responseStatus any
	if a.ResponseStatus != 0 {
		responseStatus = a.ResponseStatus
	}
	return append(args, a.ID, a.MessageID, a.EndpointID, s.timeArg(a.At), responseStatus, a.Duration.Milliseconds(), a.Error, a.ResponseBody)
}

// recordAttemptsPostgres is RecordAttempts' one statement on PostgreSQL:
// one round trip for a batch, where an attempt alone took six statements.
// An endpoint's failing_since changes only when a run of failures starts
// or ends, so a healthy endpoint costs a lookup, not a write. The final
// SELECT sees failing_since as it was before the statement.
func (s *Store) recordAttemptsPostgres(ctx context.Context, records []AttemptRecord, order []int, out []RecordedAttempt, failingBefore map[string]*time.Time) error {
	// The attempts, as arrays: one statement text whatever the batch.
	n := len(records)
	var (
		ids, messages, endpoints, errs, statuses = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		at                                       = make([]time.Time, n)
		responseStatus                           = make([]*int32, n)
		durations                                = make([]int64, n)
		bodies                                   = make([][]byte, n)
		recoverAt                                = make([]*time.Time, n)
	)
	for i, r := range records {
		a := out[i].Attempt
		ids[i], messages[i], endpoints[i], at[i], errs[i], bodies[i] = a.ID, a.MessageID, a.EndpointID, a.At, a.Error, a.ResponseBody
		durations[i], statuses[i] = a.Duration.Milliseconds(), string(r.Status)
		if a.ResponseStatus != 0 {
			status := int32(a.ResponseStatus)
			responseStatus[i] = &status
		}
		if !r.RecoverAt.IsZero() {
			t := dbTime(r.RecoverAt)
			recoverAt[i] = &t
		}
	}
	// Per endpoint, what its attempts, in the order of At, do to its run
	// of failures: end it (the last delivered), start it anew at since
	// (one delivered, then failures from since), or start it at since
	// unless one is running (failures only).
	type runChange struct {
		// delivered: an attempt delivered; ended: the last one did;
		// since: the first failure after the last delivered.
		delivered, ended bool
		since            time.Time
	}
	changes := make(map[string]*runChange)
	var runEndpoints []string
	for _, i := range order {
		a := out[i].Attempt
		c := changes[a.EndpointID]
		if c == nil {
			c = &runChange{}
			changes[a.EndpointID] = c
			runEndpoints = append(runEndpoints, a.EndpointID)
		}
		if records[i].Status == DeliveryDelivered {
			c.delivered, c.ended, c.since = true, true, time.Time{}
			continue
		}
		c.ended = false
		if c.since.IsZero() {
			c.since = a.At
		}
	}
	ended, restarted := make([]bool, len(runEndpoints)), make([]bool, len(runEndpoints))
	since := make([]*time.Time, len(runEndpoints))
	for i, id := range runEndpoints {
		c := changes[id]
		ended[i], restarted[i] = c.ended, c.delivered && !c.ended
		if !c.ended {
			since[i] = &c.since
		}
	}
	rows, err := s.pool.Query(ctx, recordAttemptsQuery, dbTime(s.now()),
		ids, messages, endpoints, at, responseStatus, durations, errs, bodies, statuses, recoverAt,
		runEndpoints, ended, restarted, since)
	if err != nil {
		return err
	}
	defer rows.Close()
	index := make(map[DeliveryKey]int, len(records))
	for i, r := range records {
		index[DeliveryKey{MessageID: r.Attempt.MessageID, EndpointID: r.Attempt.EndpointID}] = i
	}
	for rows.Next() {
		var before *time.Time
		d, err := scanDelivery(scanWithTail(rows, nullTimeCol{&before}))
		if err != nil {
			return err
		}
		i := index[DeliveryKey{MessageID: d.MessageID, EndpointID: d.EndpointID}]
		out[i].Delivery, out[i].Err = d, nil
		failingBefore[d.EndpointID] = before
	}
	return rows.Err()
}

// recordAttemptsQuery is recordAttemptsPostgres' statement: $1 now, the
// attempts in arrays $2-$11, the endpoints' runs of failures in $12-$15.
const recordAttemptsQuery = `WITH v AS (
		SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::integer[], $7::bigint[], $8::text[], $9::bytea[], $10::text[], $11::timestamptz[])
			AS v (id, message_id, endpoint_id, created_at, response_status, duration_ms, error, response_body, status, recover_at)),
	r AS (SELECT * FROM unnest($12::text[], $13::boolean[], $14::boolean[], $15::timestamptz[]) AS r (endpoint_id, ended, restarted, since)),
	d AS (UPDATE deliveries SET attempts = deliveries.attempts + 1, status = v.status, last_error = v.error, updated_at = $1,
			recover_at = CASE WHEN deliveries.recover_at IS NOT NULL THEN v.recover_at END
		FROM v WHERE deliveries.message_id = v.message_id AND deliveries.endpoint_id = v.endpoint_id
		RETURNING deliveries.message_id, deliveries.endpoint_id, deliveries.status, deliveries.attempts, deliveries.last_error, deliveries.updated_at),
	a AS (INSERT INTO delivery_attempts (` + attemptColumns + `)
		SELECT v.id, v.message_id, v.endpoint_id, v.created_at, v.response_status, v.duration_ms, v.error, v.response_body
		FROM v JOIN d USING (message_id, endpoint_id)),
	e AS (UPDATE endpoints SET failing_since = CASE WHEN r.ended THEN NULL WHEN r.restarted THEN r.since ELSE coalesce(endpoints.failing_since, r.since) END
		FROM r WHERE endpoints.id = r.endpoint_id AND r.endpoint_id IN (SELECT endpoint_id FROM d)
		AND CASE WHEN r.ended THEN endpoints.failing_since IS NOT NULL
			WHEN r.restarted THEN endpoints.failing_since IS DISTINCT FROM r.since
			ELSE endpoints.failing_since IS NULL END)
	SELECT d.*, (SELECT failing_since FROM endpoints WHERE id = d.endpoint_id) FROM d`

// recordAttemptSQLite records the attempt of rec in tx, statement by
// statement, and notes its endpoint's failing_since in failingBefore when
// it is the endpoint's first attempt of the batch.
func (s *Store) recordAttemptSQLite(ctx context.Context, tx *sql.Tx, rec *RecordedAttempt, status DeliveryStatus, recoverAt time.Time, failingBefore map[string]*time.Time) error {
	a := rec.Attempt
	d, err := scanDelivery(tx.QueryRowContext(ctx,
		`UPDATE deliveries SET attempts = attempts + 1, status = $1, last_error = $2, updated_at = $3,
			recover_at = CASE WHEN recover_at IS NOT NULL THEN $6 END
		WHERE message_id = $4 AND endpoint_id = $5
		RETURNING `+deliveryColumns, string(status), a.Error, s.timeArg(s.now()), a.MessageID, a.EndpointID, s.timeArgOrNull(recoverAt)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil // rec.Err stays ErrNotFound
	}
	if err != nil {
		return err
	}
	rec.Delivery, rec.Err = d, nil
	_, err = tx.ExecContext(ctx,
		`INSERT INTO delivery_attempts (`+attemptColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		s.appendAttemptArgs(nil, a)...)
	if err != nil {
		return err
	}
	if _, seen := failingBefore[a.EndpointID]; !seen {
		var before *time.Time
		err = tx.QueryRowContext(ctx, `SELECT failing_since FROM endpoints WHERE id = $1`, a.EndpointID).Scan(nullTimeCol{&before})
		if errors.Is(err, sql.ErrNoRows) {
			return nil // the endpoint was deleted
		}
		if err != nil {
			return err
		}
		failingBefore[a.EndpointID] = before
	}
	delivered := status == DeliveryDelivered
	_, err = tx.ExecContext(ctx, `UPDATE endpoints SET failing_since = CASE WHEN $2 THEN NULL ELSE $3 END
		WHERE id = $1 AND (failing_since IS NULL) <> $2`, a.EndpointID, delivered, s.timeArg(a.At))
	return err
}

// GiveUpDelivery marks the message's delivery to the endpoint failed without
// an attempt, with reason as its last error (an endpoint deleted or disabled
// since the message was accepted, say). It returns the delivery as stored,
// or ErrNotFound when it does not exist.
func (s *Store) GiveUpDelivery(ctx context.Context, messageID, endpointID, reason string) (Delivery, error) {
	var d Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanDelivery(tx.QueryRowContext(ctx,
			`UPDATE deliveries SET status = $1, last_error = $2, updated_at = $3, recover_at = NULL
			WHERE message_id = $4 AND endpoint_id = $5
			RETURNING `+deliveryColumns,
			string(DeliveryFailed), reason, s.timeArg(s.now()), messageID, endpointID))
		return err
	})
	if err != nil {
		return Delivery{}, dbError("giving up a delivery", err)
	}
	return d, nil
}

// ListAttempts returns a page of the attempts to deliver the message, to
// every endpoint, oldest first. A message without attempts, or that does
// not exist, has an empty page.
func (s *Store) ListAttempts(ctx context.Context, messageID string, opts ListOptions) (Page[Attempt], error) {
	return listPage(ctx, s, opts, listQuery[Attempt]{what: "listing attempts",
		from:   `SELECT ` + attemptColumns + ` FROM delivery_attempts`,
		filter: `message_id = $2`, filterArgs: []any{messageID}, scan: scanAttempt,
		key: func(a Attempt) (time.Time, string) { return a.At, a.ID }})
}

// DisableEndpoint disables the endpoint with the given id of the given
// application (an endpoint that answered 410 Gone), recording the change as
// UpdateEndpoint does. Disabling a disabled endpoint changes nothing.
func (s *Store) DisableEndpoint(ctx context.Context, appID, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var disabled bool
		if err := tx.QueryRowContext(ctx,
			`SELECT disabled FROM endpoints WHERE application_id = $1 AND id = $2`, appID, id).Scan(&disabled); err != nil {
			return err
		}
		if disabled {
			return nil
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE endpoints SET disabled = $1, updated_at = $2, failing_since = NULL WHERE application_id = $3 AND id = $4`,
			true, s.timeArg(s.now()), appID, id); err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindEndpoint, Op: OpUpdate, ID: id, ApplicationID: appID})
	})
	if err != nil {
		return dbError("disabling an endpoint", err)
	}
	return nil
}

// RequeueDeliveries sets the message's deliveries to each of endpointIDs
// back to pending, then calls enqueue with the transaction, to insert their
// jobs in it, and commits: the deliveries are pending again only with their
// jobs. Attempts and last errors are kept. It returns ErrNotFound, and
// changes nothing, when the message has no delivery to one of endpointIDs.
func (s *Store) RequeueDeliveries(ctx context.Context, messageID string, endpointIDs []string, enqueue func(tx Tx) error) error {
	err := s.InJobTx(ctx, func(tx Tx) error {
		now := s.timeArg(s.now())
		for _, ep := range endpointIDs {
			// Only a delivery that is over is set back: one still pending
			// may be in an attempt whose record would then overwrite the
			// requeue, and the new job would find nothing to do.
			n, err := tx.exec(ctx,
				`UPDATE deliveries SET status = $1, updated_at = $2 WHERE message_id = $3 AND endpoint_id = $4 AND status <> $1`,
				string(DeliveryPending), now, messageID, ep)
			if err != nil {
				return err
			}
			if n == 0 {
				var exists int
				err := tx.queryRow(ctx, `SELECT 1 FROM deliveries WHERE message_id = $1 AND endpoint_id = $2`, messageID, ep).Scan(&exists)
				if err == nil {
					return fmt.Errorf("%w: the delivery to %s is still pending", ErrConflict, ep)
				}
				return err // sql.ErrNoRows: ErrNotFound
			}
		}
		if enqueue != nil {
			if err := enqueue(tx); err != nil {
				return fmt.Errorf("enqueueing the deliveries: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return dbError("requeueing deliveries", err)
	}
	return nil
}
