package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

//go:embed migrations
var migrations embed.FS

// migrationTable is where goose records the applied versions. It is not
// goose's default name, so that another goose-migrated program sharing the
// database keeps its own history.
const migrationTable = "gwook_migrations"

// migrationLockID is the key of the PostgreSQL advisory lock held while
// migrating: "gwook" in ASCII. Goose's default key is left to other programs.
const migrationLockID int64 = 0x677700776f6f6b

// MigrateResult tells what a migration run did.
type MigrateResult struct {
	// Applied lists the versions applied by this run, oldest first; empty
	// when the schema was already current.
	Applied []int64
	// Version is the schema version after the run.
	Version int64
}

// migrate applies the embedded migrations that the database lacks.
func (s *Store) migrate(ctx context.Context) (MigrateResult, error) {
	dir, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return MigrateResult{}, fmt.Errorf("store: migrations: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithTableName(migrationTable)}
	dialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
		opts = append(opts, goose.WithSessionLocker(advisoryLock{}))
	}
	p, err := goose.NewProvider(dialect, s.write, dir, opts...)
	if err != nil {
		return MigrateResult{}, fmt.Errorf("store: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return MigrateResult{}, fmt.Errorf("store: migrating: %w", err)
	}
	var res MigrateResult
	for _, r := range results {
		res.Applied = append(res.Applied, r.Source.Version)
	}
	res.Version, err = p.GetDBVersion(ctx)
	if err != nil {
		return MigrateResult{}, fmt.Errorf("store: reading the schema version: %w", err)
	}
	// River's tables hold the delivery jobs; River versions its schema
	// itself, in river_migration.
	if err := s.migrateRiver(ctx); err != nil {
		return MigrateResult{}, err
	}
	return res, nil
}

// advisoryLock is goose's session locker for PostgreSQL: a session-level
// advisory lock that blocks until it is granted or ctx ends. (Goose's own
// locker polls every five seconds instead, which makes a replica that starts
// just after another wait up to five seconds for nothing.) The lock goes with
// the session, so a migrator that dies releases it.
type advisoryLock struct{}

func (advisoryLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	return nil
}

func (advisoryLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", migrationLockID).Scan(&released); err != nil {
		return fmt.Errorf("releasing the migration lock: %w", err)
	}
	if !released {
		return errors.New("releasing the migration lock: it was not held")
	}
	return nil
}
