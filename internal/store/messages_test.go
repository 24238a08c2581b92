package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

func TestMessagesSQLite(t *testing.T)   { runMessages(t, openSQLite) }
func TestMessagesPostgres(t *testing.T) { runMessages(t, openPostgres) }

// runMessages checks the direct delivery records on a database.
func runMessages(t *testing.T, open opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"EnqueueMessage", testEnqueueMessage},
		{"EnqueueDuplicate", testEnqueueDuplicate},
		{"EnqueueRollsBack", testEnqueueRollsBack},
		{"EnqueueUnknownApplication", testEnqueueUnknownApplication},
		{"EnqueueConcurrentDuplicates", testEnqueueConcurrentDuplicates},
		{"RecordAttempt", testRecordAttempt},
		{"RecordAttempts", testRecordAttempts},
		{"GiveUpDelivery", testGiveUpDelivery},
		{"RequeueDeliveries", testRequeueDeliveries},
		{"PaginateMessagesAndAttempts", testPaginateMessagesAndAttempts},
		{"DeliveriesOf", testDeliveriesOf},
		{"DisableEndpoint", testDisableEndpoint},
		{"EndpointFailingSince", testEndpointFailingSince},
		{"EnqueueMessages", testEnqueueMessages},
		{"MessagesCascade", testMessagesCascade},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func TestEndpointTakes(t *testing.T) {
	for _, tc := range []struct {
		types    []string
		disabled bool
		want     bool
	}{
		{nil, false, true},
		{[]string{"user.created", "user.deleted"}, false, true},
		{[]string{"user.created"}, true, false},     // disabled
		{[]string{"user.created.v2"}, false, false}, // another type
		{[]string{}, false, false},                  // no type
		{[]string{"user.*"}, false, false},          // names are exact, not patterns
	} {
		e := store.Endpoint{EventTypes: tc.types, Disabled: tc.disabled}
		if got := e.Takes("user.created"); got != tc.want {
			t.Errorf("an endpoint of types %q, disabled %v, takes user.created: %v, want %v", tc.types, tc.disabled, got, tc.want)
		}
	}
}

var messageIDPattern = regexp.MustCompile(`^msg_[0-9a-zA-Z]{22}$`)

func testEnqueueMessage(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	before := time.Now()
	createApp(t, s, "app")
	body := []byte(`{"id":"ev1","type":"t","data":{"a":1}}` + "\n")
	called := 0
	m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev1", EventType: "t", Body: body},
		[]string{"ep_b", "ep_a"}, func(tx store.Tx) error {
			called++
			// The deliveries are visible in the transaction.
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM deliveries`).Scan(&n); err != nil {
				return err
			}
			if n != 2 {
				return fmt.Errorf("%d deliveries in the transaction, want 2", n)
			}
			return nil
		})
	mustNot(t, err, "enqueueing a message")
	if called != 1 {
		t.Fatalf("enqueue called %d times, want once", called)
	}
	if !messageIDPattern.MatchString(m.ID) {
		t.Fatalf("message id %q, want msg_ and 22 base-62 characters", m.ID)
	}
	checkFresh(t, "CreatedAt", m.CreatedAt, before)
	got, err := s.GetMessage(ctx, "app", m.ID)
	mustNot(t, err, "reading the message")
	if got.ID != m.ID || got.EventID != "ev1" || got.EventType != "t" || !bytes.Equal(got.Body, body) || !got.CreatedAt.Equal(m.CreatedAt) {
		t.Fatalf("read %+v, want %+v", got, m)
	}
	_, err = s.GetMessage(ctx, "other", m.ID)
	wantErr(t, err, store.ErrNotFound, "reading the message as another application")

	ds, err := s.ListDeliveries(ctx, m.ID)
	mustNot(t, err, "listing deliveries")
	if len(ds) != 2 || ds[0].EndpointID != "ep_a" || ds[1].EndpointID != "ep_b" {
		t.Fatalf("deliveries %+v, want ep_a and ep_b", ds)
	}
	for _, d := range ds {
		if d.Status != store.DeliveryPending || d.Attempts != 0 || d.LastError != "" {
			t.Fatalf("new delivery %+v, want pending with no attempts", d)
		}
	}

	// No endpoint: the message is stored all the same.
	m2, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev2", EventType: "t", Body: body}, nil, nil)
	mustNot(t, err, "enqueueing a message for no endpoint")
	if ds, err := s.ListDeliveries(ctx, m2.ID); err != nil || len(ds) != 0 {
		t.Fatalf("deliveries of a message for no endpoint: %v, %v", ds, err)
	}
}

func testEnqueueDuplicate(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	createApp(t, s, "other")
	first, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep_1"}, nil)
	mustNot(t, err, "enqueueing")
	called := false
	again, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t2", Body: []byte(`{"x":1}`)}, []string{"ep_2"},
		func(store.Tx) error { called = true; return nil })
	wantErr(t, err, store.ErrConflict, "enqueueing the same event again")
	if called {
		t.Fatal("enqueue was called for a duplicate")
	}
	if again.ID != first.ID || string(again.Body) != `{}` || again.EventType != "t" {
		t.Fatalf("duplicate returned %+v, want the first message %+v", again, first)
	}
	if ds, _ := s.ListDeliveries(ctx, first.ID); len(ds) != 1 || ds[0].EndpointID != "ep_1" {
		t.Fatalf("deliveries after a duplicate: %+v, want only ep_1", ds)
	}
	// The same event id of another application is another message.
	_, err = s.EnqueueMessage(ctx, store.Message{ApplicationID: "other", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, nil, nil)
	mustNot(t, err, "enqueueing the same event id for another application")
}

func testEnqueueRollsBack(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	boom := errors.New("boom")
	_, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep_1"},
		func(store.Tx) error { return boom })
	wantErr(t, err, boom, "enqueueing with a failing enqueue")
	page, err := s.ListMessages(ctx, "app", store.ListOptions{})
	mustNot(t, err, "listing messages")
	if len(page.Items) != 0 {
		t.Fatalf("%d messages stored after a failed enqueue, want none", len(page.Items))
	}
	// The event can be accepted afterwards.
	_, err = s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep_1"}, nil)
	mustNot(t, err, "enqueueing after a failed enqueue")
}

func testEnqueueUnknownApplication(t *testing.T, s *store.Store) {
	_, err := s.EnqueueMessage(ctxFor(t), store.Message{ApplicationID: "nope", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, nil, nil)
	wantErr(t, err, store.ErrNotFound, "enqueueing for a missing application")
}

func testEnqueueConcurrentDuplicates(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	const n = 8
	msgs := make([]store.Message, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			msgs[i], errs[i] = s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep"}, nil)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("enqueue %d: %v, want nil or ErrConflict", i, err)
		}
		if msgs[i].ID != msgs[0].ID {
			t.Fatalf("enqueue %d returned message %s, enqueue 0 %s", i, msgs[i].ID, msgs[0].ID)
		}
	}
	if won != 1 {
		t.Fatalf("%d enqueues stored the event, want 1", won)
	}
}

func testRecordAttempt(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep_1", "ep_2"}, nil)
	mustNot(t, err, "enqueueing")
	at := time.Now().Add(-time.Second)
	long := bytes.Repeat([]byte("x"), 3000)
	a1, d, err := s.RecordAttempt(ctx, store.Attempt{MessageID: m.ID, EndpointID: "ep_1", At: at, ResponseStatus: 500,
		Duration: 1234567 * time.Microsecond, Error: "HTTP 500", ResponseBody: long}, store.DeliveryPending)
	mustNot(t, err, "recording attempt 1")
	if d.Attempts != 1 || d.Status != store.DeliveryPending || d.LastError != "HTTP 500" {
		t.Fatalf("delivery after attempt 1: %+v", d)
	}
	if len(a1.ResponseBody) != store.MaxAttemptBody || !strings.HasPrefix(a1.ID, "atm_") {
		t.Fatalf("attempt 1 as stored: id %s, body of %d bytes", a1.ID, len(a1.ResponseBody))
	}
	_, d, err = s.RecordAttempt(ctx, store.Attempt{MessageID: m.ID, EndpointID: "ep_1", At: at.Add(time.Millisecond),
		Duration: 5 * time.Millisecond, Error: "connect: refused"}, store.DeliveryPending)
	mustNot(t, err, "recording attempt 2")
	_, d, err = s.RecordAttempt(ctx, store.Attempt{MessageID: m.ID, EndpointID: "ep_1", At: at.Add(2 * time.Millisecond),
		ResponseStatus: 204, Duration: 7 * time.Millisecond}, store.DeliveryDelivered)
	mustNot(t, err, "recording attempt 3")
	if d.Attempts != 3 || d.Status != store.DeliveryDelivered || d.LastError != "" {
		t.Fatalf("delivery after attempt 3: %+v", d)
	}
	if other, _ := s.GetDelivery(ctx, m.ID, "ep_2"); other.Attempts != 0 || other.Status != store.DeliveryPending {
		t.Fatalf("the other endpoint's delivery changed: %+v", other)
	}
	// What an attempt reads: the delivery and its message, in one query.
	d, msg, err := s.GetDeliveryMessage(ctx, m.ID, "ep_1")
	mustNot(t, err, "reading the delivery and its message")
	if d.MessageID != m.ID || d.EndpointID != "ep_1" || d.Attempts != 3 || d.Status != store.DeliveryDelivered ||
		msg.ID != m.ID || msg.EventID != "ev" || msg.EventType != "t" || string(msg.Body) != `{}` || !msg.CreatedAt.Equal(m.CreatedAt) {
		t.Fatalf("delivery and message read: %+v, %+v", d, msg)
	}
	_, _, err = s.GetDeliveryMessage(ctx, m.ID, "ep_3")
	wantErr(t, err, store.ErrNotFound, "reading a delivery that does not exist, with its message")
	_, _, err = s.RecordAttempt(ctx, store.Attempt{MessageID: m.ID, EndpointID: "ep_3", At: at}, store.DeliveryPending)
	wantErr(t, err, store.ErrNotFound, "recording an attempt of no delivery")

	page, err := s.ListAttempts(ctx, m.ID, store.ListOptions{})
	mustNot(t, err, "listing attempts")
	if len(page.Items) != 3 {
		t.Fatalf("%d attempts, want 3", len(page.Items))
	}
	got := page.Items
	if got[0].ID != a1.ID || got[0].ResponseStatus != 500 || got[0].Duration != 1234*time.Millisecond ||
		!bytes.Equal(got[0].ResponseBody, long[:store.MaxAttemptBody]) || !got[0].At.Equal(at.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("attempt 1 read back as %+v", got[0])
	}
	if got[1].ResponseStatus != 0 || got[1].Error != "connect: refused" || len(got[1].ResponseBody) != 0 {
		t.Fatalf("attempt 2 (no response) read back as %+v", got[1])
	}
	if got[2].ResponseStatus != 204 || got[2].Error != "" {
		t.Fatalf("attempt 3 read back as %+v", got[2])
	}
}

func testGiveUpDelivery(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep_1"}, nil)
	mustNot(t, err, "enqueueing")
	d, err := s.GiveUpDelivery(ctx, m.ID, "ep_1", "endpoint deleted")
	mustNot(t, err, "giving up")
	if d.Status != store.DeliveryFailed || d.LastError != "endpoint deleted" || d.Attempts != 0 {
		t.Fatalf("given up delivery %+v", d)
	}
	_, err = s.GiveUpDelivery(ctx, m.ID, "ep_2", "x")
	wantErr(t, err, store.ErrNotFound, "giving up no delivery")
}

func testRequeueDeliveries(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep_1", "ep_2"}, nil)
	mustNot(t, err, "enqueueing")
	_, err = s.GiveUpDelivery(ctx, m.ID, "ep_1", "endpoint disabled")
	mustNot(t, err, "giving up")
	_, _, err = s.RecordAttempt(ctx, store.Attempt{MessageID: m.ID, EndpointID: "ep_2", At: time.Now(), ResponseStatus: 500, Error: "500"}, store.DeliveryFailed)
	mustNot(t, err, "recording an attempt")

	// A failing enqueue leaves the deliveries as they were.
	boom := errors.New("boom")
	err = s.RequeueDeliveries(ctx, m.ID, []string{"ep_1", "ep_2"}, func(store.Tx) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("requeueing with a failing enqueue: %v, want boom", err)
	}
	// So does an endpoint the message was not for.
	err = s.RequeueDeliveries(ctx, m.ID, []string{"ep_2", "ep_3"}, nil)
	wantErr(t, err, store.ErrNotFound, "requeueing to an endpoint without a delivery")
	for _, ep := range []string{"ep_1", "ep_2"} {
		d, err := s.GetDelivery(ctx, m.ID, ep)
		mustNot(t, err, "reading a delivery")
		if d.Status != store.DeliveryFailed {
			t.Fatalf("delivery to %s is %s after failed requeues, want failed", ep, d.Status)
		}
	}

	called := false
	err = s.RequeueDeliveries(ctx, m.ID, []string{"ep_2"}, func(store.Tx) error { called = true; return nil })
	mustNot(t, err, "requeueing")
	if !called {
		t.Fatal("enqueue was not called")
	}
	d, err := s.GetDelivery(ctx, m.ID, "ep_2")
	mustNot(t, err, "reading a delivery")
	if d.Status != store.DeliveryPending || d.Attempts != 1 || d.LastError != "500" {
		t.Fatalf("requeued delivery %+v, want pending with its attempt and last error kept", d)
	}
	if d, _ := s.GetDelivery(ctx, m.ID, "ep_1"); d.Status != store.DeliveryFailed {
		t.Fatalf("the other delivery became %s", d.Status)
	}
	// A delivery still pending is not set back: an attempt in progress
	// would overwrite it.
	err = s.RequeueDeliveries(ctx, m.ID, []string{"ep_2"}, func(store.Tx) error { t.Fatal("enqueue called for a pending delivery"); return nil })
	wantErr(t, err, store.ErrConflict, "requeueing a pending delivery")
}

func testDeliveriesOf(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	createApp(t, s, "other")
	enqueue := func(app, eventID string, endpoints ...string) string {
		m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: app, EventID: eventID, EventType: "t", Body: []byte(`{}`)}, endpoints, nil)
		mustNot(t, err, "enqueueing")
		return m.ID
	}
	m1 := enqueue("app", "ev1", "ep_b", "ep_a", "ep_c")
	m2 := enqueue("app", "ev2", "ep_a")
	none := enqueue("app", "ev3") // matched no endpoint
	m4 := enqueue("other", "ev4", "ep_x")
	_, _, err := s.RecordAttempt(ctx, store.Attempt{MessageID: m1, EndpointID: "ep_b", At: time.Now(), ResponseStatus: 204}, store.DeliveryDelivered)
	mustNot(t, err, "recording an attempt")
	_, err = s.GiveUpDelivery(ctx, m2, "ep_a", "endpoint deleted")
	mustNot(t, err, "giving up")

	// Each message's deliveries are ListDeliveries' own, in its order.
	got, err := s.DeliveriesOf(ctx, []string{m1, m2, none, m4, "msg_unknown"})
	mustNot(t, err, "reading the deliveries of many messages")
	for _, id := range []string{m1, m2, m4} {
		want, err := s.ListDeliveries(ctx, id)
		mustNot(t, err, "listing deliveries")
		if !slices.EqualFunc(got[id], want, sameDelivery) {
			t.Errorf("deliveries of %s: %+v, want %+v", id, got[id], want)
		}
	}
	if len(got[m1]) != 3 || got[m1][1].EndpointID != "ep_b" || got[m1][1].Status != store.DeliveryDelivered || got[m1][1].Attempts != 1 {
		t.Errorf("deliveries of %s: %+v, want ep_a, ep_b (delivered after one attempt), ep_c", m1, got[m1])
	}
	if d := got[m2]; len(d) != 1 || d[0].Status != store.DeliveryFailed || d[0].LastError != "endpoint deleted" {
		t.Errorf("deliveries of %s: %+v, want one failed", m2, d)
	}
	if _, ok := got[none]; ok {
		t.Errorf("a message without deliveries has an entry: %+v", got[none])
	}
	if _, ok := got["msg_unknown"]; ok || len(got) != 3 {
		t.Errorf("entries for %d messages (%v), want 3", len(got), slices.Collect(maps.Keys(got)))
	}

	// Only the messages asked for; none for no ids.
	got, err = s.DeliveriesOf(ctx, []string{m2})
	if err != nil || len(got) != 1 || len(got[m2]) != 1 {
		t.Errorf("deliveries of %s alone: %+v, %v", m2, got, err)
	}
	got, err = s.DeliveriesOf(ctx, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("deliveries of no message: %+v, %v", got, err)
	}

	// More ids than one query takes: each part is read.
	many := make([]string, 0, 1203)
	for i := range 1200 {
		many = append(many, fmt.Sprintf("msg_unknown%d", i))
	}
	many = slices.Insert(many, 0, m1)
	many = slices.Insert(many, 700, m2)
	many = append(many, m4)
	got, err = s.DeliveriesOf(ctx, many)
	mustNot(t, err, "reading the deliveries of 1203 messages")
	if len(got) != 3 || len(got[m1]) != 3 || len(got[m2]) != 1 || len(got[m4]) != 1 {
		t.Errorf("deliveries of 1203 ids: %d messages (%d, %d, %d deliveries), want 3 (3, 1, 1)",
			len(got), len(got[m1]), len(got[m2]), len(got[m4]))
	}
}

// sameDelivery reports whether a and b are the same delivery in the same
// state.
func sameDelivery(a, b store.Delivery) bool {
	return a.MessageID == b.MessageID && a.EndpointID == b.EndpointID && a.Status == b.Status &&
		a.Attempts == b.Attempts && a.LastError == b.LastError && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testPaginateMessagesAndAttempts(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	createApp(t, s, "other")
	var want []string
	for i := range 7 {
		m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: fmt.Sprint("ev", i), EventType: "t", Body: []byte(`{}`)}, []string{"ep"}, nil)
		mustNot(t, err, "enqueueing")
		want = append(want, m.ID)
	}
	_, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "other", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, nil, nil)
	mustNot(t, err, "enqueueing for another application")
	var got []string
	opts := store.ListOptions{Limit: 3}
	for {
		page, err := s.ListMessages(ctx, "app", opts)
		mustNot(t, err, "listing messages")
		for _, m := range page.Items {
			got = append(got, m.ID)
		}
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged messages %v, want %v", got, want)
	}
	_, err = s.ListMessages(ctx, "app", store.ListOptions{Limit: store.MaxLimit + 1})
	wantErr(t, err, store.ErrInvalidPage, "listing messages with too large a limit")

	at := time.Now()
	var wantAttempts []string
	for i := range 5 {
		a, _, err := s.RecordAttempt(ctx, store.Attempt{MessageID: want[0], EndpointID: "ep", At: at.Add(time.Duration(i) * time.Millisecond), ResponseStatus: 500}, store.DeliveryPending)
		mustNot(t, err, "recording an attempt")
		wantAttempts = append(wantAttempts, a.ID)
	}
	var gotAttempts []string
	opts = store.ListOptions{Limit: 2}
	for {
		page, err := s.ListAttempts(ctx, want[0], opts)
		mustNot(t, err, "listing attempts")
		for _, a := range page.Items {
			gotAttempts = append(gotAttempts, a.ID)
		}
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	if !slices.Equal(gotAttempts, wantAttempts) {
		t.Fatalf("paged attempts %v, want %v", gotAttempts, wantAttempts)
	}
}

func testDisableEndpoint(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	e := createEndpoint(t, s, "app")
	seq, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the change sequence")
	mustNot(t, s.DisableEndpoint(ctx, "app", e.ID), "disabling the endpoint")
	got, err := s.GetEndpoint(ctx, "app", e.ID)
	mustNot(t, err, "reading the endpoint")
	if !got.Disabled || !got.UpdatedAt.After(e.UpdatedAt) {
		t.Fatalf("endpoint after disabling: disabled %v, updated %v (was %v)", got.Disabled, got.UpdatedAt, e.UpdatedAt)
	}
	changes, next, err := s.ChangesSince(ctx, seq)
	mustNot(t, err, "reading changes")
	if len(changes) != 1 || changes[0].Kind != store.KindEndpoint || changes[0].Op != store.OpUpdate || changes[0].ID != e.ID || changes[0].ApplicationID != "app" {
		t.Fatalf("changes after disabling: %+v", changes)
	}
	mustNot(t, s.DisableEndpoint(ctx, "app", e.ID), "disabling the endpoint again")
	if changes, _, _ := s.ChangesSince(ctx, next); len(changes) != 0 {
		t.Fatalf("disabling a disabled endpoint recorded %+v", changes)
	}
	wantErr(t, s.DisableEndpoint(ctx, "other", e.ID), store.ErrNotFound, "disabling as another application")
}

func testMessagesCascade(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev", EventType: "t", Body: []byte(`{}`)}, []string{"ep"}, nil)
	mustNot(t, err, "enqueueing")
	_, _, err = s.RecordAttempt(ctx, store.Attempt{MessageID: m.ID, EndpointID: "ep", At: time.Now()}, store.DeliveryPending)
	mustNot(t, err, "recording an attempt")
	mustNot(t, s.DeleteApplication(ctx, "app"), "deleting the application")
	_, err = s.GetDelivery(ctx, m.ID, "ep")
	wantErr(t, err, store.ErrNotFound, "reading a delivery of a deleted application")
	if page, err := s.ListAttempts(ctx, m.ID, store.ListOptions{}); err != nil || len(page.Items) != 0 {
		t.Fatalf("attempts of a deleted application's message: %v, %v", page.Items, err)
	}
}

// TestPostgresReplicasMigrateRiverTogether opens several Stores on one new
// database at once: River's schema is applied once.
func TestPostgresReplicasMigrateRiverTogether(t *testing.T) {
	ctx := ctxFor(t)
	url := pgtest.NewDatabase(t)
	for i, err := range openAtOnce(ctx, 4, url, "") {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, versions int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM river_migration`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != versions {
		t.Fatalf("river_migration holds %d rows of %d versions, want each version once", rows, versions)
	}
}

// A batch of attempts takes effect as the attempts one by one in the order
// of their At, whatever its order, and a delivery that does not exist
// fails only its own record.
func testRecordAttempts(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	var eps [2]string
	for i := range eps {
		e, err := s.CreateEndpoint(ctx, store.Endpoint{ApplicationID: "app", URL: "https://example.com/"})
		mustNot(t, err, "creating an endpoint")
		eps[i] = e.ID
	}
	var msgs [4]string
	for i := range msgs {
		m, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: fmt.Sprint("ev", i), EventType: "t", Body: []byte(`{}`)}, eps[:], nil)
		mustNot(t, err, "enqueueing")
		msgs[i] = m.ID
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	attempt := func(m, ep int, at time.Duration, status store.DeliveryStatus) store.AttemptRecord {
		a := store.Attempt{MessageID: msgs[m], EndpointID: eps[ep], At: t0.Add(at), ResponseStatus: 500, Error: "HTTP 500"}
		if status == store.DeliveryDelivered {
			a.ResponseStatus, a.Error = 204, ""
		}
		return store.AttemptRecord{Attempt: a, Status: status}
	}
	// Endpoint 1 has been failing since t0.
	_, _, err := s.RecordAttempt(ctx, attempt(3, 1, 0, store.DeliveryPending).Attempt, store.DeliveryPending)
	mustNot(t, err, "recording a failure")

	missing := attempt(0, 0, time.Minute, store.DeliveryPending)
	missing.Attempt.MessageID = "msg_missing"
	batch := []store.AttemptRecord{
		attempt(2, 0, 3*time.Minute, store.DeliveryPending), // endpoint 0: a failure after one that delivered
		missing, // no such delivery
		attempt(0, 0, time.Minute, store.DeliveryPending),     // endpoint 0: the first failure
		attempt(1, 1, 2*time.Minute, store.DeliveryFailed),    // endpoint 1: still failing
		attempt(1, 0, 2*time.Minute, store.DeliveryDelivered), // endpoint 0: delivered
		attempt(0, 1, time.Minute, store.DeliveryPending),     // endpoint 1: still failing
	}
	out, err := s.RecordAttempts(ctx, batch)
	mustNot(t, err, "recording a batch")
	if len(out) != len(batch) {
		t.Fatalf("%d results for %d records", len(out), len(batch))
	}
	wantSince := []time.Time{t0.Add(3 * time.Minute), {}, t0.Add(time.Minute), t0, {}, t0}
	for i, r := range out {
		if i == 1 {
			wantErr(t, r.Err, store.ErrNotFound, "recording an attempt of no delivery in a batch")
			continue
		}
		mustNot(t, r.Err, fmt.Sprint("record ", i))
		if !r.Attempt.FailingSince.Equal(wantSince[i]) {
			t.Errorf("record %d: failing since %v, want %v", i, r.Attempt.FailingSince, wantSince[i])
		}
		want := batch[i].Attempt
		if d := r.Delivery; d.MessageID != want.MessageID || d.EndpointID != want.EndpointID || d.Attempts != 1 ||
			d.Status != batch[i].Status || d.LastError != want.Error {
			t.Errorf("record %d: delivery %+v after %+v", i, d, batch[i])
		}
		page, err := s.ListAttempts(ctx, want.MessageID, store.ListOptions{})
		mustNot(t, err, "listing attempts")
		if !slices.ContainsFunc(page.Items, func(a store.Attempt) bool { return a.ID == r.Attempt.ID && a.At.Equal(want.At) }) {
			t.Errorf("record %d: attempt %s not listed: %+v", i, r.Attempt.ID, page.Items)
		}
	}
	// The runs as stored: endpoint 0 failing since its failure after the
	// delivery, endpoint 1 since t0.
	probe := func(m, ep int, at time.Duration) time.Time {
		t.Helper()
		a, _, err := s.RecordAttempt(ctx, attempt(m, ep, at, store.DeliveryPending).Attempt, store.DeliveryPending)
		mustNot(t, err, "recording a failure")
		return a.FailingSince
	}
	if got := probe(3, 0, 10*time.Minute); !got.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("endpoint 0 failing since %v after the batch, want %v", got, t0.Add(3*time.Minute))
	}
	if got := probe(2, 1, 10*time.Minute); !got.Equal(t0) {
		t.Errorf("endpoint 1 failing since %v after the batch, want %v", got, t0)
	}
	// A batch whose last attempt to an endpoint delivered ends its run.
	_, err = s.RecordAttempts(ctx, []store.AttemptRecord{
		attempt(1, 1, 21*time.Minute, store.DeliveryDelivered),
		attempt(0, 1, 20*time.Minute, store.DeliveryPending),
	})
	mustNot(t, err, "recording a batch")
	if got := probe(3, 1, 30*time.Minute); !got.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("endpoint 1 failing since %v after a batch ending in a delivery, want %v", got, t0.Add(30*time.Minute))
	}
	// One that delivered, then failed, starts a new run.
	out, err = s.RecordAttempts(ctx, []store.AttemptRecord{
		attempt(0, 1, 41*time.Minute, store.DeliveryPending),
		attempt(2, 1, 40*time.Minute, store.DeliveryDelivered),
	})
	mustNot(t, err, "recording a batch")
	if got := out[0].Attempt.FailingSince; !got.Equal(t0.Add(41 * time.Minute)) {
		t.Errorf("a failure after a delivery in a batch: failing since %v, want %v", got, t0.Add(41*time.Minute))
	}
	if got := probe(3, 1, 50*time.Minute); !got.Equal(t0.Add(41 * time.Minute)) {
		t.Errorf("endpoint 1 failing since %v after a batch of a delivery then a failure, want %v", got, t0.Add(41*time.Minute))
	}

	// Their deliveries read together, with their messages; one that does
	// not exist is left out.
	keys := []store.DeliveryKey{{MessageID: msgs[0], EndpointID: eps[0]}, {MessageID: msgs[0], EndpointID: eps[1]},
		{MessageID: msgs[2], EndpointID: eps[1]}, {MessageID: "msg_missing", EndpointID: eps[0]}}
	read, err := s.GetDeliveryMessages(ctx, keys)
	mustNot(t, err, "reading deliveries")
	if len(read) != 3 {
		t.Fatalf("%d deliveries read, want 3: %+v", len(read), read)
	}
	for _, k := range keys[:3] {
		dm, ok := read[k]
		if !ok || dm.Delivery.MessageID != k.MessageID || dm.Delivery.EndpointID != k.EndpointID ||
			dm.Message.ID != k.MessageID || string(dm.Message.Body) != `{}` || dm.Message.ApplicationID != "app" {
			t.Errorf("delivery %+v read as %+v", k, dm)
		}
	}
	if d := read[keys[1]].Delivery; d.Attempts != 3 || d.Status != store.DeliveryPending {
		t.Errorf("delivery %+v: %d attempts, %s; want 3, pending", keys[1], d.Attempts, d.Status)
	}
}

// An endpoint's run of failed attempts spans its messages, ends with an
// attempt that delivers, and is forgotten when it is disabled or enabled.
func testEndpointFailingSince(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	e, err := s.CreateEndpoint(ctx, store.Endpoint{ApplicationID: "app", URL: "https://example.com/"})
	mustNot(t, err, "creating an endpoint")
	m1, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev1", EventType: "t", Body: []byte(`{}`)}, []string{e.ID}, nil)
	mustNot(t, err, "enqueueing")
	m2, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "ev2", EventType: "t", Body: []byte(`{}`)}, []string{e.ID}, nil)
	mustNot(t, err, "enqueueing")
	t0 := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	record := func(m store.Message, at time.Duration, status store.DeliveryStatus) time.Time {
		t.Helper()
		a, _, err := s.RecordAttempt(ctx, store.Attempt{MessageID: m.ID, EndpointID: e.ID, At: t0.Add(at), Error: "x"}, status)
		mustNot(t, err, "recording an attempt")
		return a.FailingSince
	}
	if got := record(m1, 0, store.DeliveryPending); !got.Equal(t0) {
		t.Fatalf("failing since %v after a first failure at %v", got, t0)
	}
	if got := record(m2, time.Minute, store.DeliveryFailed); !got.Equal(t0) {
		t.Fatalf("failing since %v after a failure of another message, want %v", got, t0)
	}
	if got := record(m1, 2*time.Minute, store.DeliveryDelivered); !got.IsZero() {
		t.Fatalf("failing since %v after an attempt that delivered, want zero", got)
	}
	if got := record(m2, 3*time.Minute, store.DeliveryPending); !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("failing since %v after a new run of failures, want %v", got, t0.Add(3*time.Minute))
	}
	// Disabling forgets the run.
	mustNot(t, s.DisableEndpoint(ctx, "app", e.ID), "disabling the endpoint")
	if got := record(m2, 4*time.Minute, store.DeliveryPending); !got.Equal(t0.Add(4 * time.Minute)) {
		t.Fatalf("failing since %v after disabling, want %v", got, t0.Add(4*time.Minute))
	}
	// So does enabling.
	e.Disabled = false
	_, err = s.UpdateEndpoint(ctx, e)
	mustNot(t, err, "enabling the endpoint")
	if got := record(m2, 5*time.Minute, store.DeliveryPending); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("failing since %v after enabling, want %v", got, t0.Add(5*time.Minute))
	}
	// An update that leaves Disabled as it is keeps it.
	e.Description = "changed"
	_, err = s.UpdateEndpoint(ctx, e)
	mustNot(t, err, "updating the endpoint")
	if got := record(m2, 6*time.Minute, store.DeliveryPending); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("failing since %v after an update, want %v", got, t0.Add(5*time.Minute))
	}
}

// A batch stores its new messages with their deliveries in one
// transaction, and reports the duplicates: of a message stored before, and
// of one earlier in the batch.
func testEnqueueMessages(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	createApp(t, s, "other")
	first, err := s.EnqueueMessage(ctx, store.Message{ApplicationID: "app", EventID: "old", EventType: "t", Body: []byte(`{"n":0}`)}, []string{"ep_1"}, nil)
	mustNot(t, err, "enqueueing")
	msg := func(app, ev string) store.Message {
		return store.Message{ApplicationID: app, EventID: ev, EventType: "t", Body: []byte(`{"ev":"` + ev + `"}`)}
	}
	batch := []store.NewMessage{
		{Message: msg("app", "a"), EndpointIDs: []string{"ep_1", "ep_2"}},
		{Message: msg("app", "old"), EndpointIDs: []string{"ep_1"}}, // stored before
		{Message: msg("other", "a"), EndpointIDs: nil},              // another application's event a
		{Message: msg("app", "a"), EndpointIDs: []string{"ep_3"}},   // earlier in the batch
		{Message: msg("app", "b"), EndpointIDs: []string{"ep_2"}},
	}
	var storedIdx []int
	out, err := s.EnqueueMessages(ctx, batch, func(tx store.Tx, stored []int) error {
		storedIdx = stored
		return nil
	})
	mustNot(t, err, "enqueueing a batch")
	if !slices.Equal(storedIdx, []int{0, 2, 4}) {
		t.Fatalf("enqueue called with %v, want [0 2 4]", storedIdx)
	}
	wantDup := []bool{false, true, false, true, false}
	for i, e := range out {
		if e.Duplicate != wantDup[i] {
			t.Fatalf("entry %d: duplicate %v, want %v", i, e.Duplicate, wantDup[i])
		}
	}
	if out[1].Message.ID != first.ID || out[3].Message.ID != out[0].Message.ID || out[0].Message.ID == out[2].Message.ID {
		t.Fatalf("duplicates carry the wrong messages: %+v", out)
	}
	for i, want := range map[int][]string{0: {"ep_1", "ep_2"}, 2: {}, 4: {"ep_2"}} {
		ds, err := s.ListDeliveries(ctx, out[i].Message.ID)
		mustNot(t, err, "listing deliveries")
		var got []string
		for _, d := range ds {
			got = append(got, d.EndpointID)
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("entry %d: deliveries to %v, want %v", i, got, want)
		}
	}
	got, err := s.GetMessage(ctx, "app", out[4].Message.ID)
	mustNot(t, err, "reading a message of the batch")
	if string(got.Body) != `{"ev":"b"}` {
		t.Fatalf("stored body %s", got.Body)
	}

	// An application that does not exist fails the whole batch.
	_, err = s.EnqueueMessages(ctx, []store.NewMessage{{Message: msg("app", "c")}, {Message: msg("nope", "c")}}, nil)
	wantErr(t, err, store.ErrNotFound, "enqueueing a batch with a missing application")
	page, err := s.ListMessages(ctx, "app", store.ListOptions{})
	mustNot(t, err, "listing")
	if len(page.Items) != 3 {
		t.Fatalf("%d messages after the failed batch, want 3", len(page.Items))
	}
}

func TestRecoverDeliveriesSQLite(t *testing.T)   { testRecoverDeliveries(t, openSQLite(t)) }
func TestRecoverDeliveriesPostgres(t *testing.T) { testRecoverDeliveries(t, openPostgres(t)) }

// awaitingRecovery counts the deliveries that have a recovery time.
func awaitingRecovery(t *testing.T, s *store.Store) int {
	t.Helper()
	var n int
	err := s.InJobTx(ctxFor(t), func(tx store.Tx) error {
		return tx.QueryRow(ctxFor(t), `SELECT count(*) FROM deliveries WHERE recover_at IS NOT NULL`).Scan(&n)
	})
	mustNot(t, err, "counting the deliveries awaiting recovery")
	return n
}

// recoverDue runs RecoverDeliveries for the deliveries due by now and returns
// those it took, sorted.
func recoverDue(t *testing.T, s *store.Store, limit int) []store.RecoveredDelivery {
	t.Helper()
	var taken []store.RecoveredDelivery
	n, err := s.RecoverDeliveries(ctxFor(t), time.Now(), limit, func(_ store.Tx, ds []store.RecoveredDelivery) error {
		taken = slices.Clone(ds)
		return nil
	})
	mustNot(t, err, "recovering deliveries")
	if n != len(taken) {
		t.Fatalf("RecoverDeliveries returned %d, enqueue had %d", n, len(taken))
	}
	slices.SortFunc(taken, func(a, b store.RecoveredDelivery) int {
		return strings.Compare(a.MessageID+a.EndpointID, b.MessageID+b.EndpointID)
	})
	return taken
}

// A delivery stored with a recovery time gets a job (enqueue) once, when
// its time has come, in the transaction that clears it; recording an
// attempt clears it or moves it to the retry's time, and only for a
// delivery that has one.
func testRecoverDeliveries(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	now := time.Now()
	msg := func(id string) store.Message {
		return store.Message{ID: store.NewMessageID(), ApplicationID: "app", EventID: id, EventType: "t", Body: []byte(`{}`)}
	}
	out, err := s.EnqueueMessages(ctx, []store.NewMessage{
		{Message: msg("due"), EndpointIDs: []string{"ep_1", "ep_2"}, RecoverAt: now.Add(-time.Second)},
		{Message: msg("later"), EndpointIDs: []string{"ep_1"}, RecoverAt: now.Add(time.Hour)},
		{Message: msg("queued"), EndpointIDs: []string{"ep_1"}},
	}, nil)
	mustNot(t, err, "enqueueing")
	due, later, queued := out[0].Message.ID, out[1].Message.ID, out[2].Message.ID
	// Without jobs to insert, PostgreSQL stores the batch without a
	// transaction: duplicates and unknown applications are still told.
	again, err := s.EnqueueMessages(ctx, []store.NewMessage{{Message: msg("due"), EndpointIDs: []string{"ep_3"}, RecoverAt: now}}, nil)
	mustNot(t, err, "enqueueing a duplicate")
	if !again[0].Duplicate || again[0].Message.ID != due {
		t.Fatalf("the same event again: %+v, want a duplicate of %s", again[0], due)
	}
	unknown := msg("unknown")
	unknown.ApplicationID = "nobody"
	_, err = s.EnqueueMessages(ctx, []store.NewMessage{{Message: unknown, EndpointIDs: []string{"ep_1"}, RecoverAt: now}}, nil)
	wantErr(t, err, store.ErrNotFound, "enqueueing to an unknown application")
	if n := awaitingRecovery(t, s); n != 3 {
		t.Fatalf("%d deliveries await recovery, want 3 (the queued message's has a job)", n)
	}

	// A failing enqueue takes nothing.
	boom := errors.New("boom")
	_, err = s.RecoverDeliveries(ctx, time.Now(), 10, func(store.Tx, []store.RecoveredDelivery) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("recovering with a failing enqueue: %v, want boom", err)
	}
	if n := awaitingRecovery(t, s); n != 3 {
		t.Fatalf("%d deliveries await recovery after a failed pass, want 3", n)
	}

	// The limit takes the earliest first.
	if got := recoverDue(t, s, 1); len(got) != 1 || got[0].MessageID != due {
		t.Fatalf("a pass of one took %+v, want one delivery of %s", got, due)
	}
	got := recoverDue(t, s, 10)
	if len(got) != 1 || got[0] != (store.RecoveredDelivery{MessageID: due, EndpointID: got[0].EndpointID, ApplicationID: "app"}) {
		t.Fatalf("the next pass took %+v, want the other delivery of %s", got, due)
	}
	if got := recoverDue(t, s, 10); len(got) != 0 {
		t.Fatalf("a pass after every due delivery was taken took %+v", got)
	}

	// A first attempt to retry moves the recovery time to the retry's; a
	// delivery a job carries gets none.
	retryAt := time.Now().Add(-time.Millisecond)
	for _, id := range []string{later, queued} {
		_, err := s.RecordAttempts(ctx, []store.AttemptRecord{{
			Attempt:   store.Attempt{MessageID: id, EndpointID: "ep_1", At: time.Now(), ResponseStatus: 500, Error: "500"},
			Status:    store.DeliveryPending,
			RecoverAt: retryAt,
		}})
		mustNot(t, err, "recording an attempt to retry")
	}
	if got := recoverDue(t, s, 10); len(got) != 1 || got[0].MessageID != later {
		t.Fatalf("after the retries were recorded a pass took %+v, want the delivery of %s only", got, later)
	}

	// An attempt that ends the delivery clears it; so does giving up, and
	// RecoverNow makes a delivery due at once.
	out, err = s.EnqueueMessages(ctx, []store.NewMessage{
		{Message: msg("delivered"), EndpointIDs: []string{"ep_1"}, RecoverAt: now.Add(time.Hour)},
		{Message: msg("given-up"), EndpointIDs: []string{"ep_1"}, RecoverAt: now.Add(time.Hour)},
		{Message: msg("handed-over"), EndpointIDs: []string{"ep_1"}, RecoverAt: now.Add(time.Hour)},
	}, nil)
	mustNot(t, err, "enqueueing")
	_, err = s.RecordAttempts(ctx, []store.AttemptRecord{{
		Attempt: store.Attempt{MessageID: out[0].Message.ID, EndpointID: "ep_1", At: time.Now(), ResponseStatus: 204},
		Status:  store.DeliveryDelivered,
	}})
	mustNot(t, err, "recording a delivered attempt")
	_, err = s.GiveUpDelivery(ctx, out[1].Message.ID, "ep_1", "endpoint deleted")
	mustNot(t, err, "giving up")
	if n := awaitingRecovery(t, s); n != 1 {
		t.Fatalf("%d deliveries await recovery, want 1", n)
	}
	mustNot(t, s.RecoverNow(ctx, store.DeliveryKey{MessageID: out[2].Message.ID, EndpointID: "ep_1"}), "handing over")
	if got := recoverDue(t, s, 10); len(got) != 1 || got[0].MessageID != out[2].Message.ID {
		t.Fatalf("after RecoverNow a pass took %+v, want the delivery of %s", got, out[2].Message.ID)
	}
	// RecoverNow leaves a delivery without a recovery time without one.
	mustNot(t, s.RecoverNow(ctx, store.DeliveryKey{MessageID: queued, EndpointID: "ep_1"}), "handing over")
	if n := awaitingRecovery(t, s); n != 0 {
		t.Fatalf("%d deliveries await recovery, want 0", n)
	}

	if s.Dialect() != store.Postgres {
		return // one writer: passes take turns
	}
	// Two replicas passing at once take each delivery once: the second
	// skips what the first has locked.
	var batch []store.NewMessage
	for i := range 20 {
		batch = append(batch, store.NewMessage{Message: msg(fmt.Sprint("concurrent-", i)), EndpointIDs: []string{"ep_1"}, RecoverAt: now.Add(-time.Second)})
	}
	_, err = s.EnqueueMessages(ctx, batch, nil)
	mustNot(t, err, "enqueueing")
	inside, release := make(chan struct{}), make(chan struct{})
	first := make(chan int, 1)
	go func() {
		n, err := s.RecoverDeliveries(ctx, time.Now(), 15, func(store.Tx, []store.RecoveredDelivery) error {
			close(inside)
			<-release
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		first <- n
	}()
	<-inside
	// Bounded, should the second pass wait for the first's locks.
	secondCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	second, err := s.RecoverDeliveries(secondCtx, time.Now(), 100, func(store.Tx, []store.RecoveredDelivery) error { return nil })
	close(release)
	mustNot(t, err, "recovering while another pass runs")
	if n := <-first; n != 15 || second != 5 {
		t.Fatalf("two passes at once took %d and %d deliveries, want 15 and 5", n, second)
	}
	if n := awaitingRecovery(t, s); n != 0 {
		t.Fatalf("%d deliveries await recovery after both passes, want 0", n)
	}
}
