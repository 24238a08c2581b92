package store

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
)

// Tx is a transaction of the Store's writes in which River jobs are
// inserted with the rows they deliver (see EnqueueMessages and InJobTx): a pgx.Tx on
// PostgreSQL, for River's riverpgxv5 driver, and a *sql.Tx on SQLite, for
// riversqlite. Exactly one of the two is set.
type Tx struct {
	Postgres pgx.Tx
	SQLite   *sql.Tx
}

// InJobTx runs fn in a Tx and commits when it returns nil: for River's
// writes that must commit together, such as replacing a job.
func (s *Store) InJobTx(ctx context.Context, fn func(tx Tx) error) error {
	if s.dialect == SQLite {
		return s.inTx(ctx, func(tx *sql.Tx) error { return fn(Tx{SQLite: tx}) })
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(Tx{Postgres: tx}); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

// exec runs a statement in tx and returns how many rows it changed.
func (tx Tx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if tx.Postgres != nil {
		tag, err := tx.Postgres.Exec(ctx, query, args...)
		return tag.RowsAffected(), err
	}
	res, err := tx.SQLite.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rows are the rows a query of either driver returns.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// sqlRows are database/sql's rows as rows.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// query runs a query in tx.
func (tx Tx) query(ctx context.Context, query string, args ...any) (rows, error) {
	if tx.Postgres != nil {
		return tx.Postgres.Query(ctx, query, args...)
	}
	r, err := tx.SQLite.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

// queryRow runs a query of one row in tx; its Scan returns an error
// wrapping sql.ErrNoRows when there is none.
func (tx Tx) queryRow(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
	if tx.Postgres != nil {
		return tx.Postgres.QueryRow(ctx, query, args...)
	}
	return tx.SQLite.QueryRowContext(ctx, query, args...)
}
