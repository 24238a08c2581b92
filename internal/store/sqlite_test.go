package store_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
)

func TestSQLiteFileIsPrivateAndInWALMode(t *testing.T) {
	ctx := ctxFor(t)
	dir := filepath.Join(t.TempDir(), "data", "nested")
	s, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("opening: %v", err)
	}
	if _, err := s.CreateApplication(ctx, store.Application{ID: "a", Name: "a"}); err != nil {
		t.Fatalf("writing: %v", err)
	}
	path := filepath.Join(dir, store.SQLiteFile)
	// The write-ahead log exists while the store is open.
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	s.Close()

	// WAL mode is a property of the file, seen by any connection.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatalf("reading the journal mode: %v", err)
	}
	if mode != "wal" {
		t.Fatalf("journal mode %q, want wal", mode)
	}
}

func TestSQLiteKeepsDataAcrossReopen(t *testing.T) {
	ctx := ctxFor(t)
	dir := t.TempDir()
	s, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("opening: %v", err)
	}
	_, value, err := s.CreateToken(ctx, store.NewToken{Name: "first", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatalf("creating a token: %v", err)
	}
	s.Close()

	s, err = store.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	tok, err := s.TokenByHash(ctx, store.HashToken(value), time.Now())
	if err != nil || tok.Name != "first" {
		t.Fatalf("the token after reopening: %+v, %v", tok, err)
	}
}

// TestSQLiteTwoProcessesWriteOneFile opens two Stores on one file, as a
// server and a command-line tool do, and writes through both at once: the
// busy timeout and BEGIN IMMEDIATE make the writers wait for each other
// instead of failing with SQLITE_BUSY.
func TestSQLiteTwoProcessesWriteOneFile(t *testing.T) {
	ctx := ctxFor(t)
	dir := t.TempDir()
	a := openSQLiteAt(t, dir)
	b := openSQLiteAt(t, dir)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i, s := range []*store.Store{a, b} {
		for w := range 2 {
			wg.Go(func() {
				for j := range n / 2 {
					id := fmt.Sprintf("s%d-w%d-%02d", i, w, j)
					app, err := s.CreateApplication(ctx, store.Application{ID: id, Name: id})
					if err != nil {
						errs <- fmt.Errorf("creating %s: %w", id, err)
						return
					}
					// Read it back at once, through the read pool.
					if _, err := s.GetApplication(ctx, app.ID); err != nil {
						errs <- fmt.Errorf("reading %s: %w", id, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range []*store.Store{a, b} {
		page, err := s.ListApplications(ctx, store.ListOptions{Limit: store.MaxLimit})
		if err != nil {
			t.Fatalf("listing: %v", err)
		}
		if len(page.Items) != 2*n {
			t.Fatalf("listed %d applications, want %d", len(page.Items), 2*n)
		}
	}
	changes, _, err := b.ChangesSince(ctx, 0)
	if err != nil || len(changes) != 2*n {
		t.Fatalf("%d changes (%v), want %d", len(changes), err, 2*n)
	}
	for i, c := range changes {
		if c.Seq != int64(i+1) {
			t.Fatalf("change %d has seq %d", i, c.Seq)
		}
	}
}

func openSQLiteAt(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(ctxFor(t), "", dir)
	if err != nil {
		t.Fatalf("opening SQLite: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestSQLiteProcessesMigrateTogether opens one new file from several Stores
// at once, as a server and a command-line tool starting together do: each
// Open succeeds and every migration is applied once.
func TestSQLiteProcessesMigrateTogether(t *testing.T) {
	for round := range 5 {
		dir := t.TempDir()
		const processes = 8
		for i, err := range openAtOnce(ctxFor(t), processes, "", dir) {
			if err != nil {
				t.Fatalf("round %d, process %d: %v", round, i, err)
			}
		}
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.SQLiteFile))
		if err != nil {
			t.Fatal(err)
		}
		var versions, distinct int
		err = db.QueryRowContext(ctxFor(t), `SELECT count(*), count(DISTINCT version_id) FROM gwook_migrations`).Scan(&versions, &distinct)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if versions != 5 || distinct != 5 { // goose's version 0, then versions 1 to 4
			t.Fatalf("round %d: %d versions recorded (%d distinct), want 0 to 4 once each", round, versions, distinct)
		}
	}
}
