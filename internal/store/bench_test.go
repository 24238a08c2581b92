package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

// BenchmarkAddStats measures one flush of the stats of 5,000 events a
// second, spread over 1,000 applications, for 10 seconds: one minute row of
// 50 events for each application. A flush every 10 seconds makes six
// flushes per minute, so each sixth op starts a new minute (inserting the
// minute rows) and the others add to existing ones; every op adds to the
// day rows.
func BenchmarkAddStats(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(b *testing.B) *store.Store
	}{
		{"SQLite", func(b *testing.B) *store.Store { return openBench(b, "", b.TempDir()) }},
		{"Postgres", func(b *testing.B) *store.Store { return openBench(b, pgtest.NewDatabase(b), "") }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := c.open(b)
			const apps = 1000
			rows := make([]store.StatsRow, apps)
			for i := range rows {
				rows[i] = store.StatsRow{ApplicationID: fmt.Sprintf("customer-%06d", i),
					Counts: store.StatsCounts{Forwarded: 40, Filtered: 8, Duplicate: 1, Failed: 1}}
			}
			start := time.Now().UTC().Truncate(time.Minute)
			flush := 0
			for b.Loop() {
				minute := start.Add(time.Duration(flush/6) * time.Minute)
				for i := range rows {
					rows[i].Minute = minute
				}
				if err := s.AddStats(b.Context(), rows); err != nil {
					b.Fatal(err)
				}
				flush++
			}
			b.ReportMetric(apps, "rows/op")
		})
	}
}

func openBench(b *testing.B, url, dir string) *store.Store {
	b.Helper()
	s, err := store.Open(b.Context(), url, dir)
	if err != nil {
		b.Fatalf("opening the store: %v", err)
	}
	b.Cleanup(s.Close)
	return s
}
