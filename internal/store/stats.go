package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StatsCounts counts events by how Gwook answered them.
type StatsCounts struct {
	Forwarded    int64
	Filtered     int64
	Duplicate    int64
	DeadLettered int64
	Rejected     int64
	Failed       int64
}

// Add adds o to c.
func (c *StatsCounts) Add(o StatsCounts) {
	c.Forwarded += o.Forwarded
	c.Filtered += o.Filtered
	c.Duplicate += o.Duplicate
	c.DeadLettered += o.DeadLettered
	c.Rejected += o.Rejected
	c.Failed += o.Failed
}

// StatsRow is what to add to the counts of one application in one minute.
type StatsRow struct {
	ApplicationID string
	// Minute is the start of the minute, in UTC, truncated to the minute.
	Minute time.Time
	Counts StatsCounts
}

// Granularity is the width of the buckets of a stats query.
type Granularity string

// The granularities.
const (
	Minute Granularity = "minute"
	Hour   Granularity = "hour"
	Day    Granularity = "day"
)

// ErrInvalidStatsQuery: a stats query with an unknown granularity, a time
// range that is empty, or a limit below 1.
var ErrInvalidStatsQuery = errors.New("store: invalid stats query")

// statsChunk is how many rows one upsert statement of AddStats carries. At
// eight parameters a row that is 4,000 parameters, well under SQLite's
// limit (32,766) and PostgreSQL's (65,535).
const statsChunk = 500

// Bucket widths in seconds.
const (
	secondsPerMinute = 60
	secondsPerHour   = 3600
	secondsPerDay    = 86400
)

// statsKey is one row of stats_minute or stats_day: an application and the
// Unix time of the start of its minute or day.
type statsKey struct {
	app   string
	start int64
}

func compareStatsKeys(a, b statsKey) int {
	if c := strings.Compare(a.app, b.app); c != 0 {
		return c
	}
	return cmp.Compare(a.start, b.start)
}

// AddStats adds the counts of every row to its application's minute, and to
// the UTC day the minute is in, in one transaction. Rows of the same
// application and minute add up. A row whose Minute is not the start of a
// minute, or is before 1970, or whose ApplicationID is empty, is an error,
// and then nothing is written. Rows whose counts (summed per minute) are all
// zero are not written. Stats are not changes: the change log gets nothing.
//
// Processes adding to the same rows at once add up exactly: each row is an
// upsert that adds to what the row holds when it runs, and the rows are
// written in one order (minutes before days, each by application and time),
// so that two transactions never wait for each other's locks in a cycle.
func (s *Store) AddStats(ctx context.Context, rows []StatsRow) error {
	minutes := make(map[statsKey]StatsCounts, len(rows))
	for i, r := range rows {
		if r.ApplicationID == "" {
			return fmt.Errorf("store: adding stats: row %d has no application id", i)
		}
		if !r.Minute.Equal(r.Minute.Truncate(time.Minute)) || r.Minute.Unix() < 0 {
			return fmt.Errorf("store: adding stats: row %d: %v is not the start of a minute since 1970", i, r.Minute)
		}
		k := statsKey{r.ApplicationID, r.Minute.Unix()}
		c := minutes[k]
		c.Add(r.Counts)
		minutes[k] = c
	}
	days := make(map[statsKey]StatsCounts)
	for k, c := range minutes {
		if c == (StatsCounts{}) {
			delete(minutes, k)
			continue
		}
		d := statsKey{k.app, floorTo(k.start, secondsPerDay)}
		dc := days[d]
		dc.Add(c)
		days[d] = dc
	}
	if len(minutes) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.upsertStats(ctx, tx, "stats_minute", "minute", minutes); err != nil {
			return err
		}
		return s.upsertStats(ctx, tx, "stats_day", "day", days)
	})
	return dbError("adding stats", err)
}

// upsertStats adds counts to the rows of table, whose time column is
// column, in statements of up to statsChunk rows, in key order.
func (s *Store) upsertStats(ctx context.Context, tx *sql.Tx, table, column string, counts map[statsKey]StatsCounts) error {
	keys := slices.SortedFunc(maps.Keys(counts), compareStatsKeys)
	for chunk := range slices.Chunk(keys, statsChunk) {
		var q strings.Builder
		q.WriteString(`INSERT INTO ` + table + ` (application_id, ` + column +
			`, forwarded, filtered, duplicate, dead_lettered, rejected, failed) VALUES `)
		args := make([]any, 0, 8*len(chunk))
		for i, k := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			for j := range 8 {
				if j > 0 {
					q.WriteString(", ")
				}
				q.WriteString(s.param(len(args) + j + 1))
			}
			q.WriteByte(')')
			c := counts[k]
			args = append(args, k.app, k.start, c.Forwarded, c.Filtered, c.Duplicate, c.DeadLettered, c.Rejected, c.Failed)
		}
		q.WriteString(` ON CONFLICT (application_id, ` + column + `) DO UPDATE SET
			forwarded = ` + table + `.forwarded + excluded.forwarded,
			filtered = ` + table + `.filtered + excluded.filtered,
			duplicate = ` + table + `.duplicate + excluded.duplicate,
			dead_lettered = ` + table + `.dead_lettered + excluded.dead_lettered,
			rejected = ` + table + `.rejected + excluded.rejected,
			failed = ` + table + `.failed + excluded.failed`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// StatsQuery asks for the counts of one application, or of all, in buckets
// of one granularity.
type StatsQuery struct {
	// ApplicationID is the application whose counts to return; empty for
	// the sums over every application.
	ApplicationID string
	// Since and Until bound the buckets: those whose start is at or after
	// Since rounded down to the granularity, and before Until.
	Since, Until time.Time
	Granularity  Granularity
}

// StatsBucket is the counts of one bucket of a stats query.
type StatsBucket struct {
	// Start is when the bucket starts, in UTC.
	Start  time.Time
	Counts StatsCounts
}

// statsSums are the sums of the count columns, as bigint on both databases
// (PostgreSQL's sum of bigint is numeric).
const statsSums = `CAST(SUM(forwarded) AS bigint), CAST(SUM(filtered) AS bigint), CAST(SUM(duplicate) AS bigint),
	CAST(SUM(dead_lettered) AS bigint), CAST(SUM(rejected) AS bigint), CAST(SUM(failed) AS bigint)`

// QueryStats returns the buckets of q.Granularity that start in [q.Since
// rounded down to the granularity, q.Until), oldest first, leaving out
// buckets without counts. Minutes and hours are summed from the minute rows
// (which PruneStats deletes sooner), days from the day rows. It returns
// ErrInvalidStatsQuery for an unknown granularity or a Until not after
// Since.
func (s *Store) QueryStats(ctx context.Context, q StatsQuery) ([]StatsBucket, error) {
	var width int64
	var table, bucket string
	switch q.Granularity {
	case Minute:
		width, table, bucket = secondsPerMinute, "stats_minute", "minute"
	case Hour:
		width, table, bucket = secondsPerHour, "stats_minute", "minute - minute % 3600"
	case Day:
		width, table, bucket = secondsPerDay, "stats_day", "day"
	default:
		return nil, fmt.Errorf("store: querying stats: %w: unknown granularity %q", ErrInvalidStatsQuery, q.Granularity)
	}
	if !q.Until.After(q.Since) {
		return nil, fmt.Errorf("store: querying stats: %w: until %v is not after since %v", ErrInvalidStatsQuery, q.Until, q.Since)
	}
	// The buckets that start before Until hold the rows before the first
	// bucket start at or after Until.
	from := floorTo(q.Since.Unix(), width)
	to := ceilTo(ceilUnix(q.Until), width)
	column := "minute"
	if table == "stats_day" {
		column = "day"
	}
	query := `SELECT ` + bucket + ` AS bucket, ` + statsSums + ` FROM ` + table +
		` WHERE ` + column + ` >= $1 AND ` + column + ` < $2`
	args := []any{from, to}
	if q.ApplicationID != "" {
		query += ` AND application_id = $3`
		args = append(args, q.ApplicationID)
	}
	query += ` GROUP BY bucket ORDER BY bucket`
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError("querying stats", err)
	}
	defer rows.Close()
	buckets := []StatsBucket{}
	for rows.Next() {
		var start int64
		var c StatsCounts
		if err := rows.Scan(&start, &c.Forwarded, &c.Filtered, &c.Duplicate, &c.DeadLettered, &c.Rejected, &c.Failed); err != nil {
			return nil, dbError("querying stats", err)
		}
		buckets = append(buckets, StatsBucket{Start: time.Unix(start, 0).UTC(), Counts: c})
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("querying stats", err)
	}
	return buckets, nil
}

// PruneStats deletes the minute rows of minutes that start before
// minutesBefore and the day rows of days that start before daysBefore, and
// returns how many rows it deleted.
func (s *Store) PruneStats(ctx context.Context, minutesBefore, daysBefore time.Time) (int64, error) {
	var deleted int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, d := range []struct {
			query  string
			before time.Time
		}{
			{`DELETE FROM stats_minute WHERE minute < $1`, minutesBefore},
			{`DELETE FROM stats_day WHERE day < $1`, daysBefore},
		} {
			res, err := tx.ExecContext(ctx, d.query, ceilUnix(d.before))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			deleted += n
		}
		return nil
	})
	if err != nil {
		return 0, dbError("pruning stats", err)
	}
	return deleted, nil
}

// ApplicationCount is a count of one application's events.
type ApplicationCount struct {
	ApplicationID string
	Count         int64
}

// TopFiltered returns the applications with the most filtered events in the
// minutes that start at or after since, most first, ties in order of
// application id (byte order), at most limit of them, leaving out those with
// none. A limit below 1 is ErrInvalidStatsQuery.
func (s *Store) TopFiltered(ctx context.Context, since time.Time, limit int) ([]ApplicationCount, error) {
	if limit < 1 {
		return nil, fmt.Errorf("store: finding the most filtered applications: %w: limit %d", ErrInvalidStatsQuery, limit)
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT application_id, CAST(SUM(filtered) AS bigint) AS n FROM stats_minute
		WHERE minute >= $1 GROUP BY application_id HAVING SUM(filtered) > 0
		ORDER BY n DESC, `+s.byteOrder("application_id")+` LIMIT $2`,
		ceilUnix(since), limit)
	if err != nil {
		return nil, dbError("finding the most filtered applications", err)
	}
	defer rows.Close()
	top := []ApplicationCount{}
	for rows.Next() {
		var c ApplicationCount
		if err := rows.Scan(&c.ApplicationID, &c.Count); err != nil {
			return nil, dbError("finding the most filtered applications", err)
		}
		top = append(top, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("finding the most filtered applications", err)
	}
	return top, nil
}

// param is the placeholder of the n-th parameter (from 1) of a statement
// with many: $n on PostgreSQL, ? on SQLite. SQLite keeps the names of
// $n-style parameters in a list that it searches from the start for each
// one, while preparing the statement and again while binding it, which
// takes time quadratic in their number; ? parameters have no name.
func (s *Store) param(n int) string {
	if s.dialect == SQLite {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}

// byteOrder is column for an ORDER BY that compares its text byte by byte,
// as SQLite does and Go's string comparison does, whatever the collation
// of the PostgreSQL database.
func (s *Store) byteOrder(column string) string {
	if s.dialect == Postgres {
		return column + ` COLLATE "C"`
	}
	return column
}

// floorTo rounds sec down to a multiple of width.
func floorTo(sec, width int64) int64 {
	r := sec % width
	if r < 0 {
		r += width
	}
	return sec - r
}

// ceilTo rounds sec up to a multiple of width.
func ceilTo(sec, width int64) int64 { return -floorTo(-sec, width) }

// ceilUnix is t in Unix seconds, rounded up: for a whole number of seconds
// n, n < ceilUnix(t) exactly when n is before t.
func ceilUnix(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}
