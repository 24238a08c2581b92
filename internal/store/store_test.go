package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

func openSQLite(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(ctxFor(t), "", t.TempDir())
	if err != nil {
		t.Fatalf("opening SQLite: %v", err)
	}
	t.Cleanup(s.Close)
	if s.Dialect() != store.SQLite || s.PgxPool() != nil {
		t.Fatalf("dialect %s, pool %v; want SQLite without a pool", s.Dialect(), s.PgxPool())
	}
	return s
}

func openPostgres(t *testing.T) *store.Store {
	t.Helper()
	return openPostgresAt(t, pgtest.NewDatabase(t))
}

// openPostgresAt opens a Store (a replica, with a pool of its own) on the
// database at url.
func openPostgresAt(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(ctxFor(t), url, "")
	if err != nil {
		t.Fatalf("opening PostgreSQL: %v", err)
	}
	t.Cleanup(s.Close)
	if s.Dialect() != store.Postgres || s.PgxPool() == nil {
		t.Fatalf("dialect %s, pool %v; want PostgreSQL with a pool", s.Dialect(), s.PgxPool())
	}
	return s
}

func TestSQLite(t *testing.T) { runConformance(t, openSQLite) }

func TestPostgres(t *testing.T) { runConformance(t, openPostgres) }

var _ = context.Background
var _ = time.Now
