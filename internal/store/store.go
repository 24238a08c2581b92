package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the database behind a Store.
type Dialect string

// The two dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// SQLiteFile is the name of the SQLite database file in the data directory.
const SQLiteFile = "gwook.db"

// sqliteReaders is the size of the SQLite read pool. The driver is pure Go
// and CPU-bound, so more connections than cores gain little; four keep a
// slow read from queueing the others.
const sqliteReaders = 4

// sqliteBusyTimeout is how long a SQLite connection waits for a lock held by
// another process before it fails with SQLITE_BUSY.
const sqliteBusyTimeout = 5 * time.Second

// Errors the Store methods return, wrapped; test with errors.Is.
var (
	// ErrNotFound: the record does not exist, or (for an endpoint or a
	// token) the application it names does not.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a record with the same id (or token hash) exists.
	ErrConflict = errors.New("store: already exists")
	// ErrInvalidPage: a list limit outside 1–MaxLimit, or a cursor that
	// this package did not make.
	ErrInvalidPage = errors.New("store: invalid page request")
	// ErrChangesPruned: the change log no longer holds every change after
	// the sequence number asked for.
	ErrChangesPruned = errors.New("store: changes since that sequence number were pruned")
)

// Store is Gwook's management data in PostgreSQL or SQLite. It is safe for
// concurrent use.
type Store struct {
	dialect Dialect
	// write runs every writing transaction; read runs reads outside
	// transactions. On PostgreSQL they are the same pool; on SQLite write
	// has one connection and read up to sqliteReaders read-only ones.
	write *sql.DB
	read  *sql.DB
	pool  *pgxpool.Pool // nil on SQLite
	now   func() time.Time
}

// Open opens the database named by databaseURL, applies the migrations that
// it lacks, and returns the Store. A postgres:// or postgresql:// URL opens a
// PostgreSQL pool; an empty URL opens the SQLite file SQLiteFile in dataDir,
// creating the directory and the file when they are missing. On PostgreSQL
// Open waits, as long as ctx allows, for another process that is migrating
// the same database.
func Open(ctx context.Context, databaseURL, dataDir string) (*Store, error) {
	s, _, err := openMigrated(ctx, databaseURL, dataDir)
	return s, err
}

// Migrate opens the database as Open does, applies the migrations that it
// lacks, closes it, and reports what it did.
func Migrate(ctx context.Context, databaseURL, dataDir string) (MigrateResult, error) {
	s, res, err := openMigrated(ctx, databaseURL, dataDir)
	if err != nil {
		return MigrateResult{}, err
	}
	s.Close()
	return res, nil
}

// sqliteOpenAttempts bounds how often opening and migrating a SQLite file
// is tried; see openMigrated.
const sqliteOpenAttempts = 5

// openMigrated connects to the database and applies the migrations that it
// lacks.
//
// SQLite has no advisory lock. Processes opening a new file at once (a
// server starting while a command creates the first token) may collide: one
// switching the file to WAL mode while another does, or both finding a
// migration pending, when their transactions run one after the other and the
// second fails, changing nothing, because the first already applied it. So
// on SQLite a failed attempt is retried: the next one finds the file in WAL
// mode and the migration applied, and goes on with the rest. An error that
// is not such a collision fails every attempt, and the last one is returned.
func openMigrated(ctx context.Context, databaseURL, dataDir string) (*Store, MigrateResult, error) {
	attempts := 1
	if databaseURL == "" {
		attempts = sqliteOpenAttempts
	}
	var err error
	for range attempts {
		var s *Store
		if s, err = connect(ctx, databaseURL, dataDir); err == nil {
			var res MigrateResult
			if res, err = s.migrate(ctx); err == nil {
				return s, res, nil
			}
			s.Close()
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, MigrateResult{}, err
}

// connect opens the database without migrating it.
func connect(ctx context.Context, databaseURL, dataDir string) (*Store, error) {
	switch {
	case databaseURL == "":
		return openSQLite(ctx, dataDir)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return openPostgres(ctx, databaseURL)
	default:
		return nil, errors.New("store: the database URL must start with postgres:// or postgresql:// (or be empty for SQLite)")
	}
}

func openPostgres(ctx context.Context, databaseURL string) (*Store, error) {
	// pgxpool.ParseConfig redacts the password from its errors.
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: parsing the PostgreSQL URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: opening PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	// database/sql over the pool lets both dialects share the query code;
	// the pgx pool stays available to code that needs it (PgxPool).
	db := stdlib.OpenDBFromPool(pool)
	return &Store{dialect: Postgres, write: db, read: db, pool: pool, now: time.Now}, nil
}

func openSQLite(ctx context.Context, dataDir string) (*Store, error) {
	if dataDir == "" {
		return nil, errors.New("store: the data directory for SQLite is empty")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating the data directory: %w", err)
	}
	path := filepath.Join(dataDir, SQLiteFile)
	if strings.ContainsAny(path, "?#") {
		// The driver reads what follows '?' as connection parameters.
		return nil, errors.New("store: the data directory's path must not contain '?' or '#'")
	}
	// Create the file before SQLite does, so that it is private: it holds
	// endpoint secrets. SQLite gives its -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: creating the SQLite file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: creating the SQLite file: %w", err)
	}

	common := url.Values{}
	common.Set("_busy_timeout", fmt.Sprint(sqliteBusyTimeout.Milliseconds()))
	common.Set("_foreign_keys", "1")
	common.Set("_journal_mode", "WAL")
	common.Set("_synchronous", "NORMAL")

	w := url.Values{}
	for k, v := range common {
		w[k] = v
	}
	w.Set("_txlock", "immediate")
	write, err := sql.Open("sqlite", "file:"+path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: opening SQLite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// The writer connection switches the file to WAL mode before the
	// readers open it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: opening SQLite: %w", err)
	}

	r := url.Values{}
	for k, v := range common {
		r[k] = v
	}
	r.Del("_journal_mode") // set by the writer; changing it needs a write
	r.Set("_query_only", "1")
	read, err := sql.Open("sqlite", "file:"+path+"?"+r.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: opening SQLite: %w", err)
	}
	read.SetMaxOpenConns(sqliteReaders)
	read.SetMaxIdleConns(sqliteReaders)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("store: opening SQLite: %w", err)
	}
	return &Store{dialect: SQLite, write: write, read: read, now: time.Now}, nil
}

// Close closes the database connections.
func (s *Store) Close() {
	_ = s.write.Close()
	if s.read != s.write {
		_ = s.read.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// Dialect reports which database the Store uses.
func (s *Store) Dialect() Dialect { return s.dialect }

// PgxPool returns the PostgreSQL connection pool, or nil on SQLite.
func (s *Store) PgxPool() *pgxpool.Pool { return s.pool }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// inTx runs fn in a writing transaction and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// dbError maps the database's unique and foreign-key violations to
// ErrConflict and ErrNotFound, and wraps every error with what was being
// done.
func dbError(doing string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalidPage) || errors.Is(err, ErrChangesPruned) {
		return fmt.Errorf("store: %s: %w", doing, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", doing, ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("store: %s: %w", doing, ErrConflict)
		case "23503": // foreign_key_violation
			return fmt.Errorf("store: %s: %w", doing, ErrNotFound)
		}
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return fmt.Errorf("store: %s: %w", doing, ErrConflict)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("store: %s: %w", doing, ErrNotFound)
		}
	}
	return fmt.Errorf("store: %s: %w", doing, err)
}
