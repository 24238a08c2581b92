package direct_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/telemetry"
)

// metric returns the value of the series named series (with its labels, as
// exposed) in m's scrape, or -1 when there is none.
func metric(t *testing.T, m *telemetry.Metrics, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return -1
}

// clock is a settable clock.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Now().UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// An endpoint that fails every attempt for DisableAfter is disabled, its
// delivery failed, while another endpoint of the application is not
// touched.
func TestFailingEndpointIsDisabled(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		secret := store.NewEndpointSecret()
		healthy := newReceiver(t, []string{secret})
		failing := newReceiver(t, []string{secret}, 500, 500, 500, 500, 500, 500)
		epHealthy := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: healthy.URL, Secret: secret})
		epFailing := createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: failing.URL, Secret: secret})
		clk := newClock()
		metrics := telemetry.NewMetrics("test")
		sink := &statsSink{}
		rec := stats.NewRecorder(sink.write, stats.Options{})
		// Attempts 3 and later come 500 ms apart: the clock moves before
		// the schedule runs out.
		q := newQueue(t, st, "10ms,500ms,500ms,500ms,500ms", rec, direct.Options{Now: clk.Now, DisableAfter: time.Hour, Metrics: metrics})
		startQueue(t, q)
		res := send(t, q, "app", newEvent("ev", "t"))
		if d := waitDone(t, st, res.MessageID, epHealthy.ID); d.Status != store.DeliveryDelivered {
			t.Fatalf("the healthy endpoint's delivery: %+v", d)
		}
		deadline := time.Now().Add(waitTimeout)
		for failing.requests.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no attempt reached the failing endpoint")
			}
			time.Sleep(5 * time.Millisecond)
		}
		clk.Advance(2 * time.Hour)

		d := waitDone(t, st, res.MessageID, epFailing.ID)
		if d.Status != store.DeliveryFailed || !strings.Contains(d.LastError, "endpoint disabled: it failed every attempt since") {
			t.Fatalf("the failing endpoint's delivery: %+v, want failed as the endpoint was disabled", d)
		}
		if d.Attempts >= 6 {
			t.Fatalf("the delivery ran out its schedule (%d attempts) instead of being given up", d.Attempts)
		}
		if got, err := st.GetEndpoint(ctxFor(t), "app", epFailing.ID); err != nil || !got.Disabled {
			t.Fatalf("the failing endpoint: disabled %v (%v), want disabled", got.Disabled, err)
		}
		if got, err := st.GetEndpoint(ctxFor(t), "app", epHealthy.ID); err != nil || got.Disabled {
			t.Fatalf("the healthy endpoint: disabled %v (%v), want enabled", got.Disabled, err)
		}
		if v := metric(t, metrics, `gwook_delivery_endpoints_disabled_total{reason="failing"}`); v != 1 {
			t.Fatalf("endpoints disabled as failing: %v, want 1", v)
		}
		if v := metric(t, metrics, `gwook_delivery_attempts_total{result="delivered",status_class="2xx"}`); v != 1 {
			t.Fatalf("attempts delivered: %v, want 1", v)
		}
		if v := metric(t, metrics, `gwook_delivery_attempts_total{result="retry",status_class="5xx"}`); v != float64(d.Attempts) {
			t.Fatalf("attempts retried on a 5xx: %v, want %d", v, d.Attempts)
		}
		waitFailed(t, rec, sink, "app", 1)
	})
}

// The backlog of the delivery queue is read into the metrics: the jobs not
// finished and how long the oldest due one has waited.
func TestBacklogMetrics(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		createApp(t, st, "app")
		// An endpoint that holds every request until the test ends: the
		// jobs stay running.
		release := make(chan struct{})
		hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(hold.Close)
		for range 2 {
			createEndpoint(t, st, store.Endpoint{ApplicationID: "app", URL: hold.URL + "/hook"})
		}
		// Sent while no worker runs: three messages, six due jobs.
		idle := newQueue(t, st, fastSchedule, nil, direct.Options{})
		for _, id := range []string{"ev-1", "ev-2", "ev-3"} {
			send(t, idle, "app", newEvent(id, "t"))
		}
		sent := time.Now()
		deadline := sent.Add(waitTimeout)
		var b store.JobBacklog
		for {
			var err error
			b, err = st.DeliveryBacklog(ctxFor(t), "gwook_delivery")
			if err != nil {
				t.Fatal(err)
			}
			if b.OldestDue >= 50*time.Millisecond || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if b.Jobs != 6 || b.OldestDue < 50*time.Millisecond || b.OldestDue > time.Since(sent)+time.Minute {
			t.Fatalf("backlog %+v, want 6 jobs, the oldest due for at least 50 ms", b)
		}
		empty, err := st.DeliveryBacklog(ctxFor(t), "another_queue")
		if err != nil || empty.Jobs != 0 || empty.OldestDue != 0 {
			t.Fatalf("backlog of an empty queue: %+v, %v", empty, err)
		}
		// A started queue reads it into its metrics at once.
		metrics := telemetry.NewMetrics("test")
		if v := metric(t, metrics, "gwook_delivery_queue_read_ok"); v != 0 {
			t.Fatalf("gwook_delivery_queue_read_ok before any read: %v", v)
		}
		q := newQueue(t, st, fastSchedule, nil, direct.Options{Metrics: metrics})
		startQueue(t, q)
		t.Cleanup(func() { close(release) }) // before the queue stops
		for metric(t, metrics, "gwook_delivery_queue_read_ok") != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the queue did not read its backlog")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if v := metric(t, metrics, "gwook_delivery_queue_jobs"); v != 6 {
			t.Fatalf("gwook_delivery_queue_jobs %v, want 6", v)
		}
	})
}
