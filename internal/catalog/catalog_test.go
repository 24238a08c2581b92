package catalog_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

// replicaDeadline is how long a change may take to reach another replica.
const replicaDeadline = 5 * time.Second

// testDB is one test database, which any number of Stores (replicas) open.
type testDB struct {
	url string // PostgreSQL; empty for SQLite
	dir string // SQLite's data directory
}

// forEachDatabase runs fn on a fresh SQLite file and on a fresh PostgreSQL
// database.
func forEachDatabase(t *testing.T, fn func(t *testing.T, db testDB)) {
	t.Run("SQLite", func(t *testing.T) { fn(t, testDB{dir: t.TempDir()}) })
	t.Run("Postgres", func(t *testing.T) { fn(t, testDB{url: pgtest.NewDatabase(t)}) })
}

// open opens one more Store on the database, closed when the test ends.
func (db testDB) open(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(ctxFor(t), db.url, db.dir)
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// exec runs statements on the database behind the store's back.
func (db testDB) exec(t testing.TB, stmts ...string) {
	t.Helper()
	driver, dsn := "pgx", db.url
	if db.url == "" {
		driver, dsn = "sqlite", "file:"+filepath.Join(db.dir, store.SQLiteFile)+"?_busy_timeout=5000"
	}
	conn, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, stmt := range stmts {
		if _, err := conn.ExecContext(ctxFor(t), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// quiet is a logger for tests that do not look at the log.
var quiet = slog.New(slog.DiscardHandler)

// start starts a catalog of st, closed when the test ends.
func start(t *testing.T, st *store.Store, opts catalog.Options) *catalog.Catalog {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	c := catalog.New(st, opts)
	if err := c.Start(ctxFor(t)); err != nil {
		t.Fatalf("starting the catalog: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func mustSync(t *testing.T, c *catalog.Catalog) {
	t.Helper()
	if err := c.Sync(ctxFor(t)); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// newApp creates an application with a fresh id.
func newApp(t *testing.T, st *store.Store) string {
	t.Helper()
	id := fmt.Sprintf("app-%016x", rand.Uint64())
	if _, err := st.CreateApplication(ctxFor(t), store.Application{ID: id, Name: "test " + id}); err != nil {
		t.Fatalf("creating application %s: %v", id, err)
	}
	return id
}

// newToken creates a token restricted to appID (none when empty) and returns
// it with its value.
func newToken(t *testing.T, st *store.Store, appID string, expiresAt *time.Time) (store.Token, string) {
	t.Helper()
	scopes := []string{"admin"}
	if appID != "" {
		scopes = []string{"manage", "read"}
	}
	tok, value, err := st.CreateToken(ctxFor(t), store.NewToken{
		Name: "test token", Scopes: scopes, ApplicationID: appID, ExpiresAt: expiresAt,
	})
	if err != nil {
		t.Fatalf("creating a token: %v", err)
	}
	return tok, value
}

// mustAuthenticate fails the test unless value authenticates as tok.
func mustAuthenticate(t *testing.T, c *catalog.Catalog, value string, tok store.Token) {
	t.Helper()
	got, err := c.Authenticate(value)
	if err != nil {
		t.Fatalf("authenticating token %s: %v", tok.ID, err)
	}
	if got.ID != tok.ID || got.Name != tok.Name || !slices.Equal(got.Scopes, tok.Scopes) ||
		got.ApplicationID != tok.ApplicationID || !store.TokenHashEqual(got.Hash, tok.Hash) ||
		!got.CreatedAt.Equal(tok.CreatedAt) {
		t.Fatalf("authenticated %+v, want %+v", got, tok)
	}
}

// mustRefuse fails the test unless authenticating value fails with want.
func mustRefuse(t *testing.T, c *catalog.Catalog, value string, want error) {
	t.Helper()
	if got, err := c.Authenticate(value); !errors.Is(err, want) {
		t.Fatalf("authenticating: got %+v, %v; want error %v", got, err, want)
	}
}

// eventually waits until cond holds, for at most replicaDeadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(replicaDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, replicaDeadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func authenticates(c *catalog.Catalog, value string) bool {
	_, err := c.Authenticate(value)
	return err == nil
}

func TestAuthenticate(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		stA, stB := db.open(t), db.open(t)
		before, beforeValue := newToken(t, stA, "", nil)
		a := start(t, stA, catalog.Options{})
		b := start(t, stB, catalog.Options{})
		mustAuthenticate(t, a, beforeValue, before)
		mustAuthenticate(t, b, beforeValue, before)

		appID := newApp(t, stA)
		after, afterValue := newToken(t, stA, appID, nil)
		mustSync(t, a)
		mustAuthenticate(t, a, afterValue, after)
		eventually(t, "a token created on one replica, authenticated on another", func() bool {
			return authenticates(b, afterValue)
		})
		mustAuthenticate(t, b, afterValue, after)

		// Values that are no token.
		mustRefuse(t, a, store.NewTokenValue(), catalog.ErrUnknownToken)
		mustRefuse(t, a, strings.TrimPrefix(afterValue, store.TokenPrefix), catalog.ErrUnknownToken)
		mustRefuse(t, a, afterValue+"x", catalog.ErrUnknownToken)
		mustRefuse(t, a, "", catalog.ErrUnknownToken)

		// The caller's copy does not reach the snapshot.
		got, _ := a.Authenticate(afterValue)
		got.Scopes[0] = "admin"
		got.Hash[0] ^= 1
		mustAuthenticate(t, a, afterValue, after)
	})
}

func TestDeletedToken(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		stA, stB := db.open(t), db.open(t)
		tok, value := newToken(t, stA, "", nil)
		kept, keptValue := newToken(t, stA, "", nil)
		a := start(t, stA, catalog.Options{})
		b := start(t, stB, catalog.Options{})
		mustAuthenticate(t, b, value, tok)

		if err := stA.DeleteToken(ctxFor(t), tok.ID); err != nil {
			t.Fatal(err)
		}
		mustSync(t, a)
		mustRefuse(t, a, value, catalog.ErrUnknownToken)
		mustAuthenticate(t, a, keptValue, kept)
		eventually(t, "a token deleted on one replica, refused on another", func() bool {
			return !authenticates(b, value)
		})
		mustRefuse(t, b, value, catalog.ErrUnknownToken)
		mustAuthenticate(t, b, keptValue, kept)
	})
}

func TestExpiredToken(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		base := time.Now().UTC().Truncate(time.Second)
		var now atomic.Pointer[time.Time]
		now.Store(&base)
		expiresAt := base.Add(time.Hour)
		tok, value := newToken(t, st, "", &expiresAt)
		c := start(t, st, catalog.Options{Now: func() time.Time { return *now.Load() }})

		mustAuthenticate(t, c, value, tok)
		almost := expiresAt.Add(-time.Microsecond)
		now.Store(&almost)
		mustAuthenticate(t, c, value, tok)
		now.Store(&expiresAt)
		mustRefuse(t, c, value, catalog.ErrExpiredToken)
		later := expiresAt.Add(24 * time.Hour)
		now.Store(&later)
		mustRefuse(t, c, value, catalog.ErrExpiredToken)
	})
}

func TestApplications(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		stA, stB := db.open(t), db.open(t)
		a := start(t, stA, catalog.Options{})
		b := start(t, stB, catalog.Options{})

		appID := newApp(t, stA)
		if a.HasApplication(appID) {
			t.Fatalf("application %s held before Sync", appID)
		}
		restricted, restrictedValue := newToken(t, stA, appID, nil)
		unrestricted, unrestrictedValue := newToken(t, stA, "", nil)
		mustSync(t, a)
		if !a.HasApplication(appID) {
			t.Fatalf("application %s not held after Sync", appID)
		}
		mustAuthenticate(t, a, restrictedValue, restricted)
		eventually(t, "an application created on one replica, held on another", func() bool {
			return b.HasApplication(appID) && authenticates(b, restrictedValue)
		})

		if err := stA.DeleteApplication(ctxFor(t), appID); err != nil {
			t.Fatal(err)
		}
		mustSync(t, a)
		if a.HasApplication(appID) {
			t.Fatalf("application %s held after its deletion and Sync", appID)
		}
		mustRefuse(t, a, restrictedValue, catalog.ErrUnknownToken)
		mustAuthenticate(t, a, unrestrictedValue, unrestricted)
		eventually(t, "an application deleted on one replica, gone from another", func() bool {
			return !b.HasApplication(appID) && !authenticates(b, restrictedValue)
		})
		mustAuthenticate(t, b, unrestrictedValue, unrestricted)
		if a.HasApplication("no-such-app") {
			t.Fatal("an application that never existed is held")
		}
	})
}

// An application deleted and created again under the same id between two
// polls: the first one's tokens are gone, the second one's are there.
func TestApplicationCreatedAgain(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		c := start(t, st, catalog.Options{PollInterval: time.Hour})
		appID := newApp(t, st)
		_, oldValue := newToken(t, st, appID, nil)
		mustSync(t, c)
		if !authenticates(c, oldValue) {
			t.Fatal("the first application's token is refused")
		}

		if err := st.DeleteApplication(ctxFor(t), appID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateApplication(ctxFor(t), store.Application{ID: appID, Name: "again"}); err != nil {
			t.Fatal(err)
		}
		tok, value := newToken(t, st, appID, nil)
		mustSync(t, c)
		if !c.HasApplication(appID) {
			t.Fatalf("application %s, created again, is not held", appID)
		}
		mustRefuse(t, c, oldValue, catalog.ErrUnknownToken)
		mustAuthenticate(t, c, value, tok)
	})
}

func TestLastUsed(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		base := time.Now().UTC().Truncate(time.Second)
		var now atomic.Pointer[time.Time]
		now.Store(&base)
		clock := func() time.Time { return *now.Load() }
		tok, value := newToken(t, st, "", nil)

		// The goroutine writes the time of use.
		c := start(t, st, catalog.Options{Now: clock, TouchInterval: 20 * time.Millisecond})
		mustAuthenticate(t, c, value, tok)
		eventually(t, "the last use written", func() bool {
			got, err := st.GetToken(ctxFor(t), tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.LastUsedAt != nil && got.LastUsedAt.Equal(base)
		})

		// Many uses within one interval make one write, of the last use.
		c2 := start(t, st, catalog.Options{Now: clock, TouchInterval: time.Hour})
		other, otherValue := newToken(t, st, "", nil)
		mustSync(t, c2)
		var last time.Time
		for i := range 100 {
			last = base.Add(time.Duration(i+1) * time.Second)
			now.Store(&last)
			mustAuthenticate(t, c2, value, tok)
			mustAuthenticate(t, c2, otherValue, other)
		}
		if n := catalog.TouchWrites(c2); n != 0 {
			t.Fatalf("%d writes before the interval ended, want 0", n)
		}
		catalog.FlushTouches(ctxFor(t), c2)
		if n := catalog.TouchWrites(c2); n != 1 {
			t.Fatalf("%d writes for 200 uses in one interval, want 1", n)
		}
		for _, id := range []string{tok.ID, other.ID} {
			got, err := st.GetToken(ctxFor(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if got.LastUsedAt == nil || !got.LastUsedAt.Equal(last) {
				t.Fatalf("token %s last used at %v, want %v", id, got.LastUsedAt, last)
			}
		}
		catalog.FlushTouches(ctxFor(t), c2)
		if n := catalog.TouchWrites(c2); n != 1 {
			t.Fatalf("%d writes after a flush with nothing new, want still 1", n)
		}

		// Close writes what is left.
		final := last.Add(time.Minute)
		now.Store(&final)
		mustAuthenticate(t, c2, otherValue, other)
		c2.Close()
		got, err := st.GetToken(ctxFor(t), other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(final) {
			t.Fatalf("after Close, token last used at %v, want %v", got.LastUsedAt, final)
		}
	})
}

// A failed write of last-used times keeps them for the next write.
func TestLastUsedRetried(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		tok, value := newToken(t, st, "", nil)
		base := time.Now().UTC().Truncate(time.Second)
		c := start(t, st, catalog.Options{Now: func() time.Time { return base }, TouchInterval: time.Hour})
		mustAuthenticate(t, c, value, tok)

		db.exec(t, `ALTER TABLE tokens RENAME TO tokens_away`)
		catalog.FlushTouches(ctxFor(t), c)
		if n := catalog.TouchWrites(c); n != 0 {
			t.Fatalf("%d writes succeeded without the tokens table", n)
		}
		db.exec(t, `ALTER TABLE tokens_away RENAME TO tokens`)
		catalog.FlushTouches(ctxFor(t), c)
		if n := catalog.TouchWrites(c); n != 1 {
			t.Fatalf("%d writes, want 1", n)
		}
		got, err := st.GetToken(ctxFor(t), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(base) {
			t.Fatalf("token last used at %v, want %v", got.LastUsedAt, base)
		}
	})
}

// A catalog whose changes were pruned from the change log loads everything
// again.
func TestPrunedChangeLog(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		deleted, deletedValue := newToken(t, st, "", nil)
		goneApp := newApp(t, st)
		c := start(t, st, catalog.Options{PollInterval: time.Hour})
		seq, err := st.ChangeSeq(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		mustAuthenticate(t, c, deletedValue, deleted)

		// Changes the catalog has not polled, made a day ago as far as the
		// change log knows, then pruned by the next write.
		if err := st.DeleteToken(ctxFor(t), deleted.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteApplication(ctxFor(t), goneApp); err != nil {
			t.Fatal(err)
		}
		created, createdValue := newToken(t, st, "", nil)
		db.exec(t, `UPDATE changes SET changed_at = '2000-01-01T00:00:00.000000Z'`)
		appID := newApp(t, st)
		if _, _, err := st.ChangesSince(ctxFor(t), seq); !errors.Is(err, store.ErrChangesPruned) {
			t.Fatalf("the change log was not pruned: %v", err)
		}

		mustSync(t, c)
		mustRefuse(t, c, deletedValue, catalog.ErrUnknownToken)
		mustAuthenticate(t, c, createdValue, created)
		if c.HasApplication(goneApp) || !c.HasApplication(appID) {
			t.Fatalf("after the reload: application %s held %v (want false), %s held %v (want true)",
				goneApp, c.HasApplication(goneApp), appID, c.HasApplication(appID))
		}

		// Polling goes on from the reloaded position.
		if err := st.DeleteToken(ctxFor(t), created.ID); err != nil {
			t.Fatal(err)
		}
		mustSync(t, c)
		mustRefuse(t, c, createdValue, catalog.ErrUnknownToken)
	})
}

// logRecorder keeps the messages of the records logged at each level.
type logRecorder struct {
	mu       sync.Mutex
	messages map[slog.Level][]string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.messages == nil {
		r.messages = map[slog.Level][]string{}
	}
	r.messages[rec.Level] = append(r.messages[rec.Level], rec.Message)
	return nil
}

func (r *logRecorder) count(level slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.messages[level])
}

// waitForPolls waits until the catalog's goroutine has made n more polls.
func waitForPolls(t *testing.T, c *catalog.Catalog, n int64) {
	t.Helper()
	want := catalog.BackgroundPolls(c) + n
	eventually(t, "background polls", func() bool { return catalog.BackgroundPolls(c) >= want })
}

// While polls fail, the catalog serves its snapshot and logs the failure
// once; when they work again it logs that once and applies what changed.
func TestPollFailure(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		stA, stB := db.open(t), db.open(t)
		appID := newApp(t, stA)
		tok, value := newToken(t, stA, appID, nil)
		var log logRecorder
		b := start(t, stB, catalog.Options{PollInterval: 5 * time.Millisecond, Logger: slog.New(&log)})

		db.exec(t, `ALTER TABLE changes RENAME TO changes_away`)
		waitForPolls(t, b, 5)
		if err := b.Sync(ctxFor(t)); err == nil {
			t.Fatal("Sync succeeded without the change log")
		}
		mustAuthenticate(t, b, value, tok)
		if !b.HasApplication(appID) {
			t.Fatal("the application is gone from the snapshot while polls fail")
		}
		if n := log.count(slog.LevelWarn); n != 1 {
			t.Fatalf("%d warnings for one streak of failed polls, want 1", n)
		}

		db.exec(t, `ALTER TABLE changes_away RENAME TO changes`)
		if err := stA.DeleteToken(ctxFor(t), tok.ID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a token deleted after polls work again, refused", func() bool {
			return !authenticates(b, value)
		})
		if n := log.count(slog.LevelInfo); n != 1 {
			t.Fatalf("%d info lines after the failures ended, want 1", n)
		}
		if n := log.count(slog.LevelWarn); n != 1 {
			t.Fatalf("%d warnings, want still 1", n)
		}

		// A store closed under the catalog, and a Sync whose context has
		// ended: the snapshot stays.
		other, otherValue := newToken(t, stA, "", nil)
		mustSync(t, b)
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Sync(canceled); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sync with an ended context: %v, want context.Canceled", err)
		}
		stB.Close()
		waitForPolls(t, b, 3)
		if err := b.Sync(ctxFor(t)); err == nil {
			t.Fatal("Sync succeeded on a closed store")
		}
		mustAuthenticate(t, b, otherValue, other)
		if !b.HasApplication(appID) {
			t.Fatal("the application is gone from the snapshot on a closed store")
		}
	})
}

// Each of many concurrent Sync calls sees the change its caller made before
// it.
func TestConcurrentSync(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		c := start(t, st, catalog.Options{PollInterval: 5 * time.Millisecond})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 5 {
					tok, value, err := st.CreateToken(ctxFor(t), store.NewToken{Name: "t", Scopes: []string{"admin"}})
					if err != nil {
						t.Error(err)
						return
					}
					if err := c.Sync(ctxFor(t)); err != nil {
						t.Error(err)
						return
					}
					if got, err := c.Authenticate(value); err != nil || got.ID != tok.ID {
						t.Errorf("token %s right after Sync: %+v, %v", tok.ID, got, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// Authenticating while changes apply, and while whole snapshots load,
// always finds a token that did not change.
func TestAuthenticateWhileChangesApply(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db testDB) {
		st := db.open(t)
		stable, stableValue := newToken(t, st, "", nil)
		stableApp := newApp(t, st)
		c := start(t, st, catalog.Options{PollInterval: time.Millisecond, TouchInterval: time.Millisecond})

		ctx, stop := context.WithCancel(ctxFor(t))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for ctx.Err() == nil {
					if got, err := c.Authenticate(stableValue); err != nil || got.ID != stable.ID {
						t.Errorf("the stable token: %+v, %v", got, err)
						return
					}
					if !c.HasApplication(stableApp) {
						t.Error("the stable application is not held")
						return
					}
				}
			})
		}
		for i := range 20 {
			appID := newApp(t, st)
			tok, value := newToken(t, st, appID, nil)
			mustSync(t, c)
			mustAuthenticate(t, c, value, tok)
			if i%2 == 0 {
				if err := st.DeleteApplication(ctxFor(t), appID); err != nil {
					t.Fatal(err)
				}
			} else if err := st.DeleteToken(ctxFor(t), tok.ID); err != nil {
				t.Fatal(err)
			}
			if i%5 == 0 {
				// Prune the change log under the catalog: the next poll
				// loads a whole snapshot.
				db.exec(t, `UPDATE changes SET changed_at = '2000-01-01T00:00:00.000000Z'`)
				newApp(t, st)
			}
			mustSync(t, c)
			mustRefuse(t, c, value, catalog.ErrUnknownToken)
		}
		stop()
		wg.Wait()
	})
}

func TestStartAndClose(t *testing.T) {
	st := testDB{dir: t.TempDir()}.open(t)
	c := catalog.New(st, catalog.Options{Logger: quiet, PollInterval: 5 * time.Millisecond})
	defer c.Close()
	if err := c.Sync(ctxFor(t)); err == nil {
		t.Fatal("Sync before Start succeeded")
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Start(canceled); err == nil {
		t.Fatal("Start with an ended context succeeded")
	}

	// A Start that failed may be tried again; the polling outlives the
	// context of Start.
	startCtx, endStart := context.WithCancel(context.Background())
	if err := c.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	endStart()
	if err := c.Start(ctxFor(t)); err == nil {
		t.Fatal("a second Start succeeded")
	}
	tok, value := newToken(t, st, "", nil)
	eventually(t, "a token created after the context of Start ended", func() bool {
		return authenticates(c, value)
	})
	mustAuthenticate(t, c, value, tok)
	c.Close()
	c.Close()
	if err := c.Start(ctxFor(t)); err == nil {
		t.Fatal("Start after Close succeeded")
	}

	closed := catalog.New(st, catalog.Options{Logger: quiet})
	closed.Close()
	if err := closed.Start(ctxFor(t)); err == nil {
		t.Fatal("Start of a catalog never started, after Close, succeeded")
	}
}
