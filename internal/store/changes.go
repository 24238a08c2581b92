package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ChangeRetention is how long the change log keeps a change.
const ChangeRetention = 24 * time.Hour

// ChangeKind names what kind of record changed.
type ChangeKind string

// The kinds of record.
const (
	KindToken       ChangeKind = "token"
	KindApplication ChangeKind = "application"
	KindEndpoint    ChangeKind = "endpoint"
	KindFilter      ChangeKind = "filter"
	KindEventType   ChangeKind = "event_type"
)

// ChangeOp names what happened to the record.
type ChangeOp string

// The operations.
const (
	OpCreate ChangeOp = "create"
	OpUpdate ChangeOp = "update"
	OpDelete ChangeOp = "delete"
)

// Change is one entry of the change log.
type Change struct {
	// Seq orders changes; the changes of one transaction share it.
	Seq  int64
	Kind ChangeKind
	Op   ChangeOp
	// ID is the record's id; for KindFilter, the application's id; for
	// KindEventType, the type's name.
	ID string
	// ApplicationID is the application of an endpoint or of a token
	// restricted to one, the application itself for KindApplication and
	// KindFilter, and empty for an unrestricted token and an event type.
	ApplicationID string
	// At is when the change was made, by the clock of the process that
	// made it.
	At time.Time
}

// recordChanges appends changes to the change log within tx, under the next
// sequence number, and prunes the entries older than ChangeRetention. Call it
// last in a transaction: it locks the change log's counter row until the
// transaction ends, so that sequence numbers follow commit order.
func (s *Store) recordChanges(ctx context.Context, tx *sql.Tx, changes ...Change) error {
	var seq int64
	if err := tx.QueryRowContext(ctx,
		`UPDATE change_log SET seq = seq + 1 WHERE id = 1 RETURNING seq`,
	).Scan(&seq); err != nil {
		return fmt.Errorf("recording a change: %w", err)
	}
	now := s.timeArg(s.now())
	for _, c := range changes {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO changes (seq, kind, op, id, application_id, changed_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			seq, string(c.Kind), string(c.Op), c.ID, c.ApplicationID, now,
		); err != nil {
			return fmt.Errorf("recording a change: %w", err)
		}
	}
	var pruned int64
	if err := tx.QueryRowContext(ctx,
		`UPDATE change_log SET pruned_through = COALESCE(
			(SELECT MAX(seq) FROM changes WHERE changed_at < $1), pruned_through)
		WHERE id = 1 RETURNING pruned_through`,
		s.timeArg(s.now().Add(-ChangeRetention)),
	).Scan(&pruned); err != nil {
		return fmt.Errorf("pruning the change log: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq <= $1`, pruned); err != nil {
		return fmt.Errorf("pruning the change log: %w", err)
	}
	return nil
}

// ChangeSeq returns the sequence number of the latest change: where a new
// poller of ChangesSince starts.
func (s *Store) ChangeSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.read.QueryRowContext(ctx, `SELECT seq FROM change_log WHERE id = 1`).Scan(&seq); err != nil {
		return 0, dbError("reading the change sequence", err)
	}
	return seq, nil
}

// ChangesSince returns the changes after sequence number since, in order, and
// the sequence number to ask for next time (since itself when nothing
// changed). It returns ErrChangesPruned when changes after since have been
// pruned; the caller must then forget everything it derived from the store
// and start again from ChangeSeq.
func (s *Store) ChangesSince(ctx context.Context, since int64) ([]Change, int64, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT seq, kind, op, id, application_id, changed_at FROM changes
		WHERE seq > $1 ORDER BY seq, kind, id`, since)
	if err != nil {
		return nil, 0, dbError("reading changes", err)
	}
	defer rows.Close()
	var changes []Change
	next := since
	for rows.Next() {
		var c Change
		var kind, op string
		if err := rows.Scan(&c.Seq, &kind, &op, &c.ID, &c.ApplicationID, timeCol{&c.At}); err != nil {
			return nil, 0, dbError("reading changes", err)
		}
		c.Kind, c.Op = ChangeKind(kind), ChangeOp(op)
		changes = append(changes, c)
		next = c.Seq
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbError("reading changes", err)
	}
	// Read the prune mark after the changes: a prune between the two reads
	// then shows as ErrChangesPruned (needlessly, but safely) instead of as
	// a silent gap.
	var pruned int64
	if err := s.read.QueryRowContext(ctx, `SELECT pruned_through FROM change_log WHERE id = 1`).Scan(&pruned); err != nil {
		return nil, 0, dbError("reading changes", err)
	}
	if pruned > since {
		return nil, 0, dbError("reading changes", fmt.Errorf("%w (asked after %d, pruned through %d)", ErrChangesPruned, since, pruned))
	}
	return changes, next, nil
}
