// Package catalog is each replica's in-memory view of the management data
// that the request path needs: every API token, the id of every
// application, every application's filter, compiled, every endpoint
// (with its secrets), and every catalogued event type with its schema,
// compiled. With it, authenticating a bearer token, checking that
// an event's application exists, filtering its events and finding the
// endpoints direct delivery sends them to cost no database query, and a change made on
// any replica reaches every replica within a few seconds.
//
// # Consistency
//
// Start loads a snapshot of every token and application from the store,
// reading the change log's sequence number (store.ChangeSeq) before it reads
// the records, so that a change committed while the snapshot loads is both
// possibly in the snapshot and certainly in the change log after that
// number. A goroutine then polls store.ChangesSince every PollInterval and
// applies each change by reading that one record again: a record found
// replaces what the catalog held, a record gone (store.ErrNotFound) is
// dropped. Reading the record instead of trusting the change makes applying
// a change idempotent and order-proof: whatever was read, a later change of
// the same record is read again. Deleting an application appends one change,
// for the application only, because the database deletes its tokens, its
// filter and its endpoints by cascade; the catalog drops them itself. A filter is compiled
// once, when it is loaded or changes; one that no longer compiles drops
// every event of its application (see Filter). An event type's schema too
// is compiled once, when the type is loaded or changes (its updated_at
// versions it); one that no longer compiles makes every event of the type
// invalid (see eventtype.Type). When the
// change log no longer holds every change since the catalog's sequence number
// (store.ErrChangesPruned, after a day away), the catalog loads a whole new
// snapshot and swaps it in.
//
// A change made on another replica thus applies here within PollInterval
// (default 1 s) plus the time of one poll. Sync polls at once and returns
// when every change committed before the call has applied: the management
// API calls it after its own writes, so that the replica that answered
// applies its change before it answers. Concurrent Sync calls share a poll
// when one started after they did.
//
// A poll that fails (the database is down) changes nothing: the catalog
// keeps serving its last snapshot and the next poll starts from the same
// sequence number. The failure is logged once per streak of failures, and
// the recovery once.
//
// # Expiry and last use
//
// A token's ExpiresAt is checked at each use against Options.Now, since
// expiry is not a change. Each successful Authenticate records the time of
// use in memory; the polling goroutine writes those times with
// store.TouchTokens at most once per TouchInterval (default 1 min), and once
// more at Close, so a token's last_used_at lags by up to that interval and
// many uses cost one write. A write that fails keeps its times for the next.
//
// # Memory
//
// The catalog holds every token (id, name, scopes, application id, hash,
// times), every application id and every compiled filter. BenchmarkMemory measures the cost, with
// go test -run '^$' -bench Memory -benchtime 1x ./internal/catalog/: about
// 50 bytes per application (ids of 15 characters) and about 400 bytes per
// token, so 100,000 applications and 100,000 tokens take about 45 MB.
package catalog
