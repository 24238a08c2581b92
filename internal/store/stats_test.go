package store_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
)

// statsBase is a UTC midnight.
var statsBase = time.Date(2030, 3, 4, 0, 0, 0, 0, time.UTC)

// at is statsBase plus d.
func at(d time.Duration) time.Time { return statsBase.Add(d) }

func counts(forwarded, filtered, duplicate, deadLettered, rejected, failed int64) store.StatsCounts {
	return store.StatsCounts{Forwarded: forwarded, Filtered: filtered, Duplicate: duplicate,
		DeadLettered: deadLettered, Rejected: rejected, Failed: failed}
}

func addStats(t *testing.T, s *store.Store, rows ...store.StatsRow) {
	t.Helper()
	mustNot(t, s.AddStats(ctxFor(t), rows), fmt.Sprintf("adding %d stats rows", len(rows)))
}

func queryStats(t *testing.T, s *store.Store, q store.StatsQuery) []store.StatsBucket {
	t.Helper()
	got, err := s.QueryStats(ctxFor(t), q)
	mustNot(t, err, fmt.Sprintf("querying stats %+v", q))
	if got == nil {
		t.Fatalf("querying stats %+v: nil, want a non-nil slice", q)
	}
	for _, b := range got {
		if b.Start.Location() != time.UTC {
			t.Fatalf("bucket start %v is not in UTC", b.Start)
		}
	}
	return got
}

// checkBuckets fails unless got holds the buckets of want (start → counts)
// in order.
func checkBuckets(t *testing.T, what string, got []store.StatsBucket, want ...store.StatsBucket) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b store.StatsBucket) bool { return a.Start.Equal(b.Start) && a.Counts == b.Counts }) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func bucket(start time.Time, c store.StatsCounts) store.StatsBucket {
	return store.StatsBucket{Start: start, Counts: c}
}

func testStatsAdd(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	seq, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the sequence")
	addStats(t, s)
	addStats(t, s, []store.StatsRow{}...)

	// Applications need not exist.
	addStats(t, s,
		store.StatsRow{ApplicationID: "a", Minute: at(time.Minute), Counts: counts(1, 2, 3, 4, 5, 6)},
		store.StatsRow{ApplicationID: "a", Minute: at(2 * time.Minute), Counts: counts(10, 20, 30, 40, 50, 60)},
		store.StatsRow{ApplicationID: "b", Minute: at(time.Minute), Counts: counts(100, 0, 0, 0, 0, 7)},
	)
	// Later calls add to the rows, and rows of one minute in one call add
	// up first.
	addStats(t, s,
		store.StatsRow{ApplicationID: "a", Minute: at(time.Minute), Counts: counts(1, 1, 1, 1, 1, 1)},
		store.StatsRow{ApplicationID: "a", Minute: at(3 * time.Minute), Counts: counts(1, 0, 0, 0, 0, 0)},
		store.StatsRow{ApplicationID: "a", Minute: at(3 * time.Minute), Counts: counts(2, 0, 0, 0, 0, 1)},
		store.StatsRow{ApplicationID: "a", Minute: at(3 * time.Minute), Counts: counts(3, 0, 1, 0, 0, 0)},
	)
	// A row of zeros adds nothing, not even an empty bucket.
	addStats(t, s, store.StatsRow{ApplicationID: "a", Minute: at(4 * time.Minute)})

	hour := store.StatsQuery{ApplicationID: "a", Since: statsBase, Until: at(time.Hour), Granularity: store.Minute}
	checkBuckets(t, "minutes of a", queryStats(t, s, hour),
		bucket(at(time.Minute), counts(2, 3, 4, 5, 6, 7)),
		bucket(at(2*time.Minute), counts(10, 20, 30, 40, 50, 60)),
		bucket(at(3*time.Minute), counts(6, 0, 1, 0, 0, 1)))
	hour.ApplicationID = "b"
	checkBuckets(t, "minutes of b", queryStats(t, s, hour), bucket(at(time.Minute), counts(100, 0, 0, 0, 0, 7)))
	hour.ApplicationID = ""
	checkBuckets(t, "minutes of all", queryStats(t, s, hour),
		bucket(at(time.Minute), counts(102, 3, 4, 5, 6, 14)),
		bucket(at(2*time.Minute), counts(10, 20, 30, 40, 50, 60)),
		bucket(at(3*time.Minute), counts(6, 0, 1, 0, 0, 1)))
	hour.ApplicationID = "nobody"
	checkBuckets(t, "minutes of an application without stats", queryStats(t, s, hour))

	day := store.StatsQuery{ApplicationID: "a", Since: statsBase, Until: at(24 * time.Hour), Granularity: store.Day}
	checkBuckets(t, "day of a", queryStats(t, s, day), bucket(statsBase, counts(18, 23, 35, 45, 56, 68)))
	day.ApplicationID = ""
	checkBuckets(t, "day of all", queryStats(t, s, day), bucket(statsBase, counts(118, 23, 35, 45, 56, 75)))

	// Stats are not changes.
	if now, err := s.ChangeSeq(ctx); err != nil || now != seq {
		t.Fatalf("the change sequence went from %d to %d (%v) by adding stats", seq, now, err)
	}
}

func testStatsRejects(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	valid := store.StatsRow{ApplicationID: "a", Minute: at(time.Minute), Counts: counts(1, 0, 0, 0, 0, 0)}
	for what, bad := range map[string]store.StatsRow{
		"an empty application id": {Minute: at(time.Minute), Counts: counts(1, 0, 0, 0, 0, 0)},
		"a minute plus a second":  {ApplicationID: "a", Minute: at(time.Minute + time.Second), Counts: counts(1, 0, 0, 0, 0, 0)},
		"a minute plus a nanosecond": {ApplicationID: "a", Minute: at(time.Minute + time.Nanosecond),
			Counts: counts(1, 0, 0, 0, 0, 0)},
		"a minute before 1970": {ApplicationID: "a", Minute: time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC),
			Counts: counts(1, 0, 0, 0, 0, 0)},
	} {
		if err := s.AddStats(ctx, []store.StatsRow{valid, bad, valid}); err == nil {
			t.Errorf("AddStats accepted a row with %s", what)
		}
	}
	all := store.StatsQuery{Since: time.Unix(0, 0), Until: at(48 * time.Hour)}
	for _, g := range []store.Granularity{store.Minute, store.Day} {
		all.Granularity = g
		checkBuckets(t, "stats after rejected calls", queryStats(t, s, all))
	}

	// A minute given in another time zone is the same minute; buckets start
	// in UTC.
	india := time.FixedZone("IST", 5*3600+1800)
	addStats(t, s, store.StatsRow{ApplicationID: "a", Minute: at(23*time.Hour + 59*time.Minute).In(india), Counts: counts(1, 0, 0, 0, 0, 0)})
	all.Granularity = store.Minute
	checkBuckets(t, "a minute given in IST", queryStats(t, s, all), bucket(at(23*time.Hour+59*time.Minute), counts(1, 0, 0, 0, 0, 0)))
	all.Granularity = store.Day
	checkBuckets(t, "the UTC day of a minute given in IST", queryStats(t, s, all), bucket(statsBase, counts(1, 0, 0, 0, 0, 0)))
}

// testStatsChunks adds more rows in one call than one statement carries.
func testStatsChunks(t *testing.T, s *store.Store) {
	const apps = 1200
	var rows []store.StatsRow
	var sum int64
	for i := range apps {
		rows = append(rows, store.StatsRow{ApplicationID: fmt.Sprintf("app-%04d", i), Minute: at(5 * time.Minute),
			Counts: counts(int64(i+1), 1, 0, 0, 0, 0)})
		sum += int64(i + 1)
	}
	addStats(t, s, rows...)
	minute := store.StatsQuery{Since: statsBase, Until: at(time.Hour), Granularity: store.Minute}
	day := store.StatsQuery{Since: statsBase, Until: at(24 * time.Hour), Granularity: store.Day}
	checkBuckets(t, "after 1,200 rows", queryStats(t, s, minute), bucket(at(5*time.Minute), counts(sum, apps, 0, 0, 0, 0)))
	checkBuckets(t, "the day after 1,200 rows", queryStats(t, s, day), bucket(statsBase, counts(sum, apps, 0, 0, 0, 0)))

	// Every row twice in one call (2,400 rows, each pair in different
	// statements), adding to existing rows.
	addStats(t, s, append(slices.Clone(rows), rows...)...)
	checkBuckets(t, "after adding every row twice more", queryStats(t, s, minute), bucket(at(5*time.Minute), counts(3*sum, 3*apps, 0, 0, 0, 0)))
	checkBuckets(t, "the day after adding every row twice more", queryStats(t, s, day), bucket(statsBase, counts(3*sum, 3*apps, 0, 0, 0, 0)))
	for _, i := range []int{0, 499, 500, 999, 1000, 1199} {
		q := minute
		q.ApplicationID = fmt.Sprintf("app-%04d", i)
		checkBuckets(t, q.ApplicationID, queryStats(t, s, q), bucket(at(5*time.Minute), counts(3*int64(i+1), 3, 0, 0, 0, 0)))
	}
	top, err := s.TopFiltered(ctxFor(t), statsBase, 2000)
	mustNot(t, err, "finding the most filtered")
	if len(top) != apps || top[0] != (store.ApplicationCount{ApplicationID: "app-0000", Count: 3}) {
		t.Fatalf("most filtered: %d applications, first %+v; want %d, first app-0000 with 3", len(top), top[0], apps)
	}
}

// testStatsConcurrent adds to the same rows from several goroutines at
// once, each call with the rows in its own order.
func testStatsConcurrent(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	const goroutines, calls, apps = 4, 10, 30
	// Minutes on both sides of a midnight, so that day rows are shared too.
	minutes := []time.Time{at(-time.Minute), at(0), at(time.Minute)}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range calls {
				var rows []store.StatsRow
				for a := range apps {
					for _, m := range minutes {
						rows = append(rows, store.StatsRow{ApplicationID: fmt.Sprintf("app-%02d", a), Minute: m, Counts: counts(1, 2, 0, 0, 0, 1)})
					}
				}
				r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
				if err := s.AddStats(ctx, rows); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkConcurrentSums(t, s, goroutines*calls, apps, minutes)
}

// checkConcurrentSums checks the stats that n calls of testStatsConcurrent's
// rows leave.
func checkConcurrentSums(t *testing.T, s *store.Store, n int64, apps int64, minutes []time.Time) {
	t.Helper()
	one := counts(n, 2*n, 0, 0, 0, n)
	all := counts(apps*n, 2*apps*n, 0, 0, 0, apps*n)
	var want []store.StatsBucket
	for _, m := range minutes {
		want = append(want, bucket(m, all))
	}
	q := store.StatsQuery{Since: at(-time.Hour), Until: at(time.Hour), Granularity: store.Minute}
	checkBuckets(t, "minutes of all", queryStats(t, s, q), want...)
	q.ApplicationID = "app-07"
	checkBuckets(t, "minutes of app-07", queryStats(t, s, q),
		bucket(minutes[0], one), bucket(minutes[1], one), bucket(minutes[2], one))
	q = store.StatsQuery{Since: at(-time.Hour), Until: at(time.Hour), Granularity: store.Day}
	checkBuckets(t, "days of all", queryStats(t, s, q), bucket(at(-24*time.Hour), all),
		bucket(statsBase, counts(2*apps*n, 4*apps*n, 0, 0, 0, 2*apps*n)))
}

func testStatsBuckets(t *testing.T, s *store.Store) {
	// One row per minute of interest, each with its own bit in Filtered.
	for i, d := range []time.Duration{-time.Minute, 0, 59 * time.Minute, 60 * time.Minute, 61 * time.Minute,
		23*time.Hour + 59*time.Minute, 24 * time.Hour} {
		addStats(t, s, store.StatsRow{ApplicationID: "a", Minute: at(d), Counts: counts(1, 1<<i, 0, 0, 0, 0)})
	}
	addStats(t, s, store.StatsRow{ApplicationID: "b", Minute: at(30 * time.Minute), Counts: counts(1, 1000, 0, 0, 0, 0)})
	filtered := func(start time.Time, n, f int64) store.StatsBucket { return bucket(start, counts(n, f, 0, 0, 0, 0)) }

	for _, c := range []struct {
		what string
		q    store.StatsQuery
		want []store.StatsBucket
	}{
		{"hours, since rounded down", store.StatsQuery{ApplicationID: "a", Since: at(30 * time.Minute), Until: at(2 * time.Hour), Granularity: store.Hour},
			[]store.StatsBucket{filtered(at(0), 2, 2+4), filtered(at(time.Hour), 2, 8+16)}},
		{"hours, until exclusive", store.StatsQuery{ApplicationID: "a", Since: at(0), Until: at(time.Hour), Granularity: store.Hour},
			[]store.StatsBucket{filtered(at(0), 2, 2+4)}},
		{"hours, until just after a bucket's start", store.StatsQuery{ApplicationID: "a", Since: at(0), Until: at(time.Hour + time.Nanosecond), Granularity: store.Hour},
			[]store.StatsBucket{filtered(at(0), 2, 2+4), filtered(at(time.Hour), 2, 8+16)}},
		{"hours of all applications", store.StatsQuery{Since: at(-time.Second), Until: at(2 * time.Hour), Granularity: store.Hour},
			[]store.StatsBucket{filtered(at(-time.Hour), 1, 1), filtered(at(0), 3, 2+4+1000), filtered(at(time.Hour), 2, 8+16)}},
		{"minutes, since rounded down", store.StatsQuery{ApplicationID: "a", Since: at(59*time.Minute + 30*time.Second), Until: at(61 * time.Minute), Granularity: store.Minute},
			[]store.StatsBucket{filtered(at(59*time.Minute), 1, 4), filtered(at(60*time.Minute), 1, 8)}},
		{"minutes, until exclusive", store.StatsQuery{ApplicationID: "a", Since: at(59 * time.Minute), Until: at(60 * time.Minute), Granularity: store.Minute},
			[]store.StatsBucket{filtered(at(59*time.Minute), 1, 4)}},
		{"minutes, until within a minute", store.StatsQuery{ApplicationID: "a", Since: at(59 * time.Minute), Until: at(60*time.Minute + time.Second), Granularity: store.Minute},
			[]store.StatsBucket{filtered(at(59*time.Minute), 1, 4), filtered(at(60*time.Minute), 1, 8)}},
		{"days, since rounded down", store.StatsQuery{ApplicationID: "a", Since: at(12 * time.Hour), Until: at(24 * time.Hour), Granularity: store.Day},
			[]store.StatsBucket{filtered(at(0), 5, 2+4+8+16+32)}},
		{"days, until just after midnight", store.StatsQuery{ApplicationID: "a", Since: at(0), Until: at(24*time.Hour + time.Second), Granularity: store.Day},
			[]store.StatsBucket{filtered(at(0), 5, 2+4+8+16+32), filtered(at(24*time.Hour), 1, 64)}},
		{"days, since the day before", store.StatsQuery{ApplicationID: "a", Since: at(-time.Second), Until: at(time.Second), Granularity: store.Day},
			[]store.StatsBucket{filtered(at(-24*time.Hour), 1, 1), filtered(at(0), 5, 2+4+8+16+32)}},
		{"days of all applications", store.StatsQuery{Since: at(0), Until: at(48 * time.Hour), Granularity: store.Day},
			[]store.StatsBucket{filtered(at(0), 6, 2+4+8+16+32+1000), filtered(at(24*time.Hour), 1, 64)}},
		{"days, since in another time zone", store.StatsQuery{ApplicationID: "a", Since: at(time.Hour).In(time.FixedZone("X", -10*3600)), Until: at(24 * time.Hour), Granularity: store.Day},
			[]store.StatsBucket{filtered(at(0), 5, 2+4+8+16+32)}},
		{"a range without rows", store.StatsQuery{Since: at(2 * time.Hour), Until: at(3 * time.Hour), Granularity: store.Minute}, nil},
	} {
		checkBuckets(t, c.what, queryStats(t, s, c.q), c.want...)
	}
}

func testStatsQueryErrors(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	for _, q := range []store.StatsQuery{
		{Since: at(0), Until: at(time.Hour), Granularity: "week"},
		{Since: at(0), Until: at(time.Hour)},
		{Since: at(0), Until: at(0), Granularity: store.Minute},
		{Since: at(time.Hour), Until: at(0), Granularity: store.Hour},
	} {
		_, err := s.QueryStats(ctx, q)
		wantErr(t, err, store.ErrInvalidStatsQuery, fmt.Sprintf("querying %+v", q))
	}
	for _, limit := range []int{0, -1} {
		_, err := s.TopFiltered(ctx, at(0), limit)
		wantErr(t, err, store.ErrInvalidStatsQuery, fmt.Sprintf("finding the most filtered with limit %d", limit))
	}
}

func testPruneStats(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	one := counts(1, 0, 0, 0, 0, 0)
	for _, app := range []string{"a", "b"} {
		addStats(t, s,
			store.StatsRow{ApplicationID: app, Minute: at(0), Counts: one},
			store.StatsRow{ApplicationID: app, Minute: at(time.Minute), Counts: one},
			store.StatsRow{ApplicationID: app, Minute: at(2 * time.Minute), Counts: one},
			store.StatsRow{ApplicationID: app, Minute: at(24 * time.Hour), Counts: one})
	}
	minutes := store.StatsQuery{Since: at(0), Until: at(48 * time.Hour), Granularity: store.Minute}
	days := store.StatsQuery{Since: at(0), Until: at(48 * time.Hour), Granularity: store.Day}
	two := counts(2, 0, 0, 0, 0, 0)

	n, err := s.PruneStats(ctx, at(0), at(0))
	mustNot(t, err, "pruning nothing")
	if n != 0 {
		t.Fatalf("pruning before the first rows deleted %d rows", n)
	}
	// Minutes before the first minute's end; the days stay.
	n, err = s.PruneStats(ctx, at(time.Minute), at(0))
	mustNot(t, err, "pruning the first minute")
	if n != 2 {
		t.Fatalf("pruning the first minute deleted %d rows, want 2", n)
	}
	checkBuckets(t, "minutes after pruning the first", queryStats(t, s, minutes),
		bucket(at(time.Minute), two), bucket(at(2*time.Minute), two), bucket(at(24*time.Hour), two))
	checkBuckets(t, "days after pruning a minute", queryStats(t, s, days),
		bucket(at(0), counts(6, 0, 0, 0, 0, 0)), bucket(at(24*time.Hour), two))

	// A bound within a minute deletes the minute that starts before it.
	n, err = s.PruneStats(ctx, at(time.Minute+time.Nanosecond), at(24*time.Hour))
	mustNot(t, err, "pruning the second minute and the first day")
	if n != 4 {
		t.Fatalf("pruning the second minute and the first day deleted %d rows, want 4", n)
	}
	checkBuckets(t, "minutes after pruning the second", queryStats(t, s, minutes),
		bucket(at(2*time.Minute), two), bucket(at(24*time.Hour), two))
	checkBuckets(t, "days after pruning the first", queryStats(t, s, days), bucket(at(24*time.Hour), two))
	// The first day's minutes, gone from the day rows, still sum in hours.
	checkBuckets(t, "hours after pruning the first day", queryStats(t, s,
		store.StatsQuery{Since: at(0), Until: at(48 * time.Hour), Granularity: store.Hour}),
		bucket(at(0), two), bucket(at(24*time.Hour), two))

	n, err = s.PruneStats(ctx, at(72*time.Hour), at(72*time.Hour))
	mustNot(t, err, "pruning everything")
	if n != 6 {
		t.Fatalf("pruning everything deleted %d rows, want 6", n)
	}
	checkBuckets(t, "minutes after pruning everything", queryStats(t, s, minutes))
	checkBuckets(t, "days after pruning everything", queryStats(t, s, days))
}

func testTopFiltered(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	top := func(since time.Time, limit int) []store.ApplicationCount {
		t.Helper()
		got, err := s.TopFiltered(ctx, since, limit)
		mustNot(t, err, "finding the most filtered")
		if got == nil {
			t.Fatal("TopFiltered returned nil, want a non-nil slice")
		}
		return got
	}
	if got := top(at(0), 10); len(got) != 0 {
		t.Fatalf("most filtered without stats: %+v", got)
	}
	filtered := func(app string, d time.Duration, n int64) store.StatsRow {
		return store.StatsRow{ApplicationID: app, Minute: at(d), Counts: counts(1, n, 0, 0, 0, 0)}
	}
	addStats(t, s,
		filtered("a", 0, 5),
		filtered("b", 0, 3), filtered("b", 10*time.Minute, 4),
		filtered("c", 10*time.Minute, 7),
		filtered("B", 0, 7),
		filtered("d", 0, 0),              // forwarded only
		filtered("e", -time.Minute, 100), // before since
	)
	type ac = store.ApplicationCount
	check := func(what string, got []ac, want ...ac) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %+v, want %+v", what, got, want)
		}
	}
	// Ties in byte order: upper case first.
	check("since the start", top(at(0), 10), ac{"B", 7}, ac{"b", 7}, ac{"c", 7}, ac{"a", 5})
	check("limited to 3", top(at(0), 3), ac{"B", 7}, ac{"b", 7}, ac{"c", 7})
	check("limited to 1", top(at(0), 1), ac{"B", 7})
	check("since the tenth minute", top(at(10*time.Minute), 10), ac{"c", 7}, ac{"b", 4})
	check("since within a minute", top(at(30*time.Second), 10), ac{"c", 7}, ac{"b", 4})
	check("since a minute earlier", top(at(-time.Minute), 2), ac{"e", 100}, ac{"B", 7})
	check("since later", top(at(11*time.Minute), 10))
}
