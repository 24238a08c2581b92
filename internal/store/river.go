package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverDriver returns a River driver on the Store's writing connections:
// riverdatabasesql over the PostgreSQL pool, riversqlite over the single
// SQLite writer connection. Both work in *sql.Tx, so River jobs can be
// inserted in the transactions of the Store's writes (see EnqueueMessage).
// The driver cannot LISTEN: a River client on it must poll (PollOnly).
func (s *Store) RiverDriver() riverdriver.Driver[*sql.Tx] {
	if s.dialect == Postgres {
		return riverdatabasesql.New(s.write)
	}
	return riversqlite.New(s.write)
}

// migrateRiver applies the River migrations that the database lacks, each
// version in a transaction of its own (one adds an enum value that a later
// one uses, so they cannot share one). On PostgreSQL it holds the migration
// lock meanwhile, so that replicas starting together apply River's schema
// once. SQLite has no such lock; processes opening a new file at once may
// collide, and openMigrated tries again, as it does for goose's migrations.
func (s *Store) migrateRiver(ctx context.Context) error {
	migrator, err := rivermigrate.New(s.RiverDriver(), &rivermigrate.Config{
		// River logs each migration at info level; keep it quiet.
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("store: River migrations: %w", err)
	}
	migrate := func() error {
		_, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	}
	if s.dialect == Postgres {
		err = s.underMigrationLock(ctx, migrate)
	} else {
		err = migrate()
	}
	if err != nil {
		return fmt.Errorf("store: applying River's migrations: %w", err)
	}
	return nil
}

// underMigrationLock runs fn holding PostgreSQL's migration lock on a
// connection of its own.
func (s *Store) underMigrationLock(ctx context.Context, fn func() error) error {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var lock advisoryLock
	if err := lock.SessionLock(ctx, conn); err != nil {
		return err
	}
	fnErr := fn()
	// A failed unlock leaves the lock to the session; closing the
	// connection would not end the session of a pooled connection, so
	// discard it instead.
	if err := lock.SessionUnlock(context.WithoutCancel(ctx), conn); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(fnErr, err)
	}
	return fnErr
}

// JobBacklog is the state of a River queue's unfinished jobs.
type JobBacklog struct {
	// Jobs is how many jobs are due, scheduled (a retry, say) or running.
	Jobs int64
	// OldestDue is how long the oldest job that is due, and not running,
	// has waited for a worker; 0 when none waits.
	OldestDue time.Duration
}

// RiverBacklog reads the backlog of the River queue named queue, from
// River's table, in one query.
func (s *Store) RiverBacklog(ctx context.Context, queue string) (JobBacklog, error) {
	// Due: available, or scheduled or retryable with its time come (River
	// makes those available within seconds).
	query := `SELECT count(*), coalesce(extract(epoch FROM now() - min(scheduled_at) FILTER (WHERE state <> 'running' AND scheduled_at <= now())), 0)
		FROM river_job WHERE queue = $1 AND state IN ('available', 'scheduled', 'retryable', 'running', 'pending')`
	if s.dialect == SQLite {
		// River writes SQLite times as datetime('now', 'subsec') does, in
		// UTC, so they compare as text.
		query = `SELECT count(*), coalesce((julianday('now') - julianday(min(scheduled_at) FILTER (WHERE state <> 'running' AND scheduled_at <= datetime('now', 'subsec')))) * 86400.0, 0)
			FROM river_job WHERE queue = $1 AND state IN ('available', 'scheduled', 'retryable', 'running', 'pending')`
	}
	var b JobBacklog
	var seconds float64
	if err := s.read.QueryRowContext(ctx, query, queue).Scan(&b.Jobs, &seconds); err != nil {
		return JobBacklog{}, dbError("reading the job backlog", err)
	}
	b.OldestDue = time.Duration(max(seconds, 0) * float64(time.Second))
	return b, nil
}
