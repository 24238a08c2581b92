// Package store keeps Gwook's management data — API tokens, applications,
// their webhook endpoints and filters, and counts of the events handled — in
// a SQL database: PostgreSQL for production
// and for any deployment with more than one replica, or an embedded SQLite
// file when no database URL is configured.
//
// # Opening
//
// Open takes the database URL and a data directory. A postgres:// or
// postgresql:// URL opens a pgx v5 connection pool (the pool's own settings,
// such as pool_max_conns, may be given in the URL). An empty URL opens, and
// creates if needed, the SQLite file gwook.db in the data directory, with the
// pure-Go modernc.org/sqlite driver so that the binary stays CGO-free. The
// directory is created with mode 0700 and the file with mode 0600, because it
// holds endpoint secrets and token hashes. Any other URL is an error. Errors
// never show the password that the URL may carry.
//
// Every SQLite connection runs with journal_mode=WAL, synchronous=NORMAL
// (durable in WAL mode except for the last transactions before a power
// loss), foreign_keys=on (without it ON DELETE CASCADE does nothing) and
// busy_timeout=5000 ms. The store keeps two pools on the file: one writer
// connection, and up to four read-only connections (query_only). SQLite
// allows one writer at a time anyway; a single writer connection queues the
// process's writes in Go instead of letting them fail with SQLITE_BUSY, and
// another process writing the same file (such as a command-line tool
// creating a token while the server runs) is waited for, up to the busy
// timeout. The writer's transactions begin IMMEDIATE, taking the write lock
// at their start, so that a transaction that reads before it writes cannot
// fail when another process wrote in between. WAL lets the readers run
// beside the writer, so reads are not queued behind writes.
//
// # Migrations
//
// The schema is embedded in the binary and applied by goose, at Open and by
// Migrate. On PostgreSQL the migrations run under a session-level advisory
// lock (pg_advisory_lock, blocking until the holder is done or the context
// ends), so replicas starting together apply each migration once: the others
// wait, then find nothing left to do. SQLite has no such lock: when two
// processes open a new file at once, the migration transactions run one after
// the other, the second fails without changing anything, and its process
// opens the file again (up to five attempts in all), now finding the
// migration applied. Goose records the applied versions in the table
// gwook_migrations.
//
// Both dialects share one set of queries, written with $1-style parameters,
// which modernc.org/sqlite reads as positional. The schema is written once
// per dialect (migrations/postgres and migrations/sqlite), because the column
// types differ: PostgreSQL has timestamptz, jsonb, bytea and boolean; SQLite
// (STRICT tables) stores times as fixed-width RFC 3339 text in UTC with
// microseconds, so that text order is time order, JSON as text, the hash as
// a blob and booleans as 0 or 1. Times are truncated to microseconds (the
// precision of timestamptz) before they are written, so both dialects read
// back the same values.
//
// # Records
//
// Tokens (ids tok_...), applications (ids chosen by the caller) and
// endpoints (ids ep_..., unless the caller brings one) are created, read,
// listed, changed and deleted through the Store methods. Deleting an
// application deletes its endpoints and tokens (ON DELETE CASCADE). An
// endpoint is always addressed together with its application's id, so one
// application cannot reach another's endpoints: they are ErrNotFound.
//
// Lists are pages in a stable order, oldest first: by created_at, then id,
// read with a keyset (the opaque cursor holds the last row's created_at and
// id), so a listing never repeats a row, nor skips one that exists from its
// first page to its last, whatever is inserted or deleted in between. A row
// created during the listing appears on a later page (its created_at is
// later), unless the clocks of two replicas disagree by more than the time
// between the two requests.
//
// Errors: ErrNotFound for a missing record (also for an endpoint or token
// naming a missing application), ErrConflict when a record with the same id
// exists (unique violations of either dialect), ErrInvalidPage for a limit
// outside 1–250 or a cursor this package did not make. Other errors are the
// database's, wrapped.
//
// # Tokens
//
// A token is "gwk_" and 43 characters of [0-9A-Za-z]: 32 bytes (256 bits)
// from crypto/rand in base 62. Only its SHA-256 hash is stored (HashToken);
// TokenByHash finds a token by the hash of the presented value and refuses an
// expired one, and TokenHashEqual compares two hashes in constant time for a
// cache that keeps them. TouchTokens writes the last-used times of many tokens
// in one transaction and never moves one backwards.
//
// # Endpoint secrets
//
// An endpoint's secret is "whsec_" and the standard base64 of 24 random
// bytes, unless the caller brings one. RotateEndpointSecret makes the current
// secret the previous one, valid for another PreviousSecretTTL (24 hours);
// Endpoint.Secrets lists the secrets that sign at a given time. Rotating again
// within the 24 hours drops the older previous secret: at most two secrets
// are active.
//
// # Filters
//
// An application has at most one Filter, keyed by the application's id:
// PutFilter creates or replaces it, DeleteFilter removes it, and deleting the
// application deletes it too (ON DELETE CASCADE). IncludeTypes keeps nil
// (NULL: every type) apart from an empty list (no type), as an endpoint's
// EventTypes does; an empty Expression (the empty string, never NULL) means
// none. ListFilters pages through every application's filter as the other
// lists do.
//
// # Event types
//
// The catalogue of event types is one table keyed by the type's name:
// CreateEventType, GetEventType, UpdateEventType (which replaces the
// description, the schema and the archived flag), DeleteEventType and
// ListEventTypes, paged as the other lists. The schema is kept as JSON
// (jsonb on PostgreSQL, which keeps neither key order nor spacing), NULL
// for none; the store does not check it (package eventtype does). Each
// change appends a KindEventType change whose ID is the name.
//
// # Stats
//
// AddStats adds counts of events, per application and minute, to two tables
// of integers: one row per application and minute (the minute's start in
// Unix seconds) and one per application and UTC day, so that sums are exact
// and alike on both databases. Each row is an upsert that adds to the row's
// counts (INSERT ... ON CONFLICT DO UPDATE, PostgreSQL and SQLite 3.24 and
// later), in statements of up to 500 rows; rows of the same minute (or day)
// are summed in Go first, because one statement cannot update a row twice.
// Processes adding at once add up exactly, and write the rows in one order,
// so that their transactions cannot deadlock. The counts name applications
// without a foreign key: events of applications not in the database count
// too. QueryStats sums them in minute, hour (from the minute rows) or day
// buckets, for one application or all; PruneStats deletes old minute and day
// rows, each table with its own cut-off, so that days can be kept longer;
// TopFiltered ranks applications by events filtered. Stats are not changes.
//
// # Direct delivery
//
// With Gwook's own delivery, each accepted event is a message (unique per
// application and event id) with a delivery row per endpoint it goes to,
// and each delivery's attempts are recorded. EnqueueMessages writes a
// batch of messages and their deliveries and runs the caller's enqueue
// function in the same transaction (a Tx), where River inserts their jobs:
// River's own tables live in the same database, created by its migrations
// (package rivermigrate) right after Gwook's, under the same advisory lock
// on PostgreSQL. RiverPostgres and RiverSQLite give River the store's
// connections: the pgx pool on PostgreSQL (riverpgxv5, whose Tx is a
// pgx.Tx), and the single writer connection on SQLite (riversqlite, a
// *sql.Tx). GetDeliveryMessages and RecordAttempts read and record the
// attempts of many deliveries in one round trip each.
//
// # Changes
//
// Every create, update and delete of a token, application, endpoint,
// filter or event type appends a Change to a change log in the same transaction, so that caches on
// every replica can poll ChangesSince (say every second) and drop what
// changed, seeing deletions within the poll interval. Polling was chosen
// over PostgreSQL's LISTEN/NOTIFY because it works the same on both
// databases, needs no dedicated connection, and cannot miss a notification
// while a connection is down: a poller that was away simply reads everything
// since the last sequence number it saw.
//
// Sequence numbers come from a one-row counter that each writing transaction
// increments just before it commits. The row lock serialises the writers for
// that last moment, so sequence numbers are handed out in commit order and a
// poller never sees change n+1 before change n. One transaction's changes
// share one sequence number. Deleting an application appends one change for
// the application only: its endpoints, tokens and filter went with it, and a cache
// drops what it holds for that application. Touching tokens is not a change.
// Expiry is not a change either: a token's ExpiresAt is part of the record, and
// a cache checks it on each use.
//
// Changes older than ChangeRetention (24 hours) are deleted by the writes
// that follow; ChangesSince answers ErrChangesPruned to a poller whose
// sequence number is older than that, and the poller must then drop its whole
// cache and start again from ChangeSeq.
package store
