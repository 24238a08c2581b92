package e2e

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/webhook"
	"github.com/gwook/gwook/test/pgtest"
)

// deliveryKey is one message to one endpoint: what must never be in two
// requests at once, and, without failures, in one request only.
type deliveryKey struct {
	webhookID string
	endpoint  int
}

// interval is one request as the receiver held it.
type interval struct{ start, end time.Time }

// concurrencyReceiver is a slow receiver of several endpoints, one path
// each (/ep/0, /ep/1, ...), each verifying with its endpoint's secret. It
// records, per message and endpoint, the interval of each request, and
// counts a request that starts while another of the same message and
// endpoint is in progress.
type concurrencyReceiver struct {
	receivers []*webhook.Receiver

	mu         sync.Mutex
	inProgress map[deliveryKey]int
	intervals  map[deliveryKey][]interval
	overlaps   int
	rejected   []string // why webhooks that did not verify were refused
}

func newConcurrencyReceiver(t *testing.T, secrets []string) *concurrencyReceiver {
	r := &concurrencyReceiver{inProgress: map[deliveryKey]int{}, intervals: map[deliveryKey][]interval{}}
	for _, s := range secrets {
		rec, err := webhook.NewReceiver([]string{s}, webhook.ReceiverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.receivers = append(r.receivers, rec)
	}
	return r
}

func (r *concurrencyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ep, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/ep/"))
	if err != nil || ep < 0 || ep >= len(r.receivers) {
		http.NotFound(w, req)
		return
	}
	key := deliveryKey{req.Header.Get("webhook-id"), ep}
	r.mu.Lock()
	if r.inProgress[key] > 0 {
		r.overlaps++
	}
	r.inProgress[key]++
	r.mu.Unlock()
	start := time.Now()

	// A slow endpoint: each request is held 20 to 50 ms, so that a second
	// request for the same delivery, if one were made, would meet the
	// first.
	time.Sleep(time.Duration(20+rand.IntN(31)) * time.Millisecond)
	rw := &statusRecorder{ResponseWriter: w}
	r.receivers[ep].ServeHTTP(rw, req)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.inProgress[key]--
	r.intervals[key] = append(r.intervals[key], interval{start, time.Now()})
	if rw.status != http.StatusNoContent {
		r.rejected = append(r.rejected, fmt.Sprintf("%s to endpoint %d: answered %d", key.webhookID, ep, rw.status))
	}
}

// snapshot returns the recorded intervals, the overlaps seen and the
// refusals.
func (r *concurrencyReceiver) snapshot() (map[deliveryKey][]interval, int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[deliveryKey][]interval, len(r.intervals))
	for k, v := range r.intervals {
		out[k] = slices.Clone(v)
	}
	return out, r.overlaps, slices.Clone(r.rejected)
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// TestDirectDeliveryTwoProcessesNeverDeliverTwice runs two gwook processes
// delivering webhooks themselves from one PostgreSQL database, sends
// events through both to an application with three endpoints behind a
// slow receiver, and checks that every event reaches every endpoint,
// verified, exactly once; that no two requests for one message and
// endpoint were ever in progress at once; and that both processes' River
// workers made deliveries (by River's record of the client that worked
// each job, matched to the client id each process logs at start). One
// attempt at a time per endpoint and process hands most first attempts
// to River's workers (the endpoint is busy), so that both processes'
// workers compete for jobs besides making first attempts.
func TestDirectDeliveryTwoProcessesNeverDeliverTwice(t *testing.T) {
	const (
		events    = 300
		endpoints = 3
		producers = 8
	)
	db := pgtest.NewDatabase(t)
	s := &statsSetup{env: []string{
		"DATABASE_URL=" + db,
		"DELIVERY_BACKEND=direct",
		"DELIVERY_ALLOW_PRIVATE_NETWORKS=true",
		"AUTH_USERNAME=producer",
		"AUTH_PASSWORD=stats-test-pass",
		"DEDUP_TTL=0",
		"DELIVERY_MAX_IN_FLIGHT_PER_ENDPOINT=1",
		"METRICS_PORT=0",
		"LOG_FORMAT=text",
		"DATA_DIR=" + t.TempDir(),
	}}
	out, err := s.gwook("token", "create", "--name", "concurrency-test", "--scope", "admin")
	if err != nil {
		t.Fatalf("gwook token create: %v\n%s", err, out)
	}
	s.admin = strings.TrimSpace(string(out))

	secrets := make([]string, endpoints)
	for i := range secrets {
		secrets[i] = store.NewEndpointSecret()
	}
	receiver := newConcurrencyReceiver(t, secrets)
	srv := httptest.NewServer(receiver)
	t.Cleanup(srv.Close)

	// The application and its endpoints exist before the second process
	// starts, so that both know the application from the start.
	first := s.start(t, "gwook-1")
	app := "app_" + randomSuffix(t)
	if code, body := s.call(t, first, http.MethodPost, "/api/v1/applications", map[string]any{"id": app, "name": app}); code != http.StatusCreated {
		t.Fatalf("creating the application: %d %s", code, body)
	}
	for i, secret := range secrets {
		if code, body := s.call(t, first, http.MethodPost, "/api/v1/applications/"+app+"/endpoints",
			map[string]any{"url": srv.URL + "/ep/" + strconv.Itoa(i), "secret": secret}); code != http.StatusCreated {
			t.Fatalf("creating endpoint %d: %d %s", i, code, body)
		}
	}
	second := s.start(t, "gwook-2")
	replicas := []*replica{first, second}

	// Producers send the events, each through the two processes in turn.
	start := time.Now()
	ids := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var refused []string
	for range producers {
		wg.Go(func() {
			for i := range ids {
				r := replicas[i%len(replicas)]
				if status := sendConcurrencyEvent(r, app, fmt.Sprintf("evt_%04d", i)); status != http.StatusAccepted {
					mu.Lock()
					refused = append(refused, fmt.Sprintf("event %d through %s: %d", i, r.name, status))
					mu.Unlock()
				}
			}
		})
	}
	for i := range events {
		ids <- i
	}
	close(ids)
	wg.Wait()
	if len(refused) > 0 {
		t.Fatalf("%d events not answered 202: %v", len(refused), refused)
	}

	// Every delivery ends delivered, and no job is left to work: then
	// nothing more will be sent.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	const want = events * endpoints
	for {
		var delivered, open int
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM deliveries WHERE status = 'delivered'),
			(SELECT count(*) FROM river_job WHERE kind = 'gwook_delivery' AND state NOT IN ('completed', 'cancelled', 'discarded'))`).
			Scan(&delivered, &open); err != nil {
			t.Fatalf("reading the deliveries and their jobs: %v", err)
		}
		if delivered == want && open == 0 {
			break
		}
		if ctx.Err() != nil {
			intervals, _, _ := receiver.snapshot()
			t.Fatalf("%d of %d deliveries delivered (%d jobs still to work) after 2 minutes; the receiver got %d deliveries\n%s\n%s",
				delivered, want, open, len(intervals), first.p.LogTail(20), second.p.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)

	intervals, overlaps, rejected := receiver.snapshot()
	if len(rejected) > 0 {
		t.Errorf("%d webhooks did not verify: %v", len(rejected), rejected)
	}
	// Each event reached each endpoint under one webhook-id, once.
	perEndpoint := make([]map[string]bool, endpoints)
	for i := range perEndpoint {
		perEndpoint[i] = map[string]bool{}
	}
	requests, twice := 0, 0
	for k, ivs := range intervals {
		perEndpoint[k.endpoint][k.webhookID] = true
		requests += len(ivs)
		if len(ivs) > 1 {
			twice++
		}
		slices.SortFunc(ivs, func(a, b interval) int { return a.start.Compare(b.start) })
		for i := 1; i < len(ivs); i++ {
			if ivs[i].start.Before(ivs[i-1].end) {
				t.Errorf("message %s to endpoint %d: a request started at %v while the one from %v was held until %v",
					k.webhookID, k.endpoint, ivs[i].start, ivs[i-1].start, ivs[i-1].end)
			}
		}
	}
	for i, ids := range perEndpoint {
		if len(ids) != events {
			t.Errorf("endpoint %d received %d messages, want %d", i, len(ids), events)
		}
		if i > 0 && !maps.Equal(ids, perEndpoint[0]) {
			t.Errorf("endpoint %d received other messages than endpoint 0", i)
		}
	}
	if overlaps > 0 {
		t.Errorf("%d requests started while another for the same message and endpoint was in progress", overlaps)
	}
	if twice > 0 || requests != want {
		t.Errorf("%d requests for %d deliveries (%d delivered more than once), want each delivered once", requests, len(intervals), twice)
	}

	// Which process's workers worked each job handed to them: the last
	// client River handed it to (a job snoozed because its endpoint was
	// busy may have been handed to the other process first). The
	// deliveries without a job left were first attempts made by the
	// process that accepted the event.
	worked := map[string]int{}
	rows, err := conn.Query(ctx, `SELECT attempted_by[array_length(attempted_by, 1)], count(*) FROM river_job
		WHERE kind = 'gwook_delivery' AND state = 'completed' GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var client string
		var n int
		if err := rows.Scan(&client, &n); err != nil {
			t.Fatal(err)
		}
		worked[client] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(replicas))
	sum := 0
	for i, r := range replicas {
		id := riverClientID(t, r)
		counts[i] = worked[id]
		sum += counts[i]
		if counts[i] == 0 {
			t.Errorf("%s (River client %s) worked no delivery job; jobs by client: %v", r.name, id, worked)
		}
	}
	if sum > want {
		t.Errorf("the two processes' workers completed %d jobs, more than the %d deliveries; jobs by client: %v", sum, want, worked)
	}
	t.Logf("%d events × %d endpoints: %d requests, all delivered %v after the first event; %d first attempts made at once, jobs worked by %s: %d, %s: %d",
		events, endpoints, requests, took.Round(time.Millisecond), want-sum, first.name, counts[0], second.name, counts[1])
}

// sendConcurrencyEvent posts one event of app through r as a producer and
// returns the status, 0 when no answer came.
func sendConcurrencyEvent(r *replica, app, id string) int {
	body := fmt.Sprintf(`{"id":%q,"type":"invoice.paid","source":"billing","project":"concurrency","user_id":%q,"time":"2026-12-01T10:00:00Z","data":{"n":%q}}`, id, app, id)
	req, err := http.NewRequest(http.MethodPost, r.url+"/notifications", strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.SetBasicAuth("producer", "stats-test-pass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

var riverClientLine = regexp.MustCompile(`msg="River client started".* client_id=(\S+)`)

// riverClientID returns the id of the River client of r, as its log says
// when it starts.
func riverClientID(t *testing.T, r *replica) string {
	t.Helper()
	b, err := os.ReadFile(r.p.Log)
	if err != nil {
		t.Fatal(err)
	}
	m := riverClientLine.FindAllSubmatch(b, -1)
	if len(m) != 1 {
		t.Fatalf("%s logged %d River client starts, want 1:\n%s", r.name, len(m), r.p.LogTail(30))
	}
	return string(m[0][1])
}
