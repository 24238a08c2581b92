package catalog_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/store"
)

// BenchmarkMemory measures the heap that a loaded catalog takes per
// application and per token, for 100,000 of each on SQLite. Run it with
// -run '^$' -bench Memory -benchtime 1x.
func BenchmarkMemory(b *testing.B) {
	// The records are inserted in one statement each, behind the store's
	// back (creating them one by one takes minutes), with ids and names of
	// a realistic size: application ids of 15 characters, token ids of 26.
	const records = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) `
	const n = 100_000
	b.Run("applications", func(b *testing.B) {
		db := testDB{dir: b.TempDir()}
		st := db.open(b)
		db.exec(b, `INSERT INTO applications (id, name, metadata, created_at, updated_at) `+records+
			`SELECT printf('customer-%06d', i), printf('Customer %06d', i), '{}',
				'2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z' FROM n`)
		measureLoad(b, st, n, "bytes/application", func(c *catalog.Catalog) bool {
			return c.HasApplication("customer-000001") && c.HasApplication("customer-100000")
		})
	})
	b.Run("tokens", func(b *testing.B) {
		db := testDB{dir: b.TempDir()}
		st := db.open(b)
		db.exec(b, `INSERT INTO tokens (id, name, scopes, application_id, hash, created_at, expires_at, last_used_at) `+records+
			`SELECT printf('tok_%022d', i), 'ingest token', '["ingest"]', NULL, randomblob(32),
				'2026-01-01T00:00:00.000000Z', NULL, '2026-01-02T00:00:00.000000Z' FROM n`)
		measureLoad(b, st, n, "bytes/token", nil)
	})
}

// measureLoad starts catalogs of st and reports the heap each holds per
// record, for n records. loaded, unless nil, checks that a catalog holds
// the records.
func measureLoad(b *testing.B, st *store.Store, n int, unit string, loaded func(*catalog.Catalog) bool) {
	var perRecord float64
	for b.Loop() {
		before := heapAlloc()
		c := catalog.New(st, catalog.Options{Logger: quiet})
		if err := c.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		perRecord = float64(heapAlloc()-before) / float64(n)
		if loaded != nil && !loaded(c) {
			b.Fatal("the catalog does not hold the applications")
		}
		c.Close()
	}
	b.ReportMetric(perRecord, unit)
}

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkAuthenticate measures the request path: hashing the value and
// finding the token, among 100.
func BenchmarkAuthenticate(b *testing.B) {
	db := testDB{dir: b.TempDir()}
	st := db.open(b)
	var value string
	for range 100 {
		var err error
		if _, value, err = st.CreateToken(b.Context(), store.NewToken{Name: "t", Scopes: []string{"ingest"}}); err != nil {
			b.Fatal(err)
		}
	}
	c := catalog.New(st, catalog.Options{Logger: quiet, TouchInterval: time.Hour})
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Authenticate(value); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
