package store

import (
	"context"
	"fmt"
	"io/fs"
	"time"
)

// SetClock makes s read the time from now instead of time.Now.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// MigrationLockID is the key of the advisory lock held while migrating.
const MigrationLockID = migrationLockID

// Migrations is the number of migrations of each dialect, numbered 1 to
// Migrations.
func Migrations() int64 {
	files, err := fs.Glob(migrations, "migrations/postgres/*.sql")
	if err != nil {
		panic(err)
	}
	return int64(len(files))
}

// PruneMessagesBatch is PruneMessages with batches of batch messages.
func PruneMessagesBatch(ctx context.Context, s *Store, createdBefore time.Time, batch int) (PrunedMessages, error) {
	return s.pruneMessages(ctx, createdBefore, batch)
}

// EnqueueMessage is EnqueueMessages of one message, for tests: msg with a
// pending delivery to each of endpointIDs, enqueue called when it is
// stored. A duplicate returns the message stored before and an error
// wrapping ErrConflict.
func (s *Store) EnqueueMessage(ctx context.Context, msg Message, endpointIDs []string, enqueue func(tx Tx) error) (Message, error) {
	var fn func(Tx, []int) error
	if enqueue != nil {
		fn = func(tx Tx, stored []int) error {
			if len(stored) == 0 {
				return nil
			}
			return enqueue(tx)
		}
	}
	out, err := s.EnqueueMessages(ctx, []NewMessage{{Message: msg, EndpointIDs: endpointIDs}}, fn)
	if err != nil {
		return Message{}, err
	}
	if out[0].Duplicate {
		return out[0].Message, dbError("storing a message", ErrConflict)
	}
	return out[0].Message, nil
}

// QueryRow runs a query of one row in tx, for tests.
func (tx Tx) QueryRow(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
	return tx.queryRow(ctx, query, args...)
}

// GetDelivery returns the state of the message's delivery to the endpoint.
func (s *Store) GetDelivery(ctx context.Context, messageID, endpointID string) (Delivery, error) {
	d, err := scanDelivery(s.read.QueryRowContext(ctx,
		`SELECT `+deliveryColumns+` FROM deliveries WHERE message_id = $1 AND endpoint_id = $2`, messageID, endpointID))
	if err != nil {
		return Delivery{}, dbError("reading a delivery", err)
	}
	return d, nil
}

// GetDeliveryMessage is GetDeliveryMessages of one key, for tests: the
// delivery and its message, or ErrNotFound when the delivery does not
// exist.
func (s *Store) GetDeliveryMessage(ctx context.Context, messageID, endpointID string) (Delivery, Message, error) {
	key := DeliveryKey{MessageID: messageID, EndpointID: endpointID}
	found, err := s.GetDeliveryMessages(ctx, []DeliveryKey{key})
	if err != nil {
		return Delivery{}, Message{}, err
	}
	dm, ok := found[key]
	if !ok {
		return Delivery{}, Message{}, fmt.Errorf("store: reading a delivery and its message: %w", ErrNotFound)
	}
	return dm.Delivery, dm.Message, nil
}

// RecordAttempt is RecordAttempts of one record, for tests: attempt a with
// the status its delivery takes, or ErrNotFound when the delivery does not
// exist.
func (s *Store) RecordAttempt(ctx context.Context, a Attempt, status DeliveryStatus) (Attempt, Delivery, error) {
	out, err := s.RecordAttempts(ctx, []AttemptRecord{{Attempt: a, Status: status}})
	if err != nil {
		return Attempt{}, Delivery{}, err
	}
	return out[0].Attempt, out[0].Delivery, out[0].Err
}
