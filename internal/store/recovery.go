package store

import (
	"context"
	"time"
)

// Recovery of deliveries without a River job.
//
// The replica that accepts an event makes the first attempt of each of its
// deliveries itself, so they are stored without a River job and with a
// recovery time instead (NewMessage.RecoverAt): the time after which the
// replica is taken for dead. Recording the attempt clears it, or, for an
// attempt to retry, sets it to the retry's time (AttemptRecord.RecoverAt).
// Every replica calls RecoverDeliveries now and then: a delivery whose
// recovery time has come gets a River job, in the transaction that clears
// it, so each is carried by exactly one job from then on.

// RecoveredDelivery is a delivery that RecoverDeliveries took from its
// recovery time, for a River job to carry.
type RecoveredDelivery struct {
	MessageID     string
	EndpointID    string
	ApplicationID string
}

// RecoverDeliveries takes up to limit deliveries whose recovery time is at
// or before due, earliest first, clears their recovery time and calls
// enqueue with the transaction and them, to insert their jobs in it; the
// whole commits or fails together. On PostgreSQL a delivery another replica
// is taking, or whose attempt is being recorded, is skipped (FOR UPDATE
// SKIP LOCKED). It returns how many deliveries it took.
func (s *Store) RecoverDeliveries(ctx context.Context, due time.Time, limit int, enqueue func(tx Tx, taken []RecoveredDelivery) error) (int, error) {
	query := `SELECT d.message_id, d.endpoint_id, m.application_id
		FROM deliveries d JOIN messages m ON m.id = d.message_id
		WHERE d.recover_at <= $1 ORDER BY d.recover_at LIMIT $2`
	if s.dialect == Postgres {
		query += ` FOR UPDATE OF d SKIP LOCKED`
	}
	// Most passes find nothing: a read says so without taking a writer
	// (SQLite has one) or a transaction.
	var found int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE recover_at <= $1 LIMIT 1) AS d`, s.timeArg(due)).Scan(&found)
	if err != nil {
		return 0, dbError("looking for deliveries to recover", err)
	}
	if found == 0 {
		return 0, nil
	}
	var taken []RecoveredDelivery
	err = s.InJobTx(ctx, func(tx Tx) error {
		taken = taken[:0]
		rows, err := tx.query(ctx, query, s.timeArg(due), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d RecoveredDelivery
			if err := rows.Scan(&d.MessageID, &d.EndpointID, &d.ApplicationID); err != nil {
				rows.Close()
				return err
			}
			taken = append(taken, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(taken) == 0 {
			return err
		}
		keys := make([]DeliveryKey, len(taken))
		for i, d := range taken {
			keys[i] = DeliveryKey{MessageID: d.MessageID, EndpointID: d.EndpointID}
		}
		update, args := appendKeys([]byte(`UPDATE deliveries SET recover_at = NULL WHERE (message_id, endpoint_id) IN `), nil, keys)
		if _, err := tx.exec(ctx, string(update), args...); err != nil {
			return err
		}
		return enqueue(tx, taken)
	})
	if err != nil {
		return 0, dbError("recovering deliveries", err)
	}
	return len(taken), nil
}

// RecoverNow sets the recovery time of the message's delivery to the
// endpoint to now, when it has one: its first attempt is left to
// RecoverDeliveries and River's workers.
func (s *Store) RecoverNow(ctx context.Context, k DeliveryKey) error {
	_, err := s.write.ExecContext(ctx,
		`UPDATE deliveries SET recover_at = $1 WHERE message_id = $2 AND endpoint_id = $3 AND recover_at IS NOT NULL`,
		s.timeArg(s.now()), k.MessageID, k.EndpointID)
	if err != nil {
		return dbError("handing a delivery over", err)
	}
	return nil
}
