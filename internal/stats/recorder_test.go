package stats_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/logbuf"
)

var errDown = errors.New("database down")

// rowKey names a stored row.
type rowKey struct {
	app    string
	minute int64 // Unix seconds
}

// writer is a write function's state: it records every call and adds the
// rows of the calls that succeed to its table, as store.AddStats would.
type writer struct {
	mu    sync.Mutex
	err   error // the error of the next calls
	calls []writeCall
	table map[rowKey]store.StatsCounts
}

type writeCall struct {
	rows []store.StatsRow
	err  error
}

func (w *writer) write(_ context.Context, rows []store.StatsRow) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, writeCall{rows: slices.Clone(rows), err: w.err})
	if w.err != nil {
		return w.err
	}
	if w.table == nil {
		w.table = map[rowKey]store.StatsCounts{}
	}
	for _, row := range rows {
		k := rowKey{row.ApplicationID, row.Minute.Unix()}
		c := w.table[k]
		c.Add(row.Counts)
		w.table[k] = c
	}
	return nil
}

func (w *writer) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

func (w *writer) callCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.calls)
}

func (w *writer) call(i int) writeCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[i]
}

func (w *writer) stored() map[rowKey]store.StatsCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[rowKey]store.StatsCounts, len(w.table))
	for k, c := range w.table {
		out[k] = c
	}
	return out
}

// results collects the results given to Options.OnFlush.
type results struct {
	mu   sync.Mutex
	list []stats.FlushResult
}

func (r *results) onFlush(fr stats.FlushResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, fr)
}

func (r *results) last(t *testing.T) stats.FlushResult {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) == 0 {
		t.Fatal("no flush result")
	}
	return r.list[len(r.list)-1]
}

// eventually fails the test unless cond holds within five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func counts(forwarded, filtered, duplicate, deadLettered, rejected, failed int64) store.StatsCounts {
	return store.StatsCounts{Forwarded: forwarded, Filtered: filtered, Duplicate: duplicate,
		DeadLettered: deadLettered, Rejected: rejected, Failed: failed}
}

func TestOutcomeString(t *testing.T) {
	want := map[stats.Outcome]string{
		stats.Forwarded:    "forwarded",
		stats.Filtered:     "filtered",
		stats.Duplicate:    "duplicate",
		stats.DeadLettered: "dead_lettered",
		stats.Rejected:     "rejected",
		stats.Failed:       "failed",
		stats.Outcome(6):   "outcome(6)",
		stats.Outcome(-1):  "outcome(-1)",
	}
	for o, name := range want {
		if got := o.String(); got != name {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, name)
		}
	}
}

// Many goroutines add while flushes run, some of them failing: what is
// stored in the end is exactly what was added.
func TestCountsExactAcrossGoroutinesAndFlushes(t *testing.T) {
	w := &writer{}
	flushes := 0
	flaky := func(ctx context.Context, rows []store.StatsRow) error {
		flushes++ // flushes never overlap
		if flushes%3 == 0 {
			return errDown
		}
		return w.write(ctx, rows)
	}
	r := stats.NewRecorder(flaky, stats.Options{})
	apps := []string{"app_a", "app_b", "app_c", "app_d", "app_e"}
	const goroutines, perGoroutine = 8, 20000

	want := map[rowKey]store.StatsCounts{}
	for g := range goroutines {
		for i := range perGoroutine {
			k := rowKey{apps[(g+i)%len(apps)], base.Add(time.Duration(i%3) * time.Minute).Unix()}
			c := want[k]
			switch stats.Outcome(i % 6) {
			case stats.Forwarded:
				c.Forwarded++
			case stats.Filtered:
				c.Filtered++
			case stats.Duplicate:
				c.Duplicate++
			case stats.DeadLettered:
				c.DeadLettered++
			case stats.Rejected:
				c.Rejected++
			case stats.Failed:
				c.Failed++
			}
			want[k] = c
		}
	}

	var adders sync.WaitGroup
	for g := range goroutines {
		adders.Go(func() {
			for i := range perGoroutine {
				at := base.Add(time.Duration(i%3)*time.Minute + time.Duration(i%60)*time.Second)
				r.AddAt(apps[(g+i)%len(apps)], stats.Outcome(i%6), at)
			}
		})
	}
	stopFlushing := make(chan struct{})
	flusherDone := make(chan struct{})
	go func() {
		defer close(flusherDone)
		for {
			select {
			case <-stopFlushing:
				return
			default:
				_ = r.Flush(context.Background()) // a failure is retried by the next flush
			}
		}
	}()
	adders.Wait()
	close(stopFlushing)
	<-flusherDone
	for range 2 { // the first may be one that fails
		if err := r.Flush(ctxFor(t)); err == nil {
			break
		}
	}
	if p := r.Pending(); p != 0 {
		t.Fatalf("Pending() = %d after a successful flush, want 0", p)
	}
	got := w.stored()
	if len(got) != len(want) {
		t.Errorf("stored %d rows, want %d", len(got), len(want))
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("row %v: stored %+v, want %+v", k, got[k], c)
		}
	}
	t.Logf("%d flushes", flushes)
}

func TestFlushWritesEverythingInOneSortedCall(t *testing.T) {
	w := &writer{}
	r := stats.NewRecorder(w.write, stats.Options{})
	r.AddAt("app_b", stats.Forwarded, base.Add(90*time.Second))
	r.AddAt("app_b", stats.Forwarded, base.Add(61*time.Second))
	r.AddAt("app_b", stats.Failed, base)
	r.AddAt("app_a", stats.Duplicate, base.Add(time.Minute))
	r.AddAt("app_a", stats.DeadLettered, base.Add(59*time.Second))
	r.AddAt("app_c", stats.Rejected, base)
	r.AddAt("app_c", stats.Filtered, base)
	if p := r.Pending(); p != 5 {
		t.Fatalf("Pending() = %d, want 5", p)
	}
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 1 {
		t.Fatalf("%d write calls, want 1", n)
	}
	want := []store.StatsRow{
		{ApplicationID: "app_a", Minute: base, Counts: counts(0, 0, 0, 1, 0, 0)},
		{ApplicationID: "app_a", Minute: base.Add(time.Minute), Counts: counts(0, 0, 1, 0, 0, 0)},
		{ApplicationID: "app_b", Minute: base, Counts: counts(0, 0, 0, 0, 0, 1)},
		{ApplicationID: "app_b", Minute: base.Add(time.Minute), Counts: counts(2, 0, 0, 0, 0, 0)},
		{ApplicationID: "app_c", Minute: base, Counts: counts(0, 1, 0, 0, 1, 0)},
	}
	got := w.call(0).rows
	if !slices.EqualFunc(got, want, rowsEqual) {
		t.Errorf("rows\n got %+v\nwant %+v", got, want)
	}
	for _, row := range got {
		if row.Minute.Location() != time.UTC {
			t.Errorf("minute %v is not in UTC", row.Minute)
		}
	}
	if p := r.Pending(); p != 0 {
		t.Errorf("Pending() = %d after the flush, want 0", p)
	}

	// Nothing held: no write.
	res := &results{}
	r2 := stats.NewRecorder(w.write, stats.Options{OnFlush: res.onFlush})
	if err := r2.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 1 {
		t.Errorf("an empty flush wrote: %d write calls, want 1", n)
	}
	if fr := res.last(t); fr.Rows != 0 || fr.Err != nil || fr.Pending != 0 {
		t.Errorf("empty flush result %+v", fr)
	}
}

func rowsEqual(a, b store.StatsRow) bool {
	return a.ApplicationID == b.ApplicationID && a.Minute.Equal(b.Minute) && a.Counts == b.Counts
}

func TestFailedWriteKeepsCountsAndNextFlushWritesTheSum(t *testing.T) {
	w := &writer{}
	res := &results{}
	r := stats.NewRecorder(w.write, stats.Options{OnFlush: res.onFlush})
	r.AddAt("app_a", stats.Forwarded, base)
	r.AddAt("app_a", stats.Forwarded, base)
	r.AddAt("app_b", stats.Filtered, base)

	w.setErr(errDown)
	err := r.Flush(ctxFor(t))
	if !errors.Is(err, errDown) {
		t.Fatalf("Flush() = %v, want %v", err, errDown)
	}
	if fr := res.last(t); fr.Rows != 2 || !errors.Is(fr.Err, errDown) || fr.Pending != 2 {
		t.Errorf("failed flush result %+v, want 2 rows, the error, 2 pending", fr)
	}
	if p := r.Pending(); p != 2 {
		t.Errorf("Pending() = %d after a failed flush, want 2", p)
	}

	// Arriving meanwhile: a row that is held and one that is not.
	r.AddAt("app_a", stats.Forwarded, base)
	r.AddAt("app_a", stats.Rejected, base)
	r.AddAt("app_c", stats.Failed, base)
	if p := r.Pending(); p != 4 {
		t.Errorf("Pending() = %d, want 4 (2 held, 2 new)", p)
	}

	// A second failure keeps the merged counts.
	if err := r.Flush(ctxFor(t)); !errors.Is(err, errDown) {
		t.Fatalf("Flush() = %v, want %v", err, errDown)
	}
	if fr := res.last(t); fr.Rows != 3 || fr.Pending != 3 {
		t.Errorf("second failed flush result %+v, want 3 rows and 3 pending", fr)
	}

	w.setErr(nil)
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	want := map[rowKey]store.StatsCounts{
		{"app_a", base.Unix()}: counts(3, 0, 0, 0, 1, 0),
		{"app_b", base.Unix()}: counts(0, 1, 0, 0, 0, 0),
		{"app_c", base.Unix()}: counts(0, 0, 0, 0, 0, 1),
	}
	if got := w.stored(); !mapsEqual(got, want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}
	if fr := res.last(t); fr.Rows != 3 || fr.Err != nil || fr.Pending != 0 {
		t.Errorf("successful flush result %+v", fr)
	}

	// Written rows are not written again.
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 3 {
		t.Errorf("%d write calls, want 3", n)
	}
}

func mapsEqual(a, b map[rowKey]store.StatsCounts) bool {
	if len(a) != len(b) {
		return false
	}
	for k, c := range a {
		if bc, ok := b[k]; !ok || bc != c {
			return false
		}
	}
	return true
}

func TestFlushTimeoutBoundsTheWrite(t *testing.T) {
	hang := true
	w := &writer{}
	write := func(ctx context.Context, rows []store.StatsRow) error {
		if hang {
			<-ctx.Done()
			return ctx.Err()
		}
		return w.write(ctx, rows)
	}
	r := stats.NewRecorder(write, stats.Options{FlushTimeout: 10 * time.Millisecond})
	r.AddAt("app_a", stats.Forwarded, base)
	if err := r.Flush(ctxFor(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush() = %v, want a deadline error", err)
	}
	if p := r.Pending(); p != 1 {
		t.Fatalf("Pending() = %d, want 1", p)
	}
	hang = false
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if got := w.stored()[rowKey{"app_a", base.Unix()}]; got != counts(1, 0, 0, 0, 0, 0) {
		t.Errorf("stored %+v", got)
	}
}

// A Flush called during another waits for it, or gives up when its context
// ends; the two never write at once.
func TestFlushesNeverOverlap(t *testing.T) {
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	w := &writer{}
	var mu sync.Mutex
	writing := false
	write := func(ctx context.Context, rows []store.StatsRow) error {
		mu.Lock()
		if writing {
			t.Error("two writes at once")
		}
		writing = true
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		writing = false
		mu.Unlock()
		return w.write(ctx, rows)
	}
	r := stats.NewRecorder(write, stats.Options{})
	r.AddAt("app_a", stats.Forwarded, base)
	first := make(chan error, 1)
	go func() { first <- r.Flush(context.Background()) }()
	<-entered

	r.AddAt("app_a", stats.Forwarded, base)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush during a flush with a short context = %v, want a deadline error", err)
	}

	second := make(chan error, 1)
	go func() { second <- r.Flush(context.Background()) }()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 2 {
		t.Errorf("%d write calls, want 2", n)
	}
	if got := w.stored()[rowKey{"app_a", base.Unix()}]; got != counts(2, 0, 0, 0, 0, 0) {
		t.Errorf("stored %+v, want 2 forwarded", got)
	}
}

func TestMinuteBoundariesFollowTheClock(t *testing.T) {
	w := &writer{}
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	now := time.Date(2025, 6, 1, 17, 30, 59, 999_999_999, zone) // 12:00:59.999… UTC
	r := stats.NewRecorder(w.write, stats.Options{Now: func() time.Time { return now }})
	r.Add("app_a", stats.Forwarded)
	now = now.Add(time.Nanosecond) // 12:01:00 UTC
	r.Add("app_a", stats.Forwarded)
	r.Add("app_a", stats.Filtered)
	now = now.Add(59 * time.Second) // 12:01:59 UTC
	r.Add("app_a", stats.Filtered)
	// Before 1970, a minute starts before its second, not after.
	r.AddAt("app_old", stats.Failed, time.Date(1969, 12, 31, 23, 59, 30, 0, time.UTC))
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	want := map[rowKey]store.StatsCounts{
		{"app_a", base.Unix()}:                                              counts(1, 0, 0, 0, 0, 0),
		{"app_a", base.Add(time.Minute).Unix()}:                             counts(1, 2, 0, 0, 0, 0),
		{"app_old", time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC).Unix()}: counts(0, 0, 0, 0, 0, 1),
	}
	if got := w.stored(); !mapsEqual(got, want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}
}

func TestIgnoredEvents(t *testing.T) {
	w := &writer{}
	r := stats.NewRecorder(w.write, stats.Options{})
	r.Add("", stats.Forwarded)
	r.AddAt("", stats.Forwarded, base)
	r.Add("app_a", stats.Outcome(-1))
	r.Add("app_a", stats.Outcome(6))
	if p := r.Pending(); p != 0 {
		t.Errorf("Pending() = %d, want 0", p)
	}
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 0 {
		t.Errorf("%d write calls, want none", n)
	}
}

func TestNilRecorderDoesNothing(t *testing.T) {
	var r *stats.Recorder
	r.Add("app_a", stats.Forwarded)
	r.AddAt("app_a", stats.Forwarded, base)
	r.Start()
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Errorf("Flush() = %v", err)
	}
	if err := r.Close(ctxFor(t)); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if p := r.Pending(); p != 0 {
		t.Errorf("Pending() = %d", p)
	}
	if d := r.DroppedEvents(); d != 0 {
		t.Errorf("DroppedEvents() = %d", d)
	}
}

func TestCapDropsEventsOfNewRowsOnly(t *testing.T) {
	w := &writer{}
	res := &results{}
	r := stats.NewRecorder(w.write, stats.Options{MaxPendingRows: 3, OnFlush: res.onFlush})
	r.AddAt("app_a", stats.Forwarded, base)
	r.AddAt("app_b", stats.Forwarded, base)
	r.AddAt("app_c", stats.Forwarded, base)
	r.AddAt("app_d", stats.Forwarded, base)                  // a fourth row: dropped
	r.AddAt("app_a", stats.Forwarded, base.Add(time.Minute)) // a new minute is a new row: dropped
	r.AddAt("app_a", stats.Forwarded, base)                  // held: counts
	if d := r.DroppedEvents(); d != 2 {
		t.Errorf("DroppedEvents() = %d, want 2", d)
	}

	// Rows of a failed write count towards the cap.
	w.setErr(errDown)
	if err := r.Flush(ctxFor(t)); !errors.Is(err, errDown) {
		t.Fatalf("Flush() = %v, want %v", err, errDown)
	}
	if fr := res.last(t); fr.Dropped != 2 || fr.Pending != 3 {
		t.Errorf("flush result %+v, want 2 dropped and 3 pending", fr)
	}
	r.AddAt("app_e", stats.Forwarded, base) // dropped: 3 rows held
	r.AddAt("app_b", stats.Filtered, base)  // dropped too: app_b is held by the failed write, not in the live rows
	if d := r.DroppedEvents(); d != 4 {
		t.Errorf("DroppedEvents() = %d, want 4", d)
	}

	w.setErr(nil)
	if err := r.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if fr := res.last(t); fr.Dropped != 2 || fr.Pending != 0 || fr.Rows != 3 {
		t.Errorf("flush result %+v, want 3 rows, 2 dropped and none pending", fr)
	}
	want := map[rowKey]store.StatsCounts{
		{"app_a", base.Unix()}: counts(2, 0, 0, 0, 0, 0),
		{"app_b", base.Unix()}: counts(1, 0, 0, 0, 0, 0),
		{"app_c", base.Unix()}: counts(1, 0, 0, 0, 0, 0),
	}
	if got := w.stored(); !mapsEqual(got, want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}

	// Room again.
	r.AddAt("app_d", stats.Forwarded, base)
	if p := r.Pending(); p != 1 {
		t.Errorf("Pending() = %d after the flush freed room, want 1", p)
	}
	if d := r.DroppedEvents(); d != 4 {
		t.Errorf("DroppedEvents() = %d, want 4", d)
	}
}

func TestCloseFlushes(t *testing.T) {
	w := &writer{}
	r := stats.NewRecorder(w.write, stats.Options{FlushInterval: time.Hour})
	r.Start()
	r.Add("app_a", stats.Forwarded)
	r.Add("app_a", stats.Duplicate)
	if err := r.Close(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 1 {
		t.Fatalf("%d write calls, want 1", n)
	}
	if got := w.call(0).rows; len(got) != 1 || got[0].Counts != counts(1, 0, 1, 0, 0, 0) {
		t.Errorf("rows %+v", got)
	}

	// Again: nothing to write.
	if err := r.Close(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 1 {
		t.Errorf("second Close wrote: %d write calls, want 1", n)
	}

	// After Close, the loop is gone and does not come back; events are held
	// until a Flush or Close writes them.
	r.Start()
	r.Add("app_a", stats.Rejected)
	if p := r.Pending(); p != 1 {
		t.Errorf("Pending() = %d after an Add after Close, want 1", p)
	}
	if err := r.Close(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if n := w.callCount(); n != 2 {
		t.Errorf("%d write calls, want 2", n)
	}
}

func TestCloseReportsAFailedWrite(t *testing.T) {
	w := &writer{}
	w.setErr(errDown)
	r := stats.NewRecorder(w.write, stats.Options{FlushInterval: time.Hour})
	r.Start()
	r.AddAt("app_a", stats.Forwarded, base)
	if err := r.Close(ctxFor(t)); !errors.Is(err, errDown) {
		t.Fatalf("Close() = %v, want %v", err, errDown)
	}
	if p := r.Pending(); p != 1 {
		t.Errorf("Pending() = %d after a failed Close, want 1", p)
	}
	w.setErr(nil)
	if err := r.Close(ctxFor(t)); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if got := w.stored()[rowKey{"app_a", base.Unix()}]; got != counts(1, 0, 0, 0, 0, 0) {
		t.Errorf("stored %+v", got)
	}
}

func TestCloseGivesUpWhenItsContextEnds(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	write := func(ctx context.Context, rows []store.StatsRow) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	}
	r := stats.NewRecorder(write, stats.Options{FlushInterval: time.Millisecond})
	r.AddAt("app_a", stats.Forwarded, base)
	r.Start()
	<-entered // the loop is writing
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close() = %v, want a deadline error", err)
	}
	close(release)
	if err := r.Close(ctxFor(t)); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

func TestLoopFlushesOnItsInterval(t *testing.T) {
	w := &writer{}
	res := &results{}
	r := stats.NewRecorder(w.write, stats.Options{FlushInterval: 5 * time.Millisecond, OnFlush: res.onFlush})
	r.Start()
	r.Start() // a second Start starts no second loop
	defer func() {
		if err := r.Close(ctxFor(t)); err != nil {
			t.Error(err)
		}
	}()
	r.AddAt("app_a", stats.Forwarded, base)
	eventually(t, "the loop's first write", func() bool { return w.callCount() == 1 })
	r.AddAt("app_a", stats.Forwarded, base)
	eventually(t, "the loop's second write", func() bool { return w.callCount() == 2 })
	if got := w.stored()[rowKey{"app_a", base.Unix()}]; got != counts(2, 0, 0, 0, 0, 0) {
		t.Errorf("stored %+v", got)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.list) < 2 {
		t.Errorf("%d flush results, want at least 2", len(res.list))
	}
}

// The loop logs a failure once per run of failures, and the recovery once.
func TestLoopLogsAFailureStreakOnce(t *testing.T) {
	w := &writer{}
	w.setErr(errDown)
	logs := &logbuf.Buffer{}
	r := stats.NewRecorder(w.write, stats.Options{
		FlushInterval: 2 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	})
	r.Start()
	defer func() { _ = r.Close(ctxFor(t)) }()
	r.AddAt("app_a", stats.Forwarded, base)
	eventually(t, "five failed writes", func() bool { return w.callCount() >= 5 })
	w.setErr(nil)
	eventually(t, "the counts written", func() bool { return len(w.stored()) == 1 })
	eventually(t, "the recovery logged", func() bool { return strings.Contains(logs.String(), "works again") })

	// A second run of failures logs again.
	w.setErr(errDown)
	r.AddAt("app_a", stats.Forwarded, base)
	calls := w.callCount()
	eventually(t, "three more failed writes", func() bool { return w.callCount() >= calls+3 })

	out := logs.String()
	if n := strings.Count(out, "level=WARN msg=\"stats: writing the counts failed"); n != 2 {
		t.Errorf("%d failure warnings, want 2 (one per run):\n%s", n, out)
	}
	if n := strings.Count(out, "level=INFO msg=\"stats: writing the counts works again"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, errDown.Error()) {
		t.Errorf("the warning does not carry the error:\n%s", out)
	}
}

func TestLoopLogsDroppedEventsAtMostOnceAMinute(t *testing.T) {
	w := &writer{}
	w.setErr(errDown)
	logs := &logbuf.Buffer{}
	r := stats.NewRecorder(w.write, stats.Options{
		FlushInterval:  2 * time.Millisecond,
		MaxPendingRows: 1,
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
	})
	r.Start()
	defer func() { _ = r.Close(ctxFor(t)) }()
	r.AddAt("app_a", stats.Forwarded, base)
	r.AddAt("app_b", stats.Forwarded, base)
	eventually(t, "the drop logged", func() bool { return strings.Contains(logs.String(), "dropping") })
	for i := range 5 {
		r.AddAt(fmt.Sprintf("app_%d", i), stats.Forwarded, base)
	}
	calls := w.callCount()
	eventually(t, "three more flushes", func() bool { return w.callCount() >= calls+3 })
	if d := r.DroppedEvents(); d != 6 {
		t.Errorf("DroppedEvents() = %d, want 6", d)
	}
	out := logs.String()
	if n := strings.Count(out, "dropping"); n != 1 {
		t.Errorf("%d drop warnings within a minute, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "dropped_events=1 ") {
		t.Errorf("the warning does not count the dropped events:\n%s", out)
	}
}
