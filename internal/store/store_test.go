package store_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
	"github.com/gwook/gwook/test/proc"
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

func TestMigrate(t *testing.T) {
	for _, c := range []struct {
		name    string
		url     func(t *testing.T) (url, dir string)
		dialect store.Dialect
	}{
		{"SQLite", func(t *testing.T) (string, string) { return "", t.TempDir() }, store.SQLite},
		{"Postgres", func(t *testing.T) (string, string) { return pgtest.NewDatabase(t), "" }, store.Postgres},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxFor(t)
			url, dir := c.url(t)
			res, err := store.Migrate(ctx, url, dir)
			if err != nil {
				t.Fatalf("migrating a new database: %v", err)
			}
			if !slices.Equal(res.Applied, []int64{1, 2, 3, 4}) || res.Version != 4 {
				t.Fatalf("migrating a new database: %+v, want versions 1 to 4 applied", res)
			}
			res, err = store.Migrate(ctx, url, dir)
			if err != nil {
				t.Fatalf("migrating again: %v", err)
			}
			if len(res.Applied) != 0 || res.Version != 4 {
				t.Fatalf("migrating again: %+v, want nothing applied, version 4", res)
			}
			s, err := store.Open(ctx, url, dir)
			if err != nil {
				t.Fatalf("opening the migrated database: %v", err)
			}
			defer s.Close()
			if s.Dialect() != c.dialect {
				t.Fatalf("dialect %s, want %s", s.Dialect(), c.dialect)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			if _, err := s.CreateApplication(ctx, store.Application{ID: "a", Name: "a"}); err != nil {
				t.Fatalf("writing to the migrated database: %v", err)
			}
		})
	}
}

func TestOpenRefusesOtherURLsWithoutShowingThem(t *testing.T) {
	ctx := ctxFor(t)
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{
		"mysql://user:s3cr3t-pw@127.0.0.1/db",
		"s3cr3t-pw",
		"postgres://user:s3cr3t-pw@127.0.0.1:" + strconv.Itoa(port) + "/db?connect_timeout=5",
		"postgres://user:s3cr3t-pw@127.0.0.1:" + strconv.Itoa(port) + "/db?pool_max_conns=zero",
	} {
		s, err := store.Open(ctx, url, t.TempDir())
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", url)
		}
		t.Logf("Open: %v", err)
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("Open's error shows the password: %v", err)
		}
	}
}

// openAtOnce opens n Stores on url (or dataDir) at the same moment, as
// replicas or processes starting together do, closes each that opened, and
// returns the error of each Open.
func openAtOnce(ctx context.Context, n int, url, dataDir string) []error {
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			s, err := store.Open(ctx, url, dataDir)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	return errs
}
