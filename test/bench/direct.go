package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gwook/gwook/internal/webhook"
	"github.com/gwook/gwook/test/pgtest"
	"github.com/gwook/gwook/test/proc"
)

// Databases of the direct mode.
const (
	dbPostgres = "postgres"
	dbSQLite   = "sqlite"
)

// directOptions are the flags of the direct mode.
type directOptions struct {
	gwook        string
	out          string
	postgres     string
	dbs          []string
	fanouts      []int
	concurrency  int
	warmup       time.Duration
	window       time.Duration
	rate         int
	rateWindow   time.Duration
	workers      int
	drainTimeout time.Duration
}

func parseDirectOptions(args []string) (directOptions, error) {
	var o directOptions
	fs := flag.NewFlagSet("direct", flag.ContinueOnError)
	fs.StringVar(&o.gwook, "gwook", "bin/gwook", "gwook binary to measure")
	fs.StringVar(&o.out, "out", "reports", "directory for bench-direct.md, bench-direct.json and the processes' logs")
	fs.StringVar(&o.postgres, "postgres", pgtest.BaseURL(), "PostgreSQL server on which a fresh database is created for each configuration, and dropped after")
	dbs := fs.String("db", dbPostgres+","+dbSQLite, "databases, comma-separated: postgres, sqlite (in a temporary DATA_DIR)")
	fanouts := fs.String("fanout", "1,10", "endpoints of the application, comma-separated: a configuration each")
	fs.IntVar(&o.concurrency, "concurrency", 64, "closed loop: producers sending at once")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "how long the producers send, unmeasured, before the phases of each configuration; then PostgreSQL's tables are analyzed")
	fs.DurationVar(&o.window, "window", 20*time.Second, "closed loop: how long the producers send")
	fs.IntVar(&o.rate, "rate", 1000, "open loop: events per second")
	fs.DurationVar(&o.rateWindow, "rate-window", 20*time.Second, "open loop: how long events are sent")
	fs.IntVar(&o.workers, "workers", 0, "gwook's DELIVERY_WORKERS; 0 keeps gwook's default")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Minute, "longest wait for the backlog to be delivered once the producers stop")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for db := range strings.SplitSeq(*dbs, ",") {
		db = strings.TrimSpace(db)
		if db != dbPostgres && db != dbSQLite {
			return o, fmt.Errorf("-db: unknown database %q", db)
		}
		o.dbs = append(o.dbs, db)
	}
	var err error
	if o.fanouts, err = positiveInts("fanout", *fanouts); err != nil {
		return o, err
	}
	if o.concurrency < 1 || o.rate < 1 || o.workers < 0 || o.warmup < 0 || o.window <= 0 || o.rateWindow <= 0 || o.drainTimeout <= 0 {
		return o, errors.New("-concurrency, -rate, -window, -rate-window and -drain-timeout must be positive, -workers not negative")
	}
	return o, nil
}

// DirectReport is what one run of the direct mode measured;
// bench-direct.json holds it as is and bench-direct.md renders it.
type DirectReport struct {
	Started    time.Time      `json:"started"`
	Seconds    float64        `json:"seconds"`
	Machine    Machine        `json:"machine"`
	Settings   DirectSettings `json:"settings"`
	LoadBefore string         `json:"loadavg_before"`
	LoadAfter  string         `json:"loadavg_after"`
	Rows       []DirectRow    `json:"rows"`
}

// DirectSettings are the parameters of a run of the direct mode.
type DirectSettings struct {
	Databases         []string `json:"databases"`
	Fanouts           []int    `json:"fanouts"`
	Concurrency       int      `json:"concurrency"`
	WarmupSeconds     float64  `json:"warmup_seconds"`
	WindowSeconds     float64  `json:"window_seconds"`
	Rate              int      `json:"rate_per_sec"`
	RateWindowSeconds float64  `json:"rate_window_seconds"`
	// Workers is DELIVERY_WORKERS; 0 when gwook's default was kept.
	Workers      int     `json:"delivery_workers"`
	DrainTimeout float64 `json:"drain_timeout_seconds"`
	// Dedup is always "off" (DEDUP_TTL=0): the direct backend's own
	// duplicate check by event id stays.
	Dedup string `json:"dedup"`
	// ClockTicks is getconf CLK_TCK, the unit of /proc CPU times.
	ClockTicks int `json:"clock_ticks"`
}

// DirectRow is every measurement of one database and fan-out.
type DirectRow struct {
	Database string       `json:"database"`
	Fanout   int          `json:"fanout"`
	Closed   DirectClosed `json:"closed_loop"`
	Open     DirectOpen   `json:"open_loop"`
}

// DirectClosed is the closed loop: Concurrency producers, each sending its
// next event as soon as the last one was answered.
type DirectClosed struct {
	Concurrency  int     `json:"concurrency"`
	EventsPerSec float64 `json:"events_accepted_per_sec"`
	Errors       int64   `json:"errors"`
	Delivery
}

// DirectOpen is the open loop: events sent at a fixed rate.
type DirectOpen struct {
	// Answer is the producer's answer times, counted from when each event
	// was due (no coordinated omission).
	Answer Latency `json:"answer"`
	// GwookAnswer is the same answers as gwook's own histogram timed
	// them.
	GwookAnswer GwookAnswers `json:"gwook_answer"`
	// EventsPerSec is the events accepted over the time from the first
	// send to the last answer; RateKept is true when that is 99 % of the
	// rate or more and every event was accepted.
	EventsPerSec float64 `json:"events_accepted_per_sec"`
	RateKept     bool    `json:"rate_kept"`
	// DeliveryKeptUp is true when the last webhook arrived within a
	// second of the producer's last answer.
	DeliveryKeptUp bool `json:"delivery_kept_up"`
	Delivery
}

// Delivery is what the receiver saw of the events of one phase, and the
// CPU time spent from the producer's start until the backlog was
// delivered (or the drain timeout).
type Delivery struct {
	Accepted        int64   `json:"events_accepted"`
	ProducerSeconds float64 `json:"producer_seconds"`
	// Webhooks counts the verified webhooks of the phase, duplicates
	// included; InWindow those that arrived while the producer sent.
	Webhooks       int64   `json:"webhooks"`
	InWindow       int64   `json:"webhooks_in_window"`
	PerSecInWindow float64 `json:"webhooks_per_sec_in_window"`
	// Drained is true when every accepted event reached every endpoint
	// within the drain timeout; DrainSeconds is from the producer's last
	// answer to the last webhook, DrainPerSec the webhooks per second
	// meanwhile.
	Drained      bool    `json:"drained"`
	DrainSeconds float64 `json:"drain_seconds"`
	DrainPerSec  float64 `json:"drain_webhooks_per_sec"`
	Undelivered  int64   `json:"undelivered"`
	Duplicates   int64   `json:"duplicates"`
	// Rejected webhooks failed the signature check; Stale ones carried an
	// event of an earlier phase.
	Rejected int64 `json:"rejected"`
	Stale    int64 `json:"stale"`
	// Lag is from the producer's send start of an event to the receiver's
	// arrival of each of its webhooks, over the delivered ones.
	LagP50 float64 `json:"lag_p50_ms"`
	LagP99 float64 `json:"lag_p99_ms"`
	LagMax float64 `json:"lag_max_ms"`
	// CPU per delivered webhook (user + system) over CPUSeconds of wall
	// time. Postgres sums every process named postgres on the machine,
	// other work's included; PostgresOurs only the backends of the
	// bench's database.
	CPUSeconds         float64 `json:"cpu_span_seconds"`
	GwookMicros        float64 `json:"gwook_cpu_us_per_webhook"`
	PostgresMicros     float64 `json:"postgres_cpu_us_per_webhook"`
	PostgresOursMicros float64 `json:"postgres_own_database_cpu_us_per_webhook"`
	BenchMicros        float64 `json:"bench_cpu_us_per_webhook"`
	// OtherCPUs is how many CPUs the rest of the machine kept busy, the
	// postgres processes apart.
	OtherCPUs float64 `json:"other_cpus"`
}

// runDirect is the "direct" mode. For each database and fan-out it starts
// gwook with DELIVERY_BACKEND=direct on a fresh database, creates an
// application whose endpoints are this process's receiver, and measures a
// closed loop and then an open loop of events, each until its backlog is
// delivered. It writes bench-direct.md and bench-direct.json.
func runDirect(args []string) error {
	opts, err := parseDirectOptions(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := proc.RaiseFileLimit(); err != nil {
		return err
	}
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	r := &directRun{opts: opts, run: hex.EncodeToString(runID), started: time.Now(), ticks: clockTicks()}
	report := &DirectReport{Started: r.started.UTC(), Machine: machine(), LoadBefore: loadAverage(),
		Settings: DirectSettings{Databases: opts.dbs, Fanouts: opts.fanouts, Concurrency: opts.concurrency,
			WarmupSeconds: opts.warmup.Seconds(), WindowSeconds: opts.window.Seconds(), Rate: opts.rate, RateWindowSeconds: opts.rateWindow.Seconds(),
			Workers: opts.workers, DrainTimeout: opts.drainTimeout.Seconds(), Dedup: "off", ClockTicks: r.ticks}}
	for _, db := range opts.dbs {
		for _, fanout := range opts.fanouts {
			row, err := r.configuration(ctx, db, fanout)
			if err != nil {
				return fmt.Errorf("%s, fan-out %d: %w", db, fanout, err)
			}
			report.Rows = append(report.Rows, row)
		}
	}
	report.Seconds = time.Since(r.started).Seconds()
	report.LoadAfter = loadAverage()
	md := report.markdown()
	if err := writeReport(opts.out, "bench-direct", report, md); err != nil {
		return err
	}
	fmt.Print(md)
	progress(r.started, "wrote %s and %s", filepath.Join(opts.out, "bench-direct.md"), filepath.Join(opts.out, "bench-direct.json"))
	return nil
}

// directRun holds what the configurations of a run share.
type directRun struct {
	opts    directOptions
	run     string // in every event id and database name of this run
	started time.Time
	ticks   int
}

// directSetup is one configuration, running.
type directSetup struct {
	db          string
	database    string // PostgreSQL's database name; empty on SQLite
	databaseURL string // its URL; empty on SQLite
	fanout      int
	base        string // gwook's base URL
	gwook       *proc.Process
	app         string
	ingest      string // a bearer token with the ingest scope
	sink        *sink
}

// configuration measures gwook on db with fanout endpoints.
func (r *directRun) configuration(ctx context.Context, db string, fanout int) (DirectRow, error) {
	row := DirectRow{Database: db, Fanout: fanout}
	name := fmt.Sprintf("%s-fanout-%d", db, fanout)
	dataDir, err := os.MkdirTemp("", "gwook-bench-direct-")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dataDir)
	s := &directSetup{db: db, fanout: fanout, app: "bench_" + r.run}
	env := []string{"DATA_DIR=" + dataDir, "DATABASE_URL="}
	if db == dbPostgres {
		s.database = "gwook_bench_" + r.run + "_" + strconv.Itoa(fanout)
		dbURL, drop, err := createDatabase(ctx, r.opts.postgres, s.database)
		if err != nil {
			return row, err
		}
		defer func() {
			if err := drop(); err != nil {
				progress(r.started, "%s: dropping the database: %v", name, err)
			}
		}()
		env = append(env, "DATABASE_URL="+dbURL)
		s.databaseURL = dbURL
	}

	secrets := make([]string, fanout)
	for i := range secrets {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		secrets[i] = "whsec_" + base64.StdEncoding.EncodeToString(key)
	}
	s.sink = &sink{run: r.run}
	recvURL, stopReceiver, err := s.sink.serve(secrets)
	if err != nil {
		return row, err
	}
	defer stopReceiver()

	// The first admin token goes straight into the database (applying
	// the migrations), before gwook starts: a running gwook would take up
	// to 5 s to see it.
	cmd := exec.CommandContext(ctx, r.opts.gwook, "token", "create", "--name", "bench-admin", "--scope", "admin")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		return row, fmt.Errorf("gwook token create: %w", err)
	}
	admin := strings.TrimSpace(string(out))
	if err := r.startGwook(ctx, s, env, filepath.Join(r.opts.out, "bench-direct-logs", "gwook-"+name+".log")); err != nil {
		return row, err
	}
	defer func() {
		if err := s.gwook.Stop(15 * time.Second); err != nil {
			progress(r.started, "%s: %v", name, err)
		}
	}()
	if err := s.provision(ctx, admin, recvURL, secrets); err != nil {
		return row, err
	}
	if err := r.warmUp(ctx, s, name); err != nil {
		return row, err
	}
	progress(r.started, "%s: gwook ready (pid %d), %d endpoint(s); closed loop at concurrency %d for %s",
		name, s.gwook.Pid(), fanout, r.opts.concurrency, r.opts.window)

	var errs int64
	row.Closed.Concurrency = r.opts.concurrency
	row.Closed.Delivery = r.phase(ctx, s, "c", func(req request) int64 {
		accepted, bad := closedProducer(ctx, req, r.opts.concurrency, r.opts.window)
		errs = bad
		return accepted
	})
	row.Closed.Errors = errs
	row.Closed.EventsPerSec = float64(row.Closed.Accepted) / row.Closed.ProducerSeconds
	r.report(name, "closed loop", row.Closed.Delivery, fmt.Sprintf("%.0f events/s accepted, %d errors", row.Closed.EventsPerSec, errs))
	if err := ctx.Err(); err != nil {
		return row, err
	}

	progress(r.started, "%s: open loop at %d events/s for %s", name, r.opts.rate, r.opts.rateWindow)
	var histogramErr error
	row.Open.Delivery = r.phase(ctx, s, "o", func(req request) int64 {
		before, err := answerHistogram(ctx, s.base)
		row.Open.Answer = openLoop(ctx, req, http.StatusAccepted, r.opts.rate, 0, r.opts.rateWindow)
		after, err2 := answerHistogram(ctx, s.base)
		if histogramErr = errors.Join(err, err2); histogramErr == nil {
			row.Open.GwookAnswer = answersBetween(before, after)
		}
		return int64(row.Open.Answer.Requests - row.Open.Answer.Errors)
	})
	if histogramErr != nil {
		return row, fmt.Errorf("gwook's answer times: %w", histogramErr)
	}
	a := row.Open.Answer
	row.Open.EventsPerSec = float64(row.Open.Accepted) / row.Open.ProducerSeconds
	row.Open.RateKept = row.Open.EventsPerSec >= 0.99*float64(a.Rate) && a.Errors == 0
	row.Open.DeliveryKeptUp = row.Open.Drained && row.Open.DrainSeconds <= 1
	r.report(name, "open loop", row.Open.Delivery, fmt.Sprintf("%.0f events/s sent, %.0f/s accepted, %d errors, answer p50 %.2f ms, p99 %.2f ms, max %.2f ms (sent late: p99 %.2f ms; gwook's own p99 %.1f ms)",
		a.AchievedRate, row.Open.EventsPerSec, a.Errors, a.P50, a.P99, a.Max, a.LagP99, row.Open.GwookAnswer.P99))
	return row, ctx.Err()
}

// warmUp sends events for the warm-up, unmeasured, and waits for their
// delivery; then, on PostgreSQL, it analyzes the database, as autovacuum
// does in the first minute of a new one. Without statistics PostgreSQL
// plans for tables as small as they were at gwook's first statements,
// and keeps the plans it cached then while the tables grow: the first
// minute of a new database, which the phases are not meant to measure.
func (r *directRun) warmUp(ctx context.Context, s *directSetup, name string) error {
	if r.opts.warmup == 0 {
		return nil
	}
	d := r.phase(ctx, s, "w", func(req request) int64 {
		accepted, _ := closedProducer(ctx, req, r.opts.concurrency, r.opts.warmup)
		return accepted
	})
	progress(r.started, "%s: warm-up: %d events accepted, drained %v", name, d.Accepted, d.Drained)
	if s.databaseURL == "" {
		return ctx.Err()
	}
	conn, err := pgx.Connect(ctx, s.databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyzing %s: %w", s.database, err)
	}
	return nil
}

// report prints a phase's results.
func (r *directRun) report(name, phase string, d Delivery, producer string) {
	progress(r.started, "%s, %s: %s; %.0f webhooks/s in the window, drained %v after %.1f s (%d undelivered); "+
		"lag p50 %.0f ms, p99 %.0f ms, max %.0f ms; CPU per webhook: gwook %.0f µs, postgres %.0f µs (its database's backends %.0f µs), bench %.0f µs; other load %.2f CPUs",
		name, phase, producer, d.PerSecInWindow, d.Drained, d.DrainSeconds, d.Undelivered,
		d.LagP50, d.LagP99, d.LagMax, d.GwookMicros, d.PostgresMicros, d.PostgresOursMicros, d.BenchMicros, d.OtherCPUs)
}

// startGwook runs gwook serve on direct delivery with env added, and
// waits until it is ready.
func (r *directRun) startGwook(ctx context.Context, s *directSetup, env []string, logPath string) error {
	port, err := proc.FreePort()
	if err != nil {
		return err
	}
	env = append([]string{
		"HTTP_SERVER_PORT=" + strconv.Itoa(port),
		"METRICS_PORT=0",
		"DELIVERY_BACKEND=direct",
		"DELIVERY_ALLOW_PRIVATE_NETWORKS=true",
		"SVIX_AUTH_TOKEN=",
		"SVIX_SERVER_URL=",
		"REDIS_URL=",
		"DEDUP_TTL=0",
		"AUTH_USERNAME=",
		"AUTH_PASSWORD=",
		"PUBSUB_VERIFICATION_TOKEN=",
		"DEAD_LETTER_TOPIC=",
		"SENTRY_DSN=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
		"LOG_LEVEL=warn",
	}, env...)
	if r.opts.workers > 0 {
		env = append(env, "DELIVERY_WORKERS="+strconv.Itoa(r.opts.workers))
	}
	p, err := proc.Start("gwook", logPath, env, r.opts.gwook, "serve")
	if err != nil {
		return err
	}
	s.gwook, s.base = p, "http://127.0.0.1:"+strconv.Itoa(port)
	if err := waitReady(ctx, func(ctx context.Context) error {
		return proc.WaitHTTP(ctx, s.base+"/ready", http.StatusOK, p)
	}); err != nil {
		_ = p.Stop(time.Second)
		return err
	}
	return nil
}

// provision makes, with the admin token, the application, one endpoint per
// secret (at recvURL/ep/N) and an ingest token.
func (s *directSetup) provision(ctx context.Context, admin, recvURL string, secrets []string) error {
	if err := apiPost(ctx, s.base, admin, "/api/v1/applications", map[string]any{"id": s.app, "name": "bench"}, nil); err != nil {
		return err
	}
	for i, secret := range secrets {
		ep := map[string]any{"url": recvURL + "/ep/" + strconv.Itoa(i), "secret": secret}
		if err := apiPost(ctx, s.base, admin, "/api/v1/applications/"+s.app+"/endpoints", ep, nil); err != nil {
			return err
		}
	}
	var tok struct{ Token string }
	if err := apiPost(ctx, s.base, admin, "/api/v1/tokens", map[string]any{"name": "bench-ingest", "scopes": []string{"ingest"}}, &tok); err != nil {
		return err
	}
	s.ingest = tok.Token
	return nil
}

// apiPost sends body to gwook's API at base+path with token, expects 201
// and decodes the answer into out unless it is nil.
func apiPost(ctx context.Context, base, token, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s %s", path, resp.Status, answer)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(answer, out)
}

// createDatabase creates database name on the PostgreSQL server at base
// and returns its URL and how to drop it.
func createDatabase(ctx context.Context, base, name string) (string, func() error, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("-postgres: %w", err)
	}
	run := func(ctx context.Context, stmt string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, stmt)
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := run(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("creating database %s on %s: %w", name, u.Host, err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return run(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// phase runs produce, which sends events of request until it stops and
// returns how many were accepted, then waits until every accepted event
// reached every endpoint, and returns what the receiver saw and the CPU
// time spent meanwhile. Event ids carry phase, so that a webhook of an
// earlier phase is not counted in this one.
func (r *directRun) phase(ctx context.Context, s *directSetup, phase string, produce func(request) int64) Delivery {
	s.sink.reset(phase)
	req := newDirectRequest(s.base, s.ingest, r.run+"_"+phase, s.app)
	cpu0, t0 := r.sampleCPU(s.gwook.Pid(), s.database), time.Now()
	accepted := produce(req)
	t1 := time.Now()
	inWindow := s.sink.snapshot()

	want := accepted * int64(s.fanout)
	deadline := time.Now().Add(r.opts.drainTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	for s.sink.snapshot().unique < want && time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
	}
	tick.Stop()
	cpu2, t2 := r.sampleCPU(s.gwook.Pid(), s.database), time.Now()
	end := s.sink.snapshot()

	d := Delivery{Accepted: accepted, ProducerSeconds: t1.Sub(t0).Seconds(), Webhooks: end.delivered,
		InWindow: inWindow.delivered, Drained: end.unique >= want, Undelivered: max(want-end.unique, 0),
		Duplicates: end.duplicates, Rejected: end.rejected, Stale: end.stale}
	d.PerSecInWindow = float64(d.InWindow) / d.ProducerSeconds
	if last := end.last.Sub(t1); d.Drained && last > 0 {
		d.DrainSeconds = last.Seconds()
		d.DrainPerSec = float64(end.delivered-inWindow.delivered) / d.DrainSeconds
	} else if !d.Drained {
		d.DrainSeconds = t2.Sub(t1).Seconds()
	}
	lags := s.sink.lagsSorted()
	if len(lags) > 0 {
		d.LagP50, d.LagP99, d.LagMax = ms(quantile(lags, 0.50)), ms(quantile(lags, 0.99)), ms(lags[len(lags)-1])
	}
	span := t2.Sub(t0)
	d.CPUSeconds = span.Seconds()
	per := func(used time.Duration) float64 {
		if d.Webhooks == 0 {
			return 0
		}
		return float64(used.Microseconds()) / float64(d.Webhooks)
	}
	gw, own := cpu2.gwook-cpu0.gwook, cpu2.bench-cpu0.bench
	pg, pgOurs := postgresUsed(cpu0, cpu2)
	d.GwookMicros, d.PostgresMicros, d.PostgresOursMicros, d.BenchMicros = per(gw), per(pg), per(pgOurs), per(own)
	d.OtherCPUs = max(cpu2.busy-cpu0.busy-gw-pg-own, 0).Seconds() / span.Seconds()
	return d
}

// closedProducer runs n producers sending req for window, each its next
// event as soon as the last was answered; an event in flight at the end of
// the window is waited for. It returns the events answered 202 and the
// other answers and transport errors.
func closedProducer(ctx context.Context, req request, n int, window time.Duration) (accepted, errs int64) {
	client, tr := newClient(n)
	defer tr.CloseIdleConnections()
	var good, bad atomic.Int64
	end := time.Now().Add(window)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				if status, err := post(ctx, client, req); err == nil && status == http.StatusAccepted {
					good.Add(1)
				} else {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return good.Load(), bad.Load()
}

// newDirectRequest returns how to POST new events of app to
// base/notifications with the bearer token. Each event's id is
// evt_<tag>_<n>_<send time in Unix nanoseconds>: unique, and the receiver
// reads the send time back from it.
func newDirectRequest(base, token, tag, app string) request {
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + token}}
	var n atomic.Uint64
	body := func() []byte {
		i := n.Add(1)
		b := make([]byte, 0, 384)
		b = append(b, `{"id":"evt_`...)
		b = append(b, tag...)
		b = append(b, '_')
		b = strconv.AppendUint(b, i, 10)
		b = append(b, '_')
		b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
		b = append(b, `","type":"user.signed_up","source":"bench-direct-`...)
		b = strconv.AppendUint(b, i, 10)
		b = append(b, `","project":"acme-web","user_id":"`...)
		b = append(b, app...)
		b = append(b, `","time":"2026-03-02T08:15:42Z","data":{"email":"maria.lopez@example.com","name":"María López",`+
			`"plan":"pro","referral_code":null,"marketing_opt_in":false,"signup_method":"google_oauth","n":`...)
		b = strconv.AppendUint(b, i, 10)
		b = append(b, `}}`...)
		return b
	}
	return request{url: base + "/notifications", header: h, body: body}
}

// sink counts the webhooks its receivers verified, per phase, and keeps
// each one's lag.
type sink struct {
	run string

	mu     sync.Mutex
	tag    string // evt_<run>_<phase>_: the prefix of this phase's event ids
	seen   map[hookKey]struct{}
	lags   []time.Duration
	counts sinkCounts
}

// hookKey is one event's webhook to one endpoint.
type hookKey struct {
	endpoint int
	n        uint64
}

// sinkCounts are a sink's counters of the current phase.
type sinkCounts struct {
	delivered  int64 // verified, duplicates included
	unique     int64
	duplicates int64
	rejected   int64 // failed verification
	stale      int64 // verified, of another phase
	last       time.Time
}

// serve starts an HTTP server on loopback with one webhook.Receiver per
// secret, at /ep/N, reporting to s; it returns the server's URL and how to
// stop it. Each receiver verifies every webhook and answers 204 at once.
func (s *sink) serve(secrets []string) (string, func(), error) {
	mux := http.NewServeMux()
	for i, secret := range secrets {
		rc, err := webhook.NewReceiver([]string{secret}, webhook.ReceiverOptions{
			OnReceive: func(wh webhook.Webhook) { s.record(i, wh) },
		})
		if err != nil {
			return "", nil, err
		}
		mux.Handle("/ep/"+strconv.Itoa(i), rc)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// reset starts counting the webhooks of phase.
func (s *sink) reset(phase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tag = "evt_" + s.run + "_" + phase + "_"
	s.seen = map[hookKey]struct{}{}
	s.lags = nil
	s.counts = sinkCounts{}
}

// record counts one webhook that arrived at endpoint.
func (s *sink) record(endpoint int, wh webhook.Webhook) {
	n, sent, ok := s.parse(wh.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !wh.Verified():
		s.counts.rejected++
		return
	case !ok:
		s.counts.stale++
		return
	}
	s.counts.delivered++
	k := hookKey{endpoint, n}
	if _, dup := s.seen[k]; dup {
		s.counts.duplicates++
		return
	}
	s.seen[k] = struct{}{}
	s.counts.unique++
	s.counts.last = wh.At
	s.lags = append(s.lags, wh.At.Sub(time.Unix(0, sent)))
}

// parse reads the number and send time from the id of the event in body,
// when it is of the current phase.
func (s *sink) parse(body []byte) (n uint64, sent int64, ok bool) {
	_, rest, found := bytes.Cut(body, []byte(`"id":"`))
	id, _, closed := bytes.Cut(rest, []byte(`"`))
	s.mu.Lock()
	tag := s.tag
	s.mu.Unlock()
	num, ok := strings.CutPrefix(string(id), tag)
	if !found || !closed || !ok {
		return 0, 0, false
	}
	a, b, _ := strings.Cut(num, "_")
	n, err1 := strconv.ParseUint(a, 10, 64)
	sent, err2 := strconv.ParseInt(b, 10, 64)
	return n, sent, err1 == nil && err2 == nil
}

// snapshot returns the counters.
func (s *sink) snapshot() sinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// lagsSorted returns the lag of every webhook, sorted.
func (s *sink) lagsSorted() []time.Duration {
	s.mu.Lock()
	lags := slices.Clone(s.lags)
	s.mu.Unlock()
	slices.Sort(lags)
	return lags
}

// directCPU is the CPU time used so far by gwook, by each postgres
// process, by this process, and by the whole machine.
type directCPU struct {
	gwook, bench, busy time.Duration
	postgres           map[int]postgresCPU // by pid
}

// postgresCPU is one postgres process's CPU time so far, and whether it
// is a backend of the bench's database.
type postgresCPU struct {
	used time.Duration
	ours bool
}

// sampleCPU reads the CPU times of gwook (pid), of every process named
// postgres (those whose title names database are ours) and of this
// process, and the machine's. package proc counts 100 clock ticks a
// second; on a kernel whose CLK_TCK differs they are scaled.
func (r *directRun) sampleCPU(pid int, database string) directCPU {
	scale := func(d time.Duration) time.Duration { return d * 100 / time.Duration(r.ticks) }
	c := directCPU{postgres: map[int]postgresCPU{}}
	c.gwook, _ = proc.CPUTime(pid)
	c.bench, _ = proc.CPUTime(os.Getpid())
	c.busy, _ = proc.MachineBusy()
	c.gwook, c.bench, c.busy = scale(c.gwook), scale(c.bench), scale(c.busy)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err != nil || string(comm) != "postgres\n" {
			continue
		}
		d, err := proc.CPUTime(p)
		if err != nil {
			continue
		}
		// A backend's title: "postgres: 15/main: user database host(port) state".
		title, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		c.postgres[p] = postgresCPU{used: scale(d), ours: database != "" && bytes.Contains(title, []byte(" "+database+" "))}
	}
	return c
}

// postgresUsed returns the CPU time postgres processes used from before
// to after, all of them and the bench database's backends: a process that
// started meanwhile counts whole, one that ended meanwhile is missing.
func postgresUsed(before, after directCPU) (all, ours time.Duration) {
	for pid, a := range after.postgres {
		d := a.used - before.postgres[pid].used
		if d < 0 { // the pid of a process that ended, reused
			d = a.used
		}
		all += d
		if a.ours {
			ours += d
		}
	}
	return all, ours
}

// clockTicks returns getconf CLK_TCK, or 100 when it cannot be read.
func clockTicks() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil && n > 0 {
		return n
	}
	return 100
}

// markdown renders the report: a table per database and fan-out.
func (r *DirectReport) markdown() string {
	var b bytes.Buffer
	m, st := r.Machine, r.Settings
	workers := "gwook's default (100)"
	if st.Workers > 0 {
		workers = strconv.Itoa(st.Workers)
	}
	fmt.Fprintf(&b, "# Gwook load test: direct delivery\n\n")
	writeRunLine(&b, r.Started, r.Seconds, m, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "Producer -> gwook (`DELIVERY_BACKEND=direct`, dedup %s, DELIVERY_WORKERS %s, other settings default, LOG_LEVEL=warn) "+
		"-> the bench's own receiver on loopback, which verifies every webhook's signature and answers 204. "+
		"Each configuration has a fresh database (PostgreSQL: a new database, dropped after; SQLite: a temporary DATA_DIR), "+
		"an application and its endpoints; events are POSTed to /notifications with a bearer ingest token, each unique. "+
		"Warm-up, unmeasured: %d producers for %s, then PostgreSQL's tables are analyzed (ANALYZE, as autovacuum does in a new database's first minute). "+
		"Closed loop: %d producers for %s. Open loop: %d events/s for %s (vegeta's constant pacer; answer times counted from when each event was due; gwook's own answer times are what its histogram gwook_http_request_duration_seconds counted meanwhile, from its handler's start to its answer, the p99 interpolated within the histogram's buckets of 5, 10 and 25 ms). "+
		"Each phase ends when every accepted event reached every endpoint, or after %s. "+
		"Lag: from an event's send start to each of its webhooks' arrival. "+
		"CPU per webhook: user + system time from /proc (CLK_TCK %d) from the producer's start until the backlog was delivered, "+
		"divided by the webhooks delivered; postgres, all is every process of that name on the machine, other work on the server included "+
		"(a process that ended meanwhile is missing), in parentheses only the backends of the bench's database. "+
		"Other load is the CPU the rest of the machine used meanwhile, postgres apart.\n\n",
		st.Dedup, workers, st.Concurrency, secs(st.WarmupSeconds), st.Concurrency, secs(st.WindowSeconds), st.Rate, secs(st.RateWindowSeconds), secs(st.DrainTimeout), st.ClockTicks)
	for _, row := range r.Rows {
		db := "PostgreSQL"
		if row.Database == dbSQLite {
			db = "SQLite"
		}
		c, o := row.Closed, row.Open
		fmt.Fprintf(&b, "## %s, fan-out %d\n\n", db, row.Fanout)
		fmt.Fprintf(&b, "| | closed loop, %d producers | open loop, %d events/s |\n|---|--:|--:|\n", c.Concurrency, o.Answer.Rate)
		fmt.Fprintf(&b, "| events accepted | %d in %.1f s: **%.0f/s**, %d errors | %d in %.1f s: **%.0f/s** (%.0f/s sent), %d errors; rate kept: %s |\n",
			c.Accepted, c.ProducerSeconds, c.EventsPerSec, c.Errors, o.Accepted, o.ProducerSeconds, o.EventsPerSec, o.Answer.AchievedRate, o.Answer.Errors, yesNo(o.RateKept))
		fmt.Fprintf(&b, "| producer answer ms, p50 / p99 / max | – | %.2f / %.2f / %.2f (sent late: p99 %.2f ms, max %.2f ms) |\n",
			o.Answer.P50, o.Answer.P99, o.Answer.Max, o.Answer.LagP99, o.Answer.MaxLag)
		fmt.Fprintf(&b, "| gwook's own answer time: p99 ms, share within 10 ms | – | %.1f, %.2f%% |\n",
			o.GwookAnswer.P99, 100*o.GwookAnswer.Within10ms)
		fmt.Fprintf(&b, "| webhooks delivered in the window | %d: **%.0f/s** | %d: %.0f/s |\n", c.InWindow, c.PerSecInWindow, o.InWindow, o.PerSecInWindow)
		fmt.Fprintf(&b, "| backlog delivered after the producer stopped | %s | %s; kept up: %s |\n", drain(c.Delivery), drain(o.Delivery), yesNo(o.DeliveryKeptUp))
		fmt.Fprintf(&b, "| lag ms, p50 / p99 / max | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f |\n", c.LagP50, c.LagP99, c.LagMax, o.LagP50, o.LagP99, o.LagMax)
		fmt.Fprintf(&b, "| CPU µs per webhook: gwook / postgres, all (its database's backends) / bench | %.0f / %.0f (%.0f) / %.0f | %.0f / %.0f (%.0f) / %.0f |\n",
			c.GwookMicros, c.PostgresMicros, c.PostgresOursMicros, c.BenchMicros, o.GwookMicros, o.PostgresMicros, o.PostgresOursMicros, o.BenchMicros)
		fmt.Fprintf(&b, "| other load, CPUs (over %.0f s, %.0f s) | %.2f | %.2f |\n", c.CPUSeconds, o.CPUSeconds, c.OtherCPUs, o.OtherCPUs)
		fmt.Fprintf(&b, "| webhooks: verified / duplicates / rejected / undelivered | %d / %d / %d / %d | %d / %d / %d / %d |\n\n",
			c.Webhooks, c.Duplicates, c.Rejected, c.Undelivered, o.Webhooks, o.Duplicates, o.Rejected, o.Undelivered)
	}
	return b.String()
}

// drain describes how the backlog of a phase was delivered.
func drain(d Delivery) string {
	if !d.Drained {
		return fmt.Sprintf("**not drained** after %.0f s: %d webhooks left", d.DrainSeconds, d.Undelivered)
	}
	if d.DrainSeconds < 1 {
		return fmt.Sprintf("%.2f s", d.DrainSeconds)
	}
	return fmt.Sprintf("%.1f s (%.0f webhooks/s)", d.DrainSeconds, d.DrainPerSec)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
