package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverPostgres returns River's driver on the Store's PostgreSQL pool
// (riverpgxv5, which can LISTEN); nil on SQLite. Its jobs are inserted in
// a Tx's Postgres transaction.
func (s *Store) RiverPostgres() riverdriver.Driver[pgx.Tx] {
	if s.dialect != Postgres {
		return nil
	}
	return riverpgxv5.New(s.pool)
}

// RiverSQLite returns River's driver on the Store's single SQLite writer
// connection (riversqlite, which cannot LISTEN: a client on it polls); nil
// on PostgreSQL. Its jobs are inserted in a Tx's SQLite transaction.
func (s *Store) RiverSQLite() riverdriver.Driver[*sql.Tx] {
	if s.dialect != SQLite {
		return nil
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
	var err error
	if s.dialect == Postgres {
		err = s.underMigrationLock(ctx, func() error { return riverMigrate(ctx, s.RiverPostgres()) })
	} else {
		err = riverMigrate(ctx, s.RiverSQLite())
	}
	if err != nil {
		return fmt.Errorf("store: applying River's migrations: %w", err)
	}
	return nil
}

// riverMigrate applies River's migrations with driver.
func riverMigrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) error {
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{
		// River logs each migration at info level; keep it quiet.
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
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

// JobBacklog is the state of the deliveries not over: River's jobs of a
// queue, and the deliveries waiting for their recovery time
// (RecoverDeliveries), which have no job.
type JobBacklog struct {
	// Jobs is how many jobs are due, scheduled (a retry, say) or running,
	// and how many deliveries wait for their recovery time (their first
	// attempt in progress, or a retry after it).
	Jobs int64
	// OldestDue is how long the oldest job that is due, and not running,
	// or the oldest delivery whose recovery time has come, has waited; 0
	// when none waits.
	OldestDue time.Duration
}

// DeliveryBacklog reads the backlog of the River queue named queue, from
// River's table, and of the deliveries waiting for their recovery time:
// two queries.
func (s *Store) DeliveryBacklog(ctx context.Context, queue string) (JobBacklog, error) {
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

	now := s.now()
	var recovering int64
	var oldest *time.Time
	if err := s.read.QueryRowContext(ctx,
		`SELECT count(*), min(recover_at) FILTER (WHERE recover_at <= $1) FROM deliveries WHERE recover_at IS NOT NULL`,
		s.timeArg(now)).Scan(&recovering, nullTimeCol{&oldest}); err != nil {
		return JobBacklog{}, dbError("reading the deliveries to recover", err)
	}
	b.Jobs += recovering
	if oldest != nil {
		b.OldestDue = max(b.OldestDue, now.Sub(*oldest))
	}
	return b, nil
}
