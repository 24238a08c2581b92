package store

import (
	"context"
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
