package direct_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/delivery"
	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/webhook"
	"github.com/gwook/gwook/test/pgtest"
)

// waitTimeout bounds every wait for a delivery.
const waitTimeout = 30 * time.Second

// fastSchedule retries quickly: four attempts in all.
const fastSchedule = "10ms,20ms,30ms"

// databases opens a new, empty Store of each dialect.
var databases = []struct {
	name string
	open func(t *testing.T) *store.Store
}{
	{"SQLite", func(t *testing.T) *store.Store { return openStore(t, "", t.TempDir()) }},
	{"Postgres", func(t *testing.T) *store.Store { return openStore(t, pgtest.NewDatabase(t), "") }},
}

func openStore(t testing.TB, url, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, dir)
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// forEachDatabase runs fn on a new Store of each dialect.
func forEachDatabase(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) { fn(t, db.open(t)) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// statsSink captures what a stats.Recorder writes.
type statsSink struct {
	mu   sync.Mutex
	rows []store.StatsRow
}

func (s *statsSink) write(_ context.Context, rows []store.StatsRow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, rows...)
	return nil
}

// failed sums the Failed counts written for appID.
func (s *statsSink) failed(appID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, r := range s.rows {
		if r.ApplicationID == appID {
			n += r.Counts.Failed
		}
	}
	return n
}

var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// testQueue is a Queue with the catalog it finds endpoints in.
type testQueue struct {
	*direct.Queue
	catalog *catalog.Catalog
}

// Send syncs the catalog, so that the endpoints the test made are held,
// then sends.
func (q testQueue) Send(ctx context.Context, appID string, n *event.Notification) (direct.Result, error) {
	if err := q.catalog.Sync(ctx); err != nil {
		return direct.Result{}, err
	}
	return q.Queue.Send(ctx, appID, n)
}

// newQueue returns a Queue on st with the schedule, not started, stopped
// when the test ends, and a started catalog of st.
func newQueue(t testing.TB, st *store.Store, schedule string, rec *stats.Recorder, opts direct.Options) testQueue {
	t.Helper()
	return newQueueWithCatalog(t, st, schedule, rec, opts, catalog.Options{})
}

// newQueueWithCatalog is newQueue with a catalog of the given options.
func newQueueWithCatalog(t testing.TB, st *store.Store, schedule string, rec *stats.Recorder, opts direct.Options, catOpts catalog.Options) testQueue {
	t.Helper()
	sched, err := delivery.ParseSchedule(schedule)
	if err != nil {
		t.Fatal(err)
	}
	client := delivery.NewClient(delivery.ClientOptions{Timeout: 5 * time.Second, URLs: netguard.Policy{AllowPrivate: true}})
	t.Cleanup(client.CloseIdleConnections)
	opts.Timeout = 5 * time.Second
	if opts.Logger == nil {
		opts.Logger = testLogger
	}
	if catOpts.Logger == nil {
		catOpts.Logger = opts.Logger
	}
	cat := catalog.New(st, catOpts)
	if err := cat.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	q, err := direct.New(st, cat, client, sched, rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return testQueue{Queue: q, catalog: cat}
}

// startQueue starts q until the test ends.
func startQueue(t testing.TB, q testQueue) {
	t.Helper()
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("stopping the queue: %v", err)
		}
	})
}

// receiver is a webhook receiver on a loopback HTTP server: the first
// len(statuses) requests are answered with those statuses without being
// verified; the rest go to the webhook.Receiver.
type receiver struct {
	*webhook.Receiver
	URL      string
	requests atomic.Int64
}

func newReceiver(t testing.TB, secrets []string, statuses ...int) *receiver {
	t.Helper()
	rcv, err := webhook.NewReceiver(secrets, webhook.ReceiverOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{Receiver: rcv}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.requests.Add(1)
		if int(n) <= len(statuses) {
			http.Error(w, fmt.Sprintf("answer %d", n), statuses[n-1])
			return
		}
		rcv.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hook"
	return r
}

// waitFailed waits until the Failed counts rec wrote to sink for appID
// reach want: a delivery is counted failed just after it is recorded so.
func waitFailed(t *testing.T, rec *stats.Recorder, sink *statsSink, appID string, want int64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if err := rec.Flush(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		n := sink.failed(appID)
		if n == want {
			return
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("stats: %d failed, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func createApp(t *testing.T, st *store.Store, id string) {
	t.Helper()
	if _, err := st.CreateApplication(ctxFor(t), store.Application{ID: id, Name: id}); err != nil {
		t.Fatal(err)
	}
}

// appWithEndpoint creates application "app" with an endpoint on a new
// receiver that verifies the endpoint's secret.
func appWithEndpoint(t *testing.T, st *store.Store) (*receiver, store.Endpoint) {
	t.Helper()
	createApp(t, st, "app")
	secret := store.NewEndpointSecret()
	rcv := newReceiver(t, []string{secret})
	return rcv, createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: rcv.URL, Secret: secret})
}

func createEndpoint(t *testing.T, st *store.Store, ep store.Endpoint) store.Endpoint {
	t.Helper()
	e, err := st.CreateEndpoint(ctxFor(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newEvent returns an event of the given id and type as accepted, with
// its raw body.
func newEvent(id, typ string) *event.Notification {
	raw := fmt.Sprintf(`{"id":%q,"type":%q,"source":"test","project":"p","user_id":"u","time":"2026-01-02T03:04:05Z","data":{"n": 1 }}`, id, typ)
	return &event.Notification{ID: id, Type: typ, Raw: []byte(raw)}
}

func send(t *testing.T, q testQueue, appID string, n *event.Notification) direct.Result {
	t.Helper()
	res, err := q.Send(ctxFor(t), appID, n)
	if err != nil {
		t.Fatalf("sending event %s: %v", n.ID, err)
	}
	return res
}

// deliveryOf reads the delivery of message msgID to endpoint epID.
func deliveryOf(ctx context.Context, st *store.Store, msgID, epID string) (store.Delivery, error) {
	key := store.DeliveryKey{MessageID: msgID, EndpointID: epID}
	read, err := st.GetDeliveryMessages(ctx, []store.DeliveryKey{key})
	if err != nil {
		return store.Delivery{}, err
	}
	dm, ok := read[key]
	if !ok {
		return store.Delivery{}, fmt.Errorf("no delivery of %s to %s", msgID, epID)
	}
	return dm.Delivery, nil
}

// waitDone waits until the message's delivery to the endpoint is no longer
// pending, and returns it.
func waitDone(t *testing.T, st *store.Store, msgID, epID string) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := deliveryOf(ctxFor(t), st, msgID, epID)
		if err != nil {
			t.Fatalf("reading the delivery of %s to %s: %v", msgID, epID, err)
		}
		if d.Status != store.DeliveryPending {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery of %s to %s is still pending after %v: %+v", msgID, epID, waitTimeout, d)
		}
		<-tick.C
	}
}

// attemptStatuses lists the response statuses of a message's attempts to
// an endpoint, oldest first.
func attemptStatuses(t *testing.T, st *store.Store, msgID, epID string) []int {
	t.Helper()
	page, err := st.ListAttempts(ctxFor(t), msgID, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, a := range page.Items {
		if a.EndpointID == epID {
			statuses = append(statuses, a.ResponseStatus)
		}
	}
	return statuses
}

// checkWebhook fails unless wh verified and carries the message.
func checkWebhook(t *testing.T, wh webhook.Webhook, msgID string, body []byte) {
	t.Helper()
	if !wh.Verified() {
		t.Fatalf("webhook did not verify: %v", wh.Err)
	}
	if wh.ID != msgID {
		t.Fatalf("webhook-id %q, want the message id %q", wh.ID, msgID)
	}
	if !bytes.Equal(wh.Body, body) {
		t.Fatalf("body %q, want the event as accepted %q", wh.Body, body)
	}
}

func TestFanOut(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		secretA, secretB := store.NewEndpointSecret(), store.NewEndpointSecret()
		all, exact := newReceiver(t, []string{secretA}), newReceiver(t, []string{secretB})
		unwanted := newReceiver(t, []string{store.NewEndpointSecret()})
		epAll := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: all.URL, Secret: secretA})
		epExact := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: exact.URL, Secret: secretB, EventTypes: []string{"other", "user.created"}})
		createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: unwanted.URL, Disabled: true})
		createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: unwanted.URL, EventTypes: []string{"user.deleted"}})

		q := newQueue(t, st, fastSchedule, nil, direct.Options{})
		startQueue(t, q)
		ev := newEvent("ev-1", "user.created")
		res := send(t, q, "app", ev)
		if res.Endpoints != 2 || res.Duplicate || !strings.HasPrefix(res.MessageID, "msg_") {
			t.Fatalf("Send: %+v, want a new message to 2 endpoints", res)
		}
		for _, c := range []struct {
			ep  store.Endpoint
			rcv *receiver
		}{{epAll, all}, {epExact, exact}} {
			d := waitDone(t, st, res.MessageID, c.ep.ID)
			if d.Status != store.DeliveryDelivered || d.Attempts != 1 {
				t.Fatalf("delivery to %s: %+v, want delivered on attempt 1", c.ep.ID, d)
			}
			got := c.rcv.Received()
			if len(got) != 1 {
				t.Fatalf("endpoint %s received %d webhooks, want 1", c.ep.ID, len(got))
			}
			checkWebhook(t, got[0], res.MessageID, ev.Raw)
		}

		// The same event again is a duplicate and sends nothing.
		again := send(t, q, "app", newEvent("ev-1", "user.created"))
		if !again.Duplicate || again.MessageID != res.MessageID || again.Endpoints != 2 {
			t.Fatalf("Send of the same event: %+v, want the duplicate of %+v", again, res)
		}
		// An event no endpoint takes is stored, sent nowhere.
		createApp(t, st, "quiet")
		createEndpoint(t, st, store.Endpoint{ApplicationID: "quiet", URL: unwanted.URL, EventTypes: []string{"user.deleted"}})
		none := send(t, q, "quiet", newEvent("ev-2", "user.created"))
		if none.Endpoints != 0 || none.Duplicate {
			t.Fatalf("Send of an event no endpoint takes: %+v", none)
		}
		if page, err := st.ListMessages(ctxFor(t), "quiet", store.ListOptions{}); err != nil || len(page.Items) != 1 || page.Items[0].ID != none.MessageID {
			t.Fatalf("messages of the application no endpoint of which takes the event: %+v (%v)", page.Items, err)
		}
		// A later event, once delivered, shows that the duplicate made no
		// job that was worked meanwhile.
		later := send(t, q, "app", newEvent("ev-3", "user.created"))
		waitDone(t, st, later.MessageID, epAll.ID)
		waitDone(t, st, later.MessageID, epExact.ID)
		if n, m := len(all.Received()), len(exact.Received()); n != 2 || m != 2 {
			t.Fatalf("received %d and %d webhooks after the duplicate and a later event, want 2 each", n, m)
		}
		if n := unwanted.requests.Load(); n != 0 {
			t.Fatalf("the disabled and the other-type endpoints received %d requests", n)
		}
		page, err := st.ListMessages(ctxFor(t), "app", store.ListOptions{})
		if err != nil || len(page.Items) != 2 {
			t.Fatalf("listed %d messages (%v), want 2", len(page.Items), err)
		}
	})
}

func TestRetryThenDeliver(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		secret := store.NewEndpointSecret()
		rcv := newReceiver(t, []string{secret}, http.StatusInternalServerError)
		ep := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: rcv.URL, Secret: secret})
		q := newQueue(t, st, fastSchedule, nil, direct.Options{})
		startQueue(t, q)
		ev := newEvent("ev", "t")
		res := send(t, q, "app", ev)
		d := waitDone(t, st, res.MessageID, ep.ID)
		if d.Status != store.DeliveryDelivered || d.Attempts != 2 {
			t.Fatalf("delivery %+v, want delivered on attempt 2", d)
		}
		if got := attemptStatuses(t, st, res.MessageID, ep.ID); !slices.Equal(got, []int{500, 204}) {
			t.Fatalf("attempt statuses %v, want [500 204]", got)
		}
		page, _ := st.ListAttempts(ctxFor(t), res.MessageID, store.ListOptions{})
		if first := page.Items[0]; first.Error != "HTTP 500" || !strings.Contains(string(first.ResponseBody), "answer 1") {
			t.Fatalf("first attempt recorded as %+v", first)
		}
		got := rcv.Received()
		if len(got) != 1 {
			t.Fatalf("received %d verified webhooks, want 1", len(got))
		}
		checkWebhook(t, got[0], res.MessageID, ev.Raw)
	})
}

func TestFailAfterTheLastStep(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		rcv := newReceiver(t, []string{store.NewEndpointSecret()}, 500, 500, 500, 500, 500, 500)
		ep := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: rcv.URL})
		sink := &statsSink{}
		rec := stats.NewRecorder(sink.write, stats.Options{})
		q := newQueue(t, st, fastSchedule, rec, direct.Options{})
		startQueue(t, q)
		res := send(t, q, "app", newEvent("ev", "t"))
		d := waitDone(t, st, res.MessageID, ep.ID)
		if d.Status != store.DeliveryFailed || d.Attempts != 4 || d.LastError != "HTTP 500" {
			t.Fatalf("delivery %+v, want failed after 4 attempts", d)
		}
		if got := attemptStatuses(t, st, res.MessageID, ep.ID); !slices.Equal(got, []int{500, 500, 500, 500}) {
			t.Fatalf("attempt statuses %v, want four 500s", got)
		}
		waitFailed(t, rec, sink, "app", 1)
		if n := rcv.requests.Load(); n != 4 {
			t.Fatalf("the endpoint received %d requests, want 4", n)
		}
	})
}

func TestGoneDisablesTheEndpoint(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		rcv := newReceiver(t, []string{store.NewEndpointSecret()}, http.StatusGone)
		ep := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: rcv.URL})
		q := newQueue(t, st, fastSchedule, nil, direct.Options{})
		startQueue(t, q)
		res := send(t, q, "app", newEvent("ev", "t"))
		d := waitDone(t, st, res.MessageID, ep.ID)
		if d.Status != store.DeliveryFailed || d.Attempts != 1 {
			t.Fatalf("delivery %+v, want failed after 1 attempt", d)
		}
		got, err := st.GetEndpoint(ctxFor(t), "app", ep.ID)
		if err != nil || !got.Disabled {
			t.Fatalf("endpoint after 410: disabled %v (%v), want disabled", got.Disabled, err)
		}
		// A disabled endpoint takes no more messages.
		if res := send(t, q, "app", newEvent("ev-2", "t")); res.Endpoints != 0 {
			t.Fatalf("Send after the endpoint was disabled: %+v, want no endpoint", res)
		}
	})
}

func TestRotatedSecretsSignBoth(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		old := store.NewEndpointSecret()
		rcv := newReceiver(t, []string{old}) // knows only the old secret
		ep := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: rcv.URL, Secret: old})
		rotated, err := st.RotateEndpointSecret(ctxFor(t), "app", ep.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		q := newQueue(t, st, fastSchedule, nil, direct.Options{})
		startQueue(t, q)
		ev := newEvent("ev", "t")
		res := send(t, q, "app", ev)
		if d := waitDone(t, st, res.MessageID, ep.ID); d.Status != store.DeliveryDelivered {
			t.Fatalf("delivery %+v, want delivered", d)
		}
		got := rcv.Received()
		if len(got) != 1 {
			t.Fatalf("received %d webhooks, want 1", len(got))
		}
		checkWebhook(t, got[0], res.MessageID, ev.Raw)
		if sigs := strings.Fields(got[0].Header.Get(webhook.HeaderSignature)); len(sigs) != 2 {
			t.Fatalf("%d signatures, want 2 (the new secret's and the old one's)", len(sigs))
		}
		if err := webhook.Verify([]string{rotated.Secret}, got[0].Header, got[0].Body, time.Now(), 0); err != nil {
			t.Fatalf("the new secret does not verify: %v", err)
		}
	})
}

// TestRestart accepts events while no worker runs, as if the process died
// after Send; a new Queue (a new River client) on the same database
// delivers them all.
func TestRestart(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		rcv, ep := appWithEndpoint(t, st)
		deleted := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: rcv.URL})

		first := newQueue(t, st, fastSchedule, nil, direct.Options{})
		const events = 10
		var ids []string
		for i := range events {
			res := send(t, first, "app", newEvent(fmt.Sprint("ev-", i), "t"))
			if res.Endpoints != 2 {
				t.Fatalf("Send: %+v, want 2 endpoints", res)
			}
			ids = append(ids, res.MessageID)
		}
		// Deleted before any worker got to it: nothing is sent there.
		if err := st.DeleteEndpoint(ctxFor(t), "app", deleted.ID); err != nil {
			t.Fatal(err)
		}

		second := newQueue(t, st, fastSchedule, nil, direct.Options{})
		startQueue(t, second)
		for _, id := range ids {
			if d := waitDone(t, st, id, ep.ID); d.Status != store.DeliveryDelivered || d.Attempts != 1 {
				t.Fatalf("delivery of %s: %+v, want delivered on attempt 1", id, d)
			}
			if d := waitDone(t, st, id, deleted.ID); d.Status != store.DeliveryFailed || d.Attempts != 0 || d.LastError != "endpoint deleted" {
				t.Fatalf("delivery of %s to the deleted endpoint: %+v, want failed without an attempt", id, d)
			}
		}
		got := rcv.Received()
		if len(got) != events {
			t.Fatalf("received %d webhooks, want %d", len(got), events)
		}
		seen := map[string]bool{}
		for _, wh := range got {
			if !wh.Verified() || seen[wh.ID] || !slices.Contains(ids, wh.ID) {
				t.Fatalf("webhook %s: verified %v, seen before %v", wh.ID, wh.Verified(), seen[wh.ID])
			}
			seen[wh.ID] = true
		}
	})
}

// TestEndpointConcurrencyLimit sends to a slow endpoint with many workers:
// no more than MaxInFlightPerEndpoint attempts reach it at once, and
// everything is delivered.
func TestEndpointConcurrencyLimit(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		var running, most atomic.Int64
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(slow.Close)
		t.Cleanup(func() { close(release) })
		ep := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: slow.URL})
		q := newQueue(t, st, fastSchedule, nil, direct.Options{Workers: 20, MaxInFlightPerEndpoint: 2})
		startQueue(t, q)
		var ids []string
		for i := range 6 {
			ids = append(ids, send(t, q, "app", newEvent(fmt.Sprint("ev-", i), "t")).MessageID)
		}
		// Wait until the limit is reached, then let the attempts end one
		// at a time.
		deadline := time.Now().Add(waitTimeout)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for running.Load() < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%d attempts running after %v, want 2", running.Load(), waitTimeout)
			}
			<-tick.C
		}
		for range ids {
			release <- struct{}{}
		}
		for _, id := range ids {
			if d := waitDone(t, st, id, ep.ID); d.Status != store.DeliveryDelivered || d.Attempts != 1 {
				t.Fatalf("delivery of %s: %+v, want delivered on attempt 1", id, d)
			}
		}
		if m := most.Load(); m != 2 {
			t.Fatalf("at most %d attempts ran at once, want 2", m)
		}
	})
}

// A replica whose catalog has not applied a change made on another one yet
// (an endpoint just created) still delivers: an endpoint it lacks is read
// from the store before the delivery is given up.
func TestEndpointNotYetInTheCatalog(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		// The worker's catalog is loaded now and polls only hourly.
		worker := newQueueWithCatalog(t, st, fastSchedule, nil, direct.Options{}, catalog.Options{PollInterval: time.Hour})
		startQueue(t, worker)
		secret := store.NewEndpointSecret()
		rcv := newReceiver(t, []string{secret})
		ep, err := st.CreateEndpoint(ctxFor(t), store.Endpoint{ApplicationID: "app", URL: rcv.URL, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		sender := newQueue(t, st, fastSchedule, nil, direct.Options{})
		if r := send(t, sender, "app", newEvent("ev-1", "t")); r.Endpoints != 1 {
			t.Fatalf("sent to %d endpoints, want 1", r.Endpoints)
		}
		if _, ok := worker.catalog.Endpoint("app", ep.ID); ok {
			t.Fatal("the worker's catalog has the endpoint already: the test proves nothing")
		}
		if _, err := rcv.WaitFor(1, waitTimeout); err != nil {
			t.Fatal(err)
		}
	})
}
