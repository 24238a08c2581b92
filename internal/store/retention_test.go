package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

func TestPruneMessagesSQLite(t *testing.T)   { runPruneMessages(t, openSQLite) }
func TestPruneMessagesPostgres(t *testing.T) { runPruneMessages(t, openPostgres) }

// runPruneMessages checks the retention of direct delivery's records on a
// database.
func runPruneMessages(t *testing.T, open opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"KeepsPendingAndRecent", testPruneKeepsPendingAndRecent},
		{"Batches", testPruneBatches},
		{"ResendAfterPrune", testResendAfterPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// setClock makes s's clock read at, and returns a function to move it.
func setClock(s *store.Store, at time.Time) func(time.Time) {
	var mu sync.Mutex
	store.SetClock(s, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return at
	})
	return func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		at = t
	}
}

// enqueue stores a message of event id to endpoints.
func enqueue(t *testing.T, s *store.Store, app, id string, endpoints ...string) store.Message {
	t.Helper()
	m, err := s.EnqueueMessage(ctxFor(t), store.Message{ApplicationID: app, EventID: id, EventType: "t", Body: []byte(`{}`)}, endpoints, nil)
	mustNot(t, err, "enqueueing "+id)
	return m
}

// attempt records an attempt of m to endpoint that leaves its delivery
// status.
func attempt(t *testing.T, s *store.Store, m store.Message, endpoint string, status store.DeliveryStatus) {
	t.Helper()
	a := store.Attempt{MessageID: m.ID, EndpointID: endpoint, At: m.CreatedAt, ResponseStatus: 204}
	if status != store.DeliveryDelivered {
		a.ResponseStatus, a.Error = 500, "HTTP 500"
	}
	_, _, err := s.RecordAttempt(ctxFor(t), a, status)
	mustNot(t, err, "recording an attempt")
}

// kept reports whether m is still stored, and checks that it has
// deliveries and attempts when it is, and none when it is not.
func kept(t *testing.T, s *store.Store, m store.Message, deliveries, attempts int) bool {
	t.Helper()
	ctx := ctxFor(t)
	_, err := s.GetMessage(ctx, m.ApplicationID, m.ID)
	exists := err == nil
	if !exists {
		wantErr(t, err, store.ErrNotFound, "reading message "+m.EventID)
		deliveries, attempts = 0, 0
	}
	ds, err := s.ListDeliveries(ctx, m.ID)
	mustNot(t, err, "listing deliveries")
	as, err := s.ListAttempts(ctx, m.ID, store.ListOptions{Limit: store.MaxLimit})
	mustNot(t, err, "listing attempts")
	if len(ds) != deliveries || len(as.Items) != attempts {
		t.Errorf("message %s (stored: %v): %d deliveries and %d attempts, want %d and %d",
			m.EventID, exists, len(ds), len(as.Items), deliveries, attempts)
	}
	return exists
}

func testPruneKeepsPendingAndRecent(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	now := time.Now()
	cutoff := now.Add(-30 * 24 * time.Hour)
	moveClock := setClock(s, cutoff.Add(-time.Hour))
	createApp(t, s, "app")

	// Old messages, created before the cutoff.
	delivered := enqueue(t, s, "app", "delivered", "ep_1", "ep_2")
	attempt(t, s, delivered, "ep_1", store.DeliveryPending)
	attempt(t, s, delivered, "ep_1", store.DeliveryDelivered)
	attempt(t, s, delivered, "ep_2", store.DeliveryDelivered)
	failed := enqueue(t, s, "app", "failed", "ep_1")
	attempt(t, s, failed, "ep_1", store.DeliveryFailed)
	givenUp := enqueue(t, s, "app", "given-up", "ep_1")
	_, err := s.GiveUpDelivery(ctx, givenUp.ID, "ep_1", "endpoint deleted")
	mustNot(t, err, "giving up")
	noEndpoint := enqueue(t, s, "app", "no-endpoint")
	pending := enqueue(t, s, "app", "pending", "ep_1")
	attempt(t, s, pending, "ep_1", store.DeliveryPending)
	partly := enqueue(t, s, "app", "partly-pending", "ep_1", "ep_2")
	attempt(t, s, partly, "ep_1", store.DeliveryDelivered)
	attempt(t, s, partly, "ep_2", store.DeliveryPending)
	// One created just before the cutoff goes; one at it stays.
	moveClock(cutoff.Add(-time.Microsecond))
	edge := enqueue(t, s, "app", "edge", "ep_1")
	attempt(t, s, edge, "ep_1", store.DeliveryDelivered)
	moveClock(cutoff)
	atCutoff := enqueue(t, s, "app", "at-cutoff", "ep_1")
	attempt(t, s, atCutoff, "ep_1", store.DeliveryDelivered)
	// A recent one.
	moveClock(now.Add(-time.Hour))
	recent := enqueue(t, s, "app", "recent", "ep_1")
	attempt(t, s, recent, "ep_1", store.DeliveryDelivered)

	got, err := s.PruneMessages(ctx, cutoff)
	mustNot(t, err, "pruning")
	// delivered (2 deliveries, 3 attempts), failed (1, 1), given-up (1,
	// 0), no-endpoint (0, 0), edge (1, 1).
	if want := (store.PrunedMessages{Messages: 5, Deliveries: 5, Attempts: 5}); got != want || got.Rows() != 15 {
		t.Fatalf("pruned %+v (%d rows), want %+v (15 rows)", got, got.Rows(), want)
	}
	for _, m := range []store.Message{delivered, failed, givenUp, noEndpoint, edge} {
		if kept(t, s, m, 0, 0) {
			t.Errorf("message %s, finished before the cutoff, was kept", m.EventID)
		}
	}
	for _, c := range []struct {
		m                    store.Message
		deliveries, attempts int
	}{{pending, 1, 1}, {partly, 2, 2}, {atCutoff, 1, 1}, {recent, 1, 1}} {
		if !kept(t, s, c.m, c.deliveries, c.attempts) {
			t.Errorf("message %s was pruned, want it kept", c.m.EventID)
		}
	}
	page, err := s.ListMessages(ctx, "app", store.ListOptions{})
	mustNot(t, err, "listing messages")
	var left []string
	for _, m := range page.Items {
		left = append(left, m.EventID)
	}
	slices.Sort(left)
	if want := []string{"at-cutoff", "partly-pending", "pending", "recent"}; !slices.Equal(left, want) {
		t.Errorf("messages left %v, want %v", left, want)
	}

	// Nothing more to prune; then the pending ones end, and go.
	got, err = s.PruneMessages(ctx, cutoff)
	mustNot(t, err, "pruning again")
	if got != (store.PrunedMessages{}) {
		t.Errorf("pruning again deleted %+v, want nothing", got)
	}
	attempt(t, s, pending, "ep_1", store.DeliveryFailed)
	attempt(t, s, partly, "ep_2", store.DeliveryDelivered)
	got, err = s.PruneMessages(ctx, cutoff)
	mustNot(t, err, "pruning after the pending deliveries ended")
	if want := (store.PrunedMessages{Messages: 2, Deliveries: 3, Attempts: 5}); got != want {
		t.Errorf("pruned %+v after the pending deliveries ended, want %+v", got, want)
	}
	if kept(t, s, pending, 0, 0) || kept(t, s, partly, 0, 0) || !kept(t, s, atCutoff, 1, 1) || !kept(t, s, recent, 1, 1) {
		t.Error("the second prune deleted the wrong messages")
	}
}

// testPruneBatches prunes more messages than a batch holds, among pending
// ones that stay, across applications.
func testPruneBatches(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	now := time.Now()
	moveClock := setClock(s, now.Add(-48*time.Hour))
	createApp(t, s, "a")
	createApp(t, s, "b")
	var old, pending []store.Message
	for i := range 47 {
		app := []string{"a", "b"}[i%2]
		moveClock(now.Add(-48*time.Hour + time.Duration(i)*time.Second))
		m := enqueue(t, s, app, fmt.Sprintf("ev%02d", i), "ep_1")
		if i%5 == 0 {
			pending = append(pending, m)
			continue
		}
		attempt(t, s, m, "ep_1", store.DeliveryDelivered)
		old = append(old, m)
	}
	got, err := store.PruneMessagesBatch(ctx, s, now.Add(-24*time.Hour), 4)
	mustNot(t, err, "pruning in batches of 4")
	n := int64(len(old))
	if want := (store.PrunedMessages{Messages: n, Deliveries: n, Attempts: n}); got != want {
		t.Fatalf("pruned %+v, want %+v", got, want)
	}
	for _, m := range old {
		if kept(t, s, m, 0, 0) {
			t.Errorf("message %s was kept", m.EventID)
		}
	}
	for _, m := range pending {
		if !kept(t, s, m, 1, 0) {
			t.Errorf("pending message %s was pruned", m.EventID)
		}
	}
}

// testResendAfterPrune: a pruned message can no longer be set back to
// pending.
func testResendAfterPrune(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	now := time.Now()
	setClock(s, now.Add(-48*time.Hour))
	createApp(t, s, "app")
	m := enqueue(t, s, "app", "ev", "ep_1")
	attempt(t, s, m, "ep_1", store.DeliveryFailed)
	_, err := s.PruneMessages(ctx, now.Add(-24*time.Hour))
	mustNot(t, err, "pruning")
	err = s.RequeueDeliveries(ctx, m.ID, []string{"ep_1"}, nil)
	wantErr(t, err, store.ErrNotFound, "requeueing a pruned message's delivery")
}

// TestPostgresReplicasPruneTogether runs PruneMessages on several
// replicas of one database at once: none fails (no deadlock), and between
// them, and the next prune, they delete every old message once.
func TestPostgresReplicasPruneTogether(t *testing.T) {
	ctx := ctxFor(t)
	url := pgtest.NewDatabase(t)
	first := openPostgresAt(t, url)
	now := time.Now()
	moveClock := setClock(first, now)
	createApp(t, first, "app")
	const messages = 2500
	for i := range messages {
		moveClock(now.Add(-48*time.Hour + time.Duration(i)*time.Millisecond))
		m := enqueue(t, first, "app", fmt.Sprintf("ev%04d", i), "ep_1")
		attempt(t, first, m, "ep_1", store.DeliveryDelivered)
	}
	const replicas = 3
	stores := []*store.Store{first}
	for range replicas - 1 {
		stores = append(stores, openPostgresAt(t, url))
	}
	results := make([]store.PrunedMessages, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			results[i], errs[i] = store.PruneMessagesBatch(ctx, s, now.Add(-24*time.Hour), 100)
		})
	}
	wg.Wait()
	var total store.PrunedMessages
	for i := range stores {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		total.Messages += results[i].Messages
		total.Deliveries += results[i].Deliveries
		total.Attempts += results[i].Attempts
	}
	// A replica that found only batches another held stopped early: the
	// next hour's prune takes what is left.
	left, err := first.PruneMessages(context.WithoutCancel(ctx), now.Add(-24*time.Hour))
	mustNot(t, err, "pruning what is left")
	total.Messages += left.Messages
	total.Deliveries += left.Deliveries
	total.Attempts += left.Attempts
	if want := (store.PrunedMessages{Messages: messages, Deliveries: messages, Attempts: messages}); total != want {
		t.Errorf("the replicas pruned %+v in all, want %+v", total, want)
	}
	t.Logf("pruned by each replica: %+v; left for the next prune: %+v", results, left)
}
