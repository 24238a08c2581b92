package store

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestSQLitePoolShape checks the documented shape of the SQLite pools: one
// writer connection, up to sqliteReaders read-only ones, and the pragmas on
// every connection.
func TestSQLitePoolShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if n := s.write.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("the writer pool allows %d connections, want 1", n)
	}
	if n := s.read.Stats().MaxOpenConnections; n != sqliteReaders {
		t.Errorf("the read pool allows %d connections, want %d", n, sqliteReaders)
	}
	pragmas := map[string]int64{"foreign_keys": 1, "busy_timeout": sqliteBusyTimeout.Milliseconds(), "synchronous": 1}
	for pool, conn := range map[string]*sql.DB{"write": s.write, "read": s.read} {
		for p, want := range pragmas {
			var got int64
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p).Scan(&got); err != nil {
				t.Fatalf("%s pool: PRAGMA %s: %v", pool, p, err)
			}
			if got != want {
				t.Errorf("%s pool: %s = %d, want %d", pool, p, got, want)
			}
		}
		var mode string
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s pool: journal_mode %q (%v), want wal", pool, mode, err)
		}
	}
	if _, err := s.read.ExecContext(ctx, `DELETE FROM applications`); err == nil {
		t.Error("the read pool accepted a write")
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM applications`); err != nil {
		t.Errorf("the writer refused a write: %v", err)
	}
}
