package pgtest_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gwook/gwook/test/pgtest"
	"github.com/gwook/gwook/test/proc"
)

// databaseExists asks the server whether a database of that name exists.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.BaseURL())
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatalf("querying pg_database: %v", err)
	}
	return exists
}

func TestNewDatabaseIsFreshAndDroppedAfterTheTest(t *testing.T) {
	if os.Getenv("GWOOK_TEST_POSTGRES") == "off" {
		t.Skip("GWOOK_TEST_POSTGRES=off")
	}
	var first, second string
	var open *pgx.Conn // still connected when the subtest's cleanup drops the database
	defer func() {
		if open != nil {
			_ = open.Close(context.Background())
		}
	}()
	t.Run("create", func(t *testing.T) {
		first = pgtest.NewDatabase(t)
		second = pgtest.NewDatabase(t)
		if first == second {
			t.Fatalf("two databases share the URL %s", first)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, first)
		if err != nil {
			t.Fatalf("connecting to the new database: %v", err)
		}
		open = conn
		var db string
		var tables int
		if err := conn.QueryRow(ctx, `SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')`).Scan(&db, &tables); err != nil {
			t.Fatalf("querying the new database: %v", err)
		}
		if !strings.HasPrefix(db, pgtest.NamePrefix) || "/"+db != mustPath(t, first) {
			t.Fatalf("connected to %q through %s", db, first)
		}
		if tables != 0 {
			t.Fatalf("the new database has %d tables, want 0", tables)
		}
		if !databaseExists(t, db) {
			t.Fatalf("database %s does not exist during the test", db)
		}
	})
	for _, u := range []string{first, second} {
		name := strings.TrimPrefix(mustPath(t, u), "/")
		if databaseExists(t, name) {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

func mustPath(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parsing %s: %v", raw, err)
	}
	return u.Path
}

// fakeTB records how NewDatabase ended a test. Fatalf and Skip stop the
// goroutine, as testing.T's do.
type fakeTB struct {
	testing.TB
	fatal   string
	skipped bool
}

func (f *fakeTB) Helper()        {}
func (f *fakeTB) Cleanup(func()) {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) { f.skipped = true; runtime.Goexit() }

// runNewDatabase calls NewDatabase on a fakeTB in a goroutine of its own.
func runNewDatabase(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pgtest.NewDatabase(f)
	}()
	<-done
	return f
}

func TestNewDatabaseFailsWhenPostgresDoesNotAnswer(t *testing.T) {
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GWOOK_TEST_POSTGRES", "")
	t.Setenv("GWOOK_TEST_POSTGRES_URL", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", port))
	f := runNewDatabase(t)
	if f.skipped || !strings.Contains(f.fatal, "GWOOK_TEST_POSTGRES") {
		t.Fatalf("with no server: skipped=%v, fatal=%q; want a failure that names the variables", f.skipped, f.fatal)
	}
}

func TestNewDatabaseSkipsWhenTurnedOff(t *testing.T) {
	t.Setenv("GWOOK_TEST_POSTGRES", "off")
	f := runNewDatabase(t)
	if !f.skipped || f.fatal != "" {
		t.Fatalf("with GWOOK_TEST_POSTGRES=off: skipped=%v, fatal=%q; want a skip", f.skipped, f.fatal)
	}
}
