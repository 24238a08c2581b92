package store

import "time"

// SetClock makes s read the time from now instead of time.Now.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// MigrationLockID is the key of the advisory lock held while migrating.
const MigrationLockID = migrationLockID
