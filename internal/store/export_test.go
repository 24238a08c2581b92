package store

import (
	"context"
	"time"
)

// SetClock makes s read the time from now instead of time.Now.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// MigrationLockID is the key of the advisory lock held while migrating.
const MigrationLockID = migrationLockID

// PruneMessagesBatch is PruneMessages with batches of batch messages.
func PruneMessagesBatch(ctx context.Context, s *Store, createdBefore time.Time, batch int) (PrunedMessages, error) {
	return s.pruneMessages(ctx, createdBefore, batch)
}
