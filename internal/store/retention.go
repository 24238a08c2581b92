package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// MessagePruneBatch is how many messages one transaction of PruneMessages
// deletes at most, with their deliveries and attempts: a few thousand rows,
// so that no prune holds its locks (on SQLite, the one writer) for long.
const MessagePruneBatch = 1000

// PrunedMessages counts what PruneMessages deleted.
type PrunedMessages struct {
	Messages   int64
	Deliveries int64
	Attempts   int64
}

// Rows is the number of rows deleted in all.
func (p PrunedMessages) Rows() int64 { return p.Messages + p.Deliveries + p.Attempts }

func (p *PrunedMessages) add(q PrunedMessages) {
	p.Messages += q.Messages
	p.Deliveries += q.Deliveries
	p.Attempts += q.Attempts
}

// PruneMessages deletes the messages created before createdBefore that no
// delivery is pending for, with their deliveries and attempts, oldest
// first, in transactions of at most MessagePruneBatch messages, until none
// is left or ctx ends. It returns what it deleted, the batches committed
// before an error included.
//
// A message with a pending delivery is kept, however old: its job is still
// to run. A delivery that a resend sets back to pending while its message
// is being pruned is either seen pending (the message is kept) or finds
// the message gone (the resend is refused as not found): on PostgreSQL
// each batch locks the deliveries it deletes, and on SQLite the one writer
// orders the two.
func (s *Store) PruneMessages(ctx context.Context, createdBefore time.Time) (PrunedMessages, error) {
	return s.pruneMessages(ctx, createdBefore, MessagePruneBatch)
}

func (s *Store) pruneMessages(ctx context.Context, createdBefore time.Time, batch int) (PrunedMessages, error) {
	var total PrunedMessages
	for {
		n, more, err := s.pruneMessageBatch(ctx, createdBefore, batch)
		total.add(n)
		if err != nil {
			return total, dbError("pruning messages", err)
		}
		if !more {
			return total, nil
		}
	}
}

// pruneMessageBatch deletes, in one transaction, up to batch of the oldest
// messages that PruneMessages deletes, and reports whether there may be
// more.
func (s *Store) pruneMessageBatch(ctx context.Context, createdBefore time.Time, batch int) (PrunedMessages, bool, error) {
	var pruned PrunedMessages
	var more bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// On PostgreSQL, the messages of another replica's batch are
		// skipped, not waited for.
		lockMessages, lockDeliveries := "", ""
		if s.dialect == Postgres {
			lockMessages, lockDeliveries = ` FOR UPDATE SKIP LOCKED`, ` FOR UPDATE`
		}
		ids, err := queryStrings(ctx, tx,
			`SELECT id FROM messages m WHERE created_at < $1
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = $2)
			ORDER BY created_at, id LIMIT $3`+lockMessages,
			s.timeArg(createdBefore), string(DeliveryPending), batch)
		if err != nil || len(ids) == 0 {
			return err
		}
		more = len(ids) == batch
		// Lock the batch's deliveries, and keep out the messages whose
		// delivery a resend set back to pending since the query above:
		// from here on none can be.
		in, args := inList(ids, 1)
		rows, err := tx.QueryContext(ctx, `SELECT message_id, status FROM deliveries WHERE message_id IN (`+in+`)`+lockDeliveries, args...)
		if err != nil {
			return err
		}
		var requeued []string
		for rows.Next() {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				rows.Close()
				return err
			}
			if status == string(DeliveryPending) {
				requeued = append(requeued, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(requeued) > 0 {
			if ids = without(ids, requeued); len(ids) == 0 {
				return nil
			}
			in, args = inList(ids, 1)
		}
		for _, d := range []struct {
			query string
			n     *int64
		}{
			{`DELETE FROM delivery_attempts WHERE message_id IN (` + in + `)`, &pruned.Attempts},
			{`DELETE FROM deliveries WHERE message_id IN (` + in + `)`, &pruned.Deliveries},
			{`DELETE FROM messages WHERE id IN (` + in + `)`, &pruned.Messages},
		} {
			res, err := tx.ExecContext(ctx, d.query, args...)
			if err != nil {
				return err
			}
			if *d.n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return PrunedMessages{}, false, err
	}
	return pruned, more, nil
}

// queryStrings runs a query of one text column in tx and returns its rows.
func queryStrings(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// inList returns the parameters $first, $first+1, ... for values,
// comma-separated, and values as arguments.
func inList(values []string, first int) (string, []any) {
	var b strings.Builder
	args := make([]any, len(values))
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(first+i))
		args[i] = v
	}
	return b.String(), args
}

// without returns the values not in drop, in their order.
func without(values, drop []string) []string {
	skip := make(map[string]bool, len(drop))
	for _, v := range drop {
		skip[v] = true
	}
	kept := values[:0:0]
	for _, v := range values {
		if !skip[v] {
			kept = append(kept, v)
		}
	}
	return kept
}
