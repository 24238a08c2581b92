package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

// The tests here run two or more Stores, each with a pool of its own, on one
// PostgreSQL database: replicas of Gwook sharing it.

func TestPostgresReplicasMigrateTogether(t *testing.T) {
	ctx := ctxFor(t)
	url := pgtest.NewDatabase(t)
	const replicas = 4
	for i, err := range openAtOnce(ctx, replicas, url, "") {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT version_id, count(*) FROM gwook_migrations GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var v, n int64
		err := r.Scan(&v, &n)
		return fmt.Sprintf("%d×%d", v, n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Goose's version 0 row, then each migration once.
	if want := []string{"0×1", "1×1", "2×1", "3×1", "4×1"}; !slices.Equal(got, want) {
		t.Fatalf("recorded migrations %v, want %v", got, want)
	}
}

func TestPostgresMigrationWaitsForTheLock(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := ctxFor(t)
	// Someone else is migrating: hold the migration lock.
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	lockID := store.MigrationLockID
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		t.Fatal(err)
	}

	// While the lock is held, Open waits and gives up when its context
	// ends, having applied nothing. (Goose creates its own version table
	// before it takes the lock, tolerating a concurrent creation.)
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if s, err := store.Open(short, url, ""); err == nil {
		s.Close()
		t.Fatal("Open succeeded while another process held the migration lock")
	}
	var tables int
	if err := holder.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'gwook_migrations'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("Open created %d tables of the schema without the migration lock", tables)
	}

	// Once it is released, a waiting Open goes ahead.
	done := make(chan error, 1)
	go func() {
		s, err := store.Open(ctx, url, "")
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Open after the lock was released: %v", err)
	}
}

func TestPostgresReplicasCreateTheSameApplication(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := openPostgresAt(t, url), openPostgresAt(t, url)
	ctx := ctxFor(t)
	for round := range 25 {
		id := fmt.Sprintf("app-%d", round)
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, s := range []*store.Store{a, b} {
			wg.Go(func() {
				<-start
				_, errs[i] = s.CreateApplication(ctx, store.Application{ID: id, Name: fmt.Sprintf("by replica %d", i)})
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: %v, want nil or ErrConflict", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d replicas created %s (errors %v), want exactly one", round, won, id, errs)
		}
	}
	page, err := b.ListApplications(ctx, store.ListOptions{Limit: store.MaxLimit})
	if err != nil || len(page.Items) != 25 {
		t.Fatalf("listed %d applications (%v), want 25", len(page.Items), err)
	}
	changes, _, err := a.ChangesSince(ctx, 0)
	if err != nil || len(changes) != 25 {
		t.Fatalf("%d changes (%v), want one per application created, 25", len(changes), err)
	}
}

func TestPostgresReplicaSeesAnotherReplicasChanges(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := openPostgresAt(t, url), openPostgresAt(t, url)
	ctx := ctxFor(t)

	seq, err := b.ChangeSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, value, err := a.CreateToken(ctx, store.NewToken{Name: "t", Scopes: []string{"ingest"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.TokenByHash(ctx, store.HashToken(value), time.Now()); err != nil || got.ID != tok.ID {
		t.Fatalf("replica b looking up a token that replica a created: %+v, %v", got, err)
	}
	if err := a.DeleteToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	changes, next, err := b.ChangesSince(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[1].Kind != store.KindToken || changes[1].Op != store.OpDelete || changes[1].ID != tok.ID || next != seq+2 {
		t.Fatalf("replica b sees changes %+v (next %d), want the token created then deleted", changes, next)
	}
	if _, err := b.TokenByHash(ctx, store.HashToken(value), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replica b looking up a token that replica a deleted: %v, want ErrNotFound", err)
	}
}

// TestPostgresPollerMissesNoChange writes from two replicas at once while a
// third polls the change log: sequence numbers follow commit order, so the
// poller, resuming after the last number it saw, sees every change once.
func TestPostgresPollerMissesNoChange(t *testing.T) {
	url := pgtest.NewDatabase(t)
	writers := []*store.Store{openPostgresAt(t, url), openPostgresAt(t, url)}
	poller := openPostgresAt(t, url)
	ctx := ctxFor(t)
	const perWriter = 40

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, s := range writers {
		for w := range 2 {
			wg.Go(func() {
				for j := range perWriter / 2 {
					id := fmt.Sprintf("r%d-w%d-%02d", i, w, j)
					if _, err := s.CreateApplication(ctx, store.Application{ID: id, Name: id}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]int{}
	var since int64
	poll := func() {
		changes, next, err := poller.ChangesSince(ctx, since)
		if err != nil {
			t.Fatalf("polling: %v", err)
		}
		for _, c := range changes {
			if c.Seq <= since {
				t.Fatalf("change %+v at or before %d", c, since)
			}
			seen[c.ID]++
		}
		since = next
	}
	for polling := true; polling; {
		select {
		case <-done:
			polling = false
		default:
		}
		poll()
	}
	poll() // after the last commit
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != len(writers)*perWriter {
		t.Fatalf("the poller saw %d applications created, want %d", len(seen), len(writers)*perWriter)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("the poller saw %s %d times", id, n)
		}
	}
}

// TestPostgresReplicasTouchTheSameTokens has two replicas write the last-use
// times of the same tokens at once, each from a map (iterated in a random
// order): the store orders the updates, so they never deadlock.
func TestPostgresReplicasTouchTheSameTokens(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := openPostgresAt(t, url), openPostgresAt(t, url)
	ctx := ctxFor(t)
	var ids []string
	for i := range 30 {
		tok, _, err := a.CreateToken(ctx, store.NewToken{Name: fmt.Sprint(i), Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
	base := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for r, s := range []*store.Store{a, b} {
		wg.Go(func() {
			for round := range 30 {
				used := map[string]time.Time{}
				for _, id := range ids {
					used[id] = base.Add(time.Duration(round*2+r) * time.Second)
				}
				if err := s.TouchTokens(ctx, used); err != nil {
					errs <- fmt.Errorf("replica %d, round %d: %w", r, round, err)
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
	// The latest time wins whichever replica wrote last.
	want := base.Add(59 * time.Second).Truncate(time.Microsecond)
	for _, id := range ids {
		tok, err := b.GetToken(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tok.LastUsedAt == nil || !tok.LastUsedAt.Equal(want) {
			t.Fatalf("token %s last used at %v, want %v", id, tok.LastUsedAt, want)
		}
	}
}

// TestPostgresReplicasAddStats has two replicas, each with several
// goroutines, add to the same stats rows at once, each call with the rows in
// its own order: the sums are exact and no transaction deadlocks.
func TestPostgresReplicasAddStats(t *testing.T) {
	url := pgtest.NewDatabase(t)
	replicas := []*store.Store{openPostgresAt(t, url), openPostgresAt(t, url)}
	ctx := ctxFor(t)
	const perReplica, calls, apps = 3, 15, 40
	minutes := []time.Time{at(-time.Minute), at(0), at(time.Minute)}
	var wg sync.WaitGroup
	errs := make(chan error, len(replicas)*perReplica)
	for i, s := range replicas {
		for g := range perReplica {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(i), uint64(g)))
				for range calls {
					var rows []store.StatsRow
					for a := range apps {
						for _, m := range minutes {
							rows = append(rows, store.StatsRow{ApplicationID: fmt.Sprintf("app-%02d", a), Minute: m, Counts: counts(1, 2, 0, 0, 0, 1)})
						}
					}
					r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
					if err := s.AddStats(ctx, rows); err != nil {
						errs <- fmt.Errorf("replica %d, goroutine %d: %w", i, g, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range replicas {
		checkConcurrentSums(t, s, int64(len(replicas)*perReplica*calls), apps, minutes)
	}
}
