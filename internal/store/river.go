package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"

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
