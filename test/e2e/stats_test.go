package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
	"github.com/gwook/gwook/test/proc"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// replica is one gwook serve process of a stats test.
type replica struct {
	name string
	url  string
	p    *proc.Process
}

// statsSetup is a PostgreSQL database, a Svix-compatible server and a
// dead-letter topic shared by the gwook processes of a stats test.
type statsSetup struct {
	env   []string
	svix  *svixserver.Server
	db    string
	admin string
}

func newStatsSetup(t *testing.T, extra ...string) *statsSetup {
	t.Helper()
	emu := pubsubemu.FromEnv(t)
	s := &statsSetup{svix: svixserver.New(t), db: pgtest.NewDatabase(t)}
	s.env = append([]string{
		"DATABASE_URL=" + s.db,
		"SVIX_AUTH_TOKEN=sk_stats_test.eu",
		"SVIX_SERVER_URL=" + s.svix.URL(),
		"AUTH_USERNAME=producer",
		"AUTH_PASSWORD=stats-test-pass",
		"REDIS_URL=redis://127.0.0.1:6379/0",
		"DEAD_LETTER_TOPIC=" + emu.CreateTopic(t, emu.UniqueID(t, "stats-dlq")),
		"PUBSUB_PROJECT_ID=" + emu.Project,
		"SVIX_RETRY_MAX_ATTEMPTS=2",
		"SVIX_RETRY_INITIAL_INTERVAL=1ms",
		"SVIX_RETRY_MAX_INTERVAL=5ms",
		"SVIX_RETRY_MAX_ELAPSED=2s",
		"FILTER_EXCLUDE_TYPES=internal.*",
		"METRICS_PORT=0",
		"LOG_FORMAT=text",
		"DATA_DIR=" + t.TempDir(),
	}, extra...)
	out, err := s.gwook("token", "create", "--name", "stats-test", "--scope", "admin")
	if err != nil {
		t.Fatalf("gwook token create: %v\n%s", err, out)
	}
	s.admin = strings.TrimSpace(string(out))
	return s
}

// gwook runs a gwook command with the setup's environment and returns its
// standard output, or its standard error when it fails.
func (s *statsSetup) gwook(args ...string) ([]byte, error) {
	cmd := exec.Command(gwookBin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.Bytes(), err
	}
	return stdout.Bytes(), nil
}

// start runs gwook serve and waits until it is ready.
func (s *statsSetup) start(t *testing.T, name string) *replica {
	t.Helper()
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, s.env...), "HTTP_SERVER_PORT="+strconv.Itoa(port))
	p, err := proc.Start(name, filepath.Join(t.TempDir(), name+".log"), env, gwookBin, "serve")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	r := &replica{name: name, url: "http://127.0.0.1:" + strconv.Itoa(port), p: p}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := proc.WaitHTTP(ctx, r.url+"/health", http.StatusOK, p); err != nil {
		t.Fatalf("%s did not start: %v\n%s", name, err, p.LogTail(30))
	}
	return r
}

// call sends a request to the replica's API with the admin token and
// returns the status and body.
func (s *statsSetup) call(t *testing.T, r *replica, method, path string, body any) (int, []byte) {
	t.Helper()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, in)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// send posts one event as a producer and returns the outcome Gwook answered.
func (s *statsSetup) send(t *testing.T, r *replica, ev map[string]any) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, r.url+"/notifications", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("producer", "stats-test-pass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Outcome      string `json:"outcome"`
		DeadLettered bool   `json:"dead_lettered"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("%s answered %d without a JSON body: %v", r.name, resp.StatusCode, err)
	}
	if answer.DeadLettered {
		return "dead_lettered"
	}
	return answer.Outcome
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// awayFromMinuteEdge returns once the next minute is at least margin away,
// so that an event sent now is counted in the minute it was sent in.
func awayFromMinuteEdge(margin time.Duration) time.Time {
	now := time.Now()
	if next := now.Truncate(time.Minute).Add(time.Minute); next.Sub(now) < margin {
		// Waiting for the clock, not for another process: nothing to poll.
		time.Sleep(next.Sub(now) + 10*time.Millisecond)
	}
	return time.Now()
}

type minuteKey struct {
	app    string
	minute time.Time
}

// TestStatsExactAcrossTwoProcesses sends a known sequence of events, every
// outcome but failed (direct delivery's), through two gwook processes
// sharing PostgreSQL and Redis, alternating between them, and compares
// every per-minute bucket of every application with what was sent: through
// the stats API while both run, and in the database after both stopped
// (the shutdown write adds nothing twice).
func TestStatsExactAcrossTwoProcesses(t *testing.T) {
	s := newStatsSetup(t, "STATS_FLUSH_INTERVAL=200ms")
	replicas := []*replica{s.start(t, "gwook-a"), s.start(t, "gwook-b")}
	tag := randomSuffix(t)
	apps := []string{"app_" + tag + "_1", "app_" + tag + "_2"}
	for _, app := range apps {
		if code, body := s.call(t, replicas[0], http.MethodPost, "/api/v1/applications", map[string]any{"id": app, "name": app}); code != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", app, code, body)
		}
	}
	// The first application drops user.deleted and amounts of 10 or less.
	if code, body := s.call(t, replicas[1], http.MethodPut, "/api/v1/applications/"+apps[0]+"/filter", map[string]any{
		"exclude_types": []string{"user.deleted"}, "expression": "event.data.amount > 10",
	}); code != http.StatusOK {
		t.Fatalf("setting the filter: %d %s", code, body)
	}
	// The other replica applies it within 5 seconds.
	probe := map[string]any{"event": map[string]any{"id": "evt_probe", "type": "user.deleted", "source": "s", "project": "p",
		"user_id": apps[0], "time": "2026-12-01T10:00:00Z", "data": map[string]any{"amount": 100}}}
	for deadline := time.Now().Add(5 * time.Second); ; {
		code, body := s.call(t, replicas[0], http.MethodPost, "/api/v1/applications/"+apps[0]+"/filter/test", probe)
		if code == http.StatusOK && strings.Contains(string(body), `"allowed":false`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the filter set through %s did not apply on %s within 5s: %d %s", replicas[1].name, replicas[0].name, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	start := time.Now()
	want := map[minuteKey]store.StatsCounts{}
	n := 0
	sendAs := func(app, typ, source string, amount int, wantOutcome string, script ...svixserver.Response) {
		t.Helper()
		n++
		r := replicas[n%2]
		s.svix.Script(script...)
		sentAt := awayFromMinuteEdge(5 * time.Second)
		got := s.send(t, r, map[string]any{
			"id": fmt.Sprintf("evt_%s_%d", tag, n), "type": typ, "source": source, "project": "stats",
			"user_id": app, "time": "2026-12-01T10:00:00Z", "data": map[string]any{"amount": amount},
		})
		if got != wantOutcome {
			t.Fatalf("event %d (%s, %s) through %s: outcome %q, want %q\n%s", n, app, typ, r.name, got, wantOutcome, r.p.LogTail(20))
		}
		k := minuteKey{app, sentAt.UTC().Truncate(time.Minute)}
		c := want[k]
		switch wantOutcome {
		case "forwarded":
			c.Forwarded++
		case "filtered":
			c.Filtered++
		case "duplicate":
			c.Duplicate++
		case "dead_lettered":
			c.DeadLettered++
		case "rejected":
			c.Rejected++
		}
		want[k] = c
	}
	unavailable := svixserver.Response{Status: http.StatusServiceUnavailable}
	for round := range 3 {
		for i, app := range apps {
			src := func(what string) string { return fmt.Sprintf("%s-%d-%d", what, round, i) }
			sendAs(app, "invoice.paid", src("paid"), 100, "forwarded")
			sendAs(app, "invoice.paid", src("paid"), 100, "duplicate") // the same key, through the other process
			sendAs(app, "internal.audit", src("audit"), 100, "filtered")
			sendAs(app, "invoice.failed", src("failed"), 100, "dead_lettered", unavailable, unavailable)
			sendAs(app, "invoice.voided", src("voided"), 100, "rejected", svixserver.Response{Status: http.StatusBadRequest})
			if i == 0 {
				sendAs(app, "user.deleted", src("deleted"), 100, "filtered")
				sendAs(app, "invoice.paid", src("small"), 5, "filtered")
			} else {
				sendAs(app, "user.deleted", src("deleted"), 100, "forwarded")
			}
		}
	}

	// While both run: the API answers every bucket, within the flush
	// interval.
	since := start.Add(-time.Minute).UTC().Format(time.RFC3339)
	for _, app := range apps {
		wantBuckets := bucketsOf(want, app)
		var got []statsBucket
		deadline := time.Now().Add(waitTimeout)
		for {
			code, body := s.call(t, replicas[0], http.MethodGet, "/api/v1/applications/"+app+"/stats?granularity=minute&since="+since, nil)
			if code != http.StatusOK {
				t.Fatalf("stats of %s: %d %s", app, code, body)
			}
			var answer struct{ Buckets []statsBucket }
			if err := json.Unmarshal(body, &answer); err != nil {
				t.Fatal(err)
			}
			got = answer.Buckets
			if equalBuckets(got, wantBuckets) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !equalBuckets(got, wantBuckets) {
			t.Errorf("stats of %s through the API:\n got %+v\nwant %+v", app, got, wantBuckets)
		}
	}

	// After both stopped, each having written what it held: the same.
	for _, r := range replicas {
		if err := r.p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range replicas {
		select {
		case <-r.p.Done():
		case <-time.After(waitTimeout):
			t.Fatalf("%s did not stop after SIGTERM", r.name)
		}
	}
	st, err := store.Open(context.Background(), s.db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, app := range apps {
		rows, err := st.QueryStats(context.Background(), store.StatsQuery{ApplicationID: app,
			Since: start.Add(-time.Minute), Until: time.Now().Add(time.Minute), Granularity: store.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var got []statsBucket
		for _, b := range rows {
			got = append(got, statsBucket{Start: b.Start, Counts: countsOf(b.Counts)})
		}
		if want := bucketsOf(want, app); !equalBuckets(got, want) {
			t.Errorf("stats of %s in the database after shutdown:\n got %+v\nwant %+v", app, got, want)
		}
	}
}

// TestStatsWrittenAtShutdown checks that a process stopped with SIGTERM
// writes the counts it held, long before its flush interval.
func TestStatsWrittenAtShutdown(t *testing.T) {
	s := newStatsSetup(t, "STATS_FLUSH_INTERVAL=1h")
	r := s.start(t, "gwook")
	app := "app_" + randomSuffix(t)
	if code, body := s.call(t, r, http.MethodPost, "/api/v1/applications", map[string]any{"id": app, "name": app}); code != http.StatusCreated {
		t.Fatalf("creating %s: %d %s", app, code, body)
	}
	for i := range 5 {
		if got := s.send(t, r, map[string]any{"id": fmt.Sprintf("evt_%d", i), "type": "invoice.paid", "source": fmt.Sprint(i),
			"project": "stats", "user_id": app, "time": "2026-12-01T10:00:00Z", "data": map[string]any{}}); got != "forwarded" {
			t.Fatalf("event %d: %s", i, got)
		}
	}
	if err := r.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.p.Done():
	case <-time.After(waitTimeout):
		t.Fatal("gwook did not stop after SIGTERM")
	}
	st, err := store.Open(context.Background(), s.db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.QueryStats(context.Background(), store.StatsQuery{ApplicationID: app,
		Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour), Granularity: store.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var total store.StatsCounts
	for _, b := range rows {
		total.Add(b.Counts)
	}
	if total != (store.StatsCounts{Forwarded: 5}) {
		t.Errorf("after SIGTERM the database holds %+v, want 5 forwarded", total)
	}
}

// statsBucket is a bucket as the API answers it.
type statsBucket struct {
	Start  time.Time   `json:"start"`
	Counts statsCounts `json:"counts"`
}

type statsCounts struct {
	Forwarded    int64 `json:"forwarded"`
	Filtered     int64 `json:"filtered"`
	Duplicate    int64 `json:"duplicate"`
	DeadLettered int64 `json:"dead_lettered"`
	Rejected     int64 `json:"rejected"`
	Failed       int64 `json:"failed"`
}

func countsOf(c store.StatsCounts) statsCounts {
	return statsCounts{c.Forwarded, c.Filtered, c.Duplicate, c.DeadLettered, c.Rejected, c.Failed}
}

// bucketsOf returns the expected buckets of app, oldest first.
func bucketsOf(want map[minuteKey]store.StatsCounts, app string) []statsBucket {
	var out []statsBucket
	for k, c := range want {
		if k.app == app {
			out = append(out, statsBucket{Start: k.minute, Counts: countsOf(c)})
		}
	}
	slices.SortFunc(out, func(a, b statsBucket) int { return a.Start.Compare(b.Start) })
	return out
}

func equalBuckets(a, b []statsBucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Start.Equal(b[i].Start) || a[i].Counts != b[i].Counts {
			return false
		}
	}
	return true
}
