// Command soak is Gwook's fault-injection run (make soak). It sends N
// events, about half published to Pub/Sub emulator topics whose push
// subscriptions deliver them to gwook and half POSTed directly by
// producers that retry, while the Svix-compatible server fails 20% of
// message creations with 500, 10% with 429 and Retry-After, and answers 1%
// slowly. A seed draws which events are unique, which are sent twice with
// the same id (direct+direct, push+push, direct+push), which form pairs of
// distinct events with the same dedup key in one application or with the
// same type, project and source in two applications, and which are of a
// filtered type (see newPlan).
//
// Meanwhile Redis is restarted; Redis holds every command (CLIENT PAUSE)
// for longer than REDIS_TIMEOUT; gwook gets SIGTERM (it drains) and is started again;
// and, once Svix holds message creations in flight on purpose, gwook gets
// SIGKILL and is started again. When all is quiet, the faults stop, as
// after an outage, and `gwook replay` empties the dead-letter subscription.
//
// Then the ledger (see ledger) judges every event from the messages Svix
// stored, the producers' answers and gwook's request log: the counts are
// printed and the command exits non-zero on any event that is not at Svix
// (unless it was filtered, or answered as a duplicate of another event with
// its dedup key that was), any second message for one eventId, and any
// stray message.
//
// It needs the Pub/Sub emulator (PUBSUB_EMULATOR_HOST), redis-server on
// PATH and a gwook binary; scripts/soak provides all three.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gwook/gwook/test/proc"
	"github.com/gwook/gwook/test/svixserver"
)

// options are the soak's flags.
type options struct {
	gwook   string
	out     string
	events  int
	spread  time.Duration
	quiet   time.Duration
	slow    time.Duration
	timeout time.Duration
	seed    int64
}

func main() {
	var o options
	flag.StringVar(&o.gwook, "gwook", "bin/gwook", "gwook binary")
	flag.StringVar(&o.out, "out", "reports", "directory for soak-logs/")
	flag.IntVar(&o.events, "events", 2000, "events to send, about half through Pub/Sub push and half directly")
	flag.DurationVar(&o.spread, "spread", 40*time.Second, "time over which the events are sent")
	flag.DurationVar(&o.quiet, "quiet", 8*time.Second, "how long Svix must see no request before the replay")
	flag.DurationVar(&o.slow, "slow", 3*time.Second, "how long a slow Svix answer takes")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run")
	flag.Int64Var(&o.seed, "seed", 1, "seed of the events' roles and routes and of Svix's faults")
	flag.Parse()
	if o.events < minEvents || o.spread <= 0 {
		fmt.Fprintf(os.Stderr, "soak: -events must be at least %d and -spread positive\n", minEvents)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	fmt.Print(res)
	if !res.ok() {
		fmt.Println("soak: FAILED: events were lost, delivered more than once, or stray")
		os.Exit(1)
	}
	fmt.Println("soak: ok: every event at Svix exactly once, a duplicate of one that is, or filtered")
}

// soak holds the run's parts.
type soak struct {
	opts    options
	run     string
	logs    string
	started time.Time

	plan                 *plan
	emu                  *emulator
	srcTopics            []string // one push subscription each
	dltTopic, dltSub     string
	created              []string // emulator resources, full names, in order of creation
	svix                 *svixserver.Server
	svixCalls            *pendingCalls
	svixURL              string
	redisPort, gwookPort int
	redis, gwook         *proc.Process
	gwookLogs            []string   // one per start of gwook
	gwookMu              sync.Mutex // guards gwook and redis across restarts
	faults               faultLog
}

func run(ctx context.Context, o options) (*result, error) {
	host := os.Getenv("PUBSUB_EMULATOR_HOST")
	if host == "" {
		return nil, errors.New("PUBSUB_EMULATOR_HOST is not set: run make soak, or scripts/test-services start and export what it prints")
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	s := &soak{opts: o, run: hex.EncodeToString(id), logs: filepath.Join(o.out, "soak-logs"),
		emu: newEmulator(host, cmp.Or(os.Getenv("PUBSUB_PROJECT_ID"), "gwook-soak"))}
	s.plan = newPlan(s.run, o.events, o.spread, o.seed)
	defer s.close()
	if err := s.setUp(ctx); err != nil {
		return nil, err
	}
	s.started = time.Now()
	s.progress("sending %d events over %s (Svix: %.0f%% 500, %.0f%% 429, %.0f%% slow for %s)",
		o.events, o.spread, rate500*100, rate429*100, rateSlow*100, o.slow)
	traffic, err := s.traffic(ctx)
	if err != nil {
		return nil, err
	}
	return s.finish(ctx, traffic)
}

// progress prints a line to stderr with the time since the traffic began.
func (s *soak) progress(format string, args ...any) {
	var at float64
	if !s.started.IsZero() {
		at = time.Since(s.started).Seconds()
	}
	fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", at, fmt.Sprintf(format, args...))
}

// setUp starts the Svix-compatible server, Redis and gwook, and creates the
// topics and subscriptions.
func (s *soak) setUp(ctx context.Context) error {
	srv, err := svixserver.NewServer(svixserver.Options{})
	if err != nil {
		return err
	}
	s.svix, s.svixCalls = srv, &pendingCalls{next: srv}
	srv.FailRandomly(s.opts.seed, svixFaults(s.opts.slow)...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.svixURL = "http://" + ln.Addr().String()
	go func() { _ = (&http.Server{Handler: s.svixCalls, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()

	if s.redisPort, err = proc.FreePort(); err != nil {
		return err
	}
	if s.redis, err = proc.StartRedis(ctx, s.redisPort, filepath.Join(s.logs, "redis.log")); err != nil {
		return err
	}

	s.dltTopic, s.dltSub = "soak-dlt-"+s.run, "soak-dlt-sub-"+s.run
	for k := range pushSubscriptions {
		s.srcTopics = append(s.srcTopics, fmt.Sprintf("soak-src-%s-%d", s.run, k))
	}
	for _, t := range append([]string{s.dltTopic}, s.srcTopics...) {
		if err := s.emu.createTopic(ctx, t); err != nil {
			return err
		}
		s.created = append(s.created, s.emu.topic(t))
	}
	if err := s.emu.createSubscription(ctx, s.dltSub, s.dltTopic, "", time.Minute); err != nil {
		return err
	}
	s.created = append(s.created, s.emu.subscription(s.dltSub))

	if s.gwookPort, err = proc.FreePort(); err != nil {
		return err
	}
	if err := s.startGwook(ctx); err != nil {
		return err
	}
	// The push subscriptions exist only once gwook answers, and their ack
	// deadline covers gwook's whole retry budget and a dead-letter publish.
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/notifications?token=%s", s.gwookPort, pushToken)
	for k, t := range s.srcTopics {
		sub := fmt.Sprintf("soak-push-%s-%d", s.run, k)
		if err := s.emu.createSubscription(ctx, sub, t, endpoint, time.Minute); err != nil {
			return err
		}
		s.created = append(s.created, s.emu.subscription(sub))
	}
	return nil
}

// pushSubscriptions is how many topics the pushed events are spread over,
// each with its own push subscription: the emulator has at most two pushes
// of one subscription outstanding at a time, far fewer than Pub/Sub, and
// one subscription would make the run last minutes longer.
const pushSubscriptions = 4

// gwookEnv is gwook's configuration for the soak, also used by the replay.
func (s *soak) gwookEnv() []string {
	return []string{
		"HTTP_SERVER_PORT=" + strconv.Itoa(s.gwookPort),
		"METRICS_PORT=0",
		"SVIX_AUTH_TOKEN=" + svixToken,
		"SVIX_SERVER_URL=" + s.svixURL,
		"AUTH_USERNAME=" + authUser,
		"AUTH_PASSWORD=" + authPass,
		"PUBSUB_VERIFICATION_TOKEN=" + pushToken,
		"REDIS_URL=redis://127.0.0.1:" + strconv.Itoa(s.redisPort) + "/0",
		"REDIS_TIMEOUT=" + redisTimeout.String(),
		"DEDUP_TTL=10m", // longer than the run: every same-key pair meets inside it
		"FILTER_EXCLUDE_TYPES=" + filteredType,
		"DEAD_LETTER_TOPIC=" + s.dltTopic,
		"PUBSUB_PROJECT_ID=" + s.emu.project,
		"PUBSUB_EMULATOR_HOST=" + s.emu.host,
		"LOG_LEVEL=info", // the request lines say what each push was answered
		"DATA_DIR=" + filepath.Join(s.logs, "data"),
		"SENTRY_DSN=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
	}
}

// startGwook starts gwook, logging to gwook-<n>.log for its n-th start,
// and waits until /ready answers 200.
func (s *soak) startGwook(ctx context.Context) error {
	logPath := filepath.Join(s.logs, fmt.Sprintf("gwook-%d.log", len(s.gwookLogs)+1))
	s.gwookLogs = append(s.gwookLogs, logPath)
	p, err := proc.Start("gwook", logPath, s.gwookEnv(), s.opts.gwook)
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := proc.WaitHTTP(wait, fmt.Sprintf("http://127.0.0.1:%d/ready", s.gwookPort), http.StatusOK, p); err != nil {
		_ = p.Stop(5 * time.Second)
		return fmt.Errorf("gwook: %w", err)
	}
	s.gwookMu.Lock()
	s.gwook = p
	s.gwookMu.Unlock()
	return nil
}

// close stops what setUp started and deletes the emulator resources, so
// that the emulator stops pushing to a gwook that is gone.
func (s *soak) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, name := range slices.Backward(s.created) {
		_ = s.emu.delete(ctx, name)
	}
	s.gwookMu.Lock()
	defer s.gwookMu.Unlock()
	for _, p := range []*proc.Process{s.gwook, s.redis} {
		if p != nil {
			_ = p.Stop(15 * time.Second)
		}
	}
}

// trafficStats is what the senders counted and the producers' answers.
type trafficStats struct {
	published   int
	directSends int
	direct      *directStats
	answers     []directAnswer // by index into the plan's sends; direct sends only
}

// traffic sends the plan's events, each copy at its time, while the fault
// schedule runs, and returns once every copy was published or settled with
// its producer.
func (s *soak) traffic(ctx context.Context) (*trafficStats, error) {
	sends := s.plan.sends
	stats := &trafficStats{direct: &directStats{}, answers: make([]directAnswer, len(sends))}
	pushes, directs := make(chan int, len(sends)), make(chan int, len(sends))
	var wg sync.WaitGroup
	var publishErr error

	wg.Go(func() { // feeder
		defer close(pushes)
		defer close(directs)
		for k, snd := range sends {
			if !sleepCtx(ctx, time.Until(s.started.Add(snd.at))) {
				return
			}
			if snd.via == viaPush {
				pushes <- k
			} else {
				stats.directSends++
				directs <- k
			}
		}
	})
	wg.Go(func() { // publisher: what arrived each 100 ms, one publish call per topic
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for open := true; open; {
			<-tick.C
			batches := make([][][]byte, len(s.srcTopics))
		drain:
			for {
				select {
				case k, ok := <-pushes:
					if !ok {
						open = false
						break drain
					}
					t := k % len(s.srcTopics)
					batches[t] = append(batches[t], s.plan.events[sends[k].event].body)
				default:
					break drain
				}
			}
			for t, batch := range batches {
				if len(batch) == 0 {
					continue
				}
				if err := s.publish(ctx, s.srcTopics[t], batch); err != nil {
					publishErr = err
					return
				}
				stats.published += len(batch)
			}
		}
	})
	client := &http.Client{Timeout: 30 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/notifications", s.gwookPort)
	for range 32 {
		wg.Go(func() {
			for k := range directs {
				stats.answers[k] = postDirect(ctx, client, url, s.plan.events[sends[k].event].body, stats.direct)
			}
		})
	}
	faultsDone := make(chan error, 1)
	go func() { faultsDone <- s.scheduleFaults(ctx) }()
	stopProgress := s.reportProgress(stats)

	wg.Wait()
	stopProgress()
	if err := <-faultsDone; err != nil {
		return nil, err
	}
	if publishErr != nil {
		return nil, publishErr
	}
	return stats, ctx.Err()
}

// publish publishes a batch to topic, retrying for up to a minute.
func (s *soak) publish(ctx context.Context, topic string, batch [][]byte) error {
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if err = s.emu.publish(ctx, topic, batch); err == nil || ctx.Err() != nil {
			return err
		}
		sleepCtx(ctx, time.Second)
	}
	return fmt.Errorf("publishing to the emulator: %w", err)
}

// scheduleFaults runs the faults, one after the other: Redis restarted at a
// quarter of the spread, Redis paused at two fifths, gwook stopped with
// SIGTERM and started again a little past halfway, and gwook killed with
// SIGKILL while Svix calls are in flight, and started again, at three
// quarters. A fault that comes late (the one before it took long) runs at
// once.
func (s *soak) scheduleFaults(ctx context.Context) error {
	at := func(share float64) bool {
		return sleepCtx(ctx, time.Until(s.started.Add(time.Duration(float64(s.opts.spread)*share))))
	}
	f := &s.faults
	if !at(0.25) {
		return ctx.Err()
	}
	if err := s.restartRedis(ctx); err != nil {
		return err
	}
	if !at(0.40) {
		return ctx.Err()
	}
	f.pauseAt, f.pause = time.Since(s.started), redisPause
	s.progress("fault: CLIENT PAUSE %s on Redis (REDIS_TIMEOUT is %s)", redisPause, redisTimeout)
	waited, err := pauseRedis(s.redisAddr(), redisPause)
	if err != nil {
		return fmt.Errorf("pausing redis: %w", err)
	}
	if waited < redisTimeout {
		return fmt.Errorf("pausing redis: a PING waited only %s, not above REDIS_TIMEOUT (%s)", waited, redisTimeout)
	}
	f.pingWaited = waited
	s.progress("fault: Redis answers again; a PING waited %s", waited.Round(time.Millisecond))

	if !at(0.55) {
		return ctx.Err()
	}
	f.termAt = time.Since(s.started)
	down := time.Now()
	s.progress("fault: SIGTERM to gwook (it drains)")
	old := s.currentGwook()
	if err := old.Stop(30 * time.Second); err != nil {
		return fmt.Errorf("gwook did not shut down cleanly: %w\n%s", err, old.LogTail(20))
	}
	s.progress("fault: gwook exited after %s; starting it again", time.Since(down).Round(time.Millisecond))
	if err := s.startGwook(ctx); err != nil {
		return err
	}
	f.termDowntime = time.Since(down)
	s.progress("fault: gwook ready again after %s", f.termDowntime.Round(time.Millisecond))

	if !at(0.75) {
		return ctx.Err()
	}
	return s.killGwook(ctx)
}

func (s *soak) redisAddr() string { return "127.0.0.1:" + strconv.Itoa(s.redisPort) }

func (s *soak) currentGwook() *proc.Process {
	s.gwookMu.Lock()
	defer s.gwookMu.Unlock()
	return s.gwook
}

// restartRedis stops Redis and starts an empty one on the same port.
func (s *soak) restartRedis(ctx context.Context) error {
	f := &s.faults
	f.redisAt = time.Since(s.started)
	down := time.Now()
	s.progress("fault: restarting Redis")
	if err := s.redis.Stop(10 * time.Second); err != nil {
		return fmt.Errorf("stopping redis: %w", err)
	}
	sleepCtx(ctx, time.Second)
	p, err := proc.StartRedis(ctx, s.redisPort, filepath.Join(s.logs, "redis-2.log"))
	if err != nil {
		return err
	}
	s.gwookMu.Lock()
	s.redis = p
	s.gwookMu.Unlock()
	f.redisDowntime = time.Since(down)
	s.progress("fault: Redis back after %s (empty: its dedup keys are gone)", f.redisDowntime.Round(time.Millisecond))
	return nil
}

// killGwook makes Svix hold every message creation, kills gwook with
// SIGKILL once calls are in flight, lets Svix answer as before and starts
// gwook again. The calls gwook was making end unanswered: nothing of them
// is stored, and their events come back by Pub/Sub's redelivery or the
// producers' retries.
func (s *soak) killGwook(ctx context.Context) error {
	f := &s.faults
	s.progress("fault: Svix holds message creations; SIGKILL to gwook once %d are in flight", killPending)
	s.svix.SetDefault(svixserver.Response{Delay: svixHang})
	for deadline := time.Now().Add(killWait); s.svixCalls.pending.Load() < killPending && time.Now().Before(deadline); {
		sleepCtx(ctx, 10*time.Millisecond)
	}
	f.killAt, f.killPending = time.Since(s.started), s.svixCalls.pending.Load()
	down := time.Now()
	old := s.currentGwook()
	if err := old.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing gwook: %w", err)
	}
	<-old.Done()
	s.svix.SetDefault(svixserver.Response{})
	if f.killPending == 0 {
		return errors.New("gwook was killed with no Svix call in flight: the fault tested nothing")
	}
	s.progress("fault: gwook killed with %d Svix calls in flight; starting it again", f.killPending)
	if err := s.startGwook(ctx); err != nil {
		return err
	}
	f.killDowntime = time.Since(down)
	s.progress("fault: gwook ready again after %s", f.killDowntime.Round(time.Millisecond))
	return nil
}

// reportProgress prints the state every five seconds until stopped.
func (s *soak) reportProgress(stats *trafficStats) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				d := stats.direct
				t := s.svix.Tally()
				s.progress("Svix stored %d; direct: %d accepted, %d duplicate, %d dead-lettered, %d retries; Svix attempts %d (%d 500, %d 429, %d slow)",
					len(s.svix.Messages()), d.accepted.Load(), d.duplicate.Load(), d.deadLettered.Load(), d.retries.Load(),
					s.svix.Attempts(), t.ByStatus[http.StatusInternalServerError], t.ByStatus[http.StatusTooManyRequests], t.Delayed)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// finish waits until all is quiet, turns the faults off, replays the
// dead-letter subscription and draws up the ledger.
func (s *soak) finish(ctx context.Context, traffic *trafficStats) (*result, error) {
	s.progress("all events sent; waiting until Svix sees no request for %s", s.opts.quiet)
	for time.Since(s.svix.Tally().Last) < s.opts.quiet {
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return nil, fmt.Errorf("not quiet before the deadline: %w", ctx.Err())
		}
	}
	res := &result{opts: s.opts, plan: s.plan, traffic: traffic, svix: s.svix, faults: &s.faults}
	res.beforeReplay = len(s.svix.Messages())

	s.svix.FailRandomly(0)
	s.progress("faults off; %d messages at Svix; replaying the dead-letter subscription", res.beforeReplay)
	for attempt := 1; attempt <= 3; attempt++ {
		out, err := s.replay(ctx, attempt)
		res.replayRuns = attempt
		if attempt == 1 {
			res.replayOutput = out
		}
		if err == nil {
			break
		}
		s.progress("replay run %d: %v; running it again", attempt, err)
		if attempt == 3 {
			return nil, fmt.Errorf("replay still failing after %d runs: %w", attempt, err)
		}
	}
	res.afterReplay = len(s.svix.Messages())

	// A push the emulator is still redelivering lands by itself; give
	// stragglers a bounded time before the verdict.
	for deadline := time.Now().Add(stragglerWait); ; {
		pushes, err := readPushAnswers(s.gwookLogs)
		if err != nil {
			return nil, fmt.Errorf("reading gwook's log: %w", err)
		}
		res.ledger = newLedger(s.plan, s.svix.Messages(), traffic.answers, pushes, s.started)
		if !res.ledger.failed() || !time.Now().Before(deadline) || !sleepCtx(ctx, time.Second) {
			break
		}
	}
	res.elapsed = time.Since(s.started)
	res.ledgerPath = filepath.Join(s.logs, "ledger.txt")
	if err := writeLedger(res.ledgerPath, res.ledger); err != nil {
		return nil, err
	}
	return res, nil
}

// stragglerWait bounds the wait for redelivered pushes after the replay.
const stragglerWait = 30 * time.Second

// replay runs `gwook replay` on the dead-letter subscription and returns
// its summary; an error means it exited non-zero.
func (s *soak) replay(ctx context.Context, attempt int) (string, error) {
	stderr, err := os.Create(filepath.Join(s.logs, fmt.Sprintf("replay-%d.log", attempt)))
	if err != nil {
		return "", err
	}
	defer stderr.Close()
	var stdout strings.Builder
	cmd := exec.CommandContext(ctx, s.opts.gwook, "replay", "--subscription", s.dltSub, "--idle", "3s")
	cmd.Env = append(os.Environ(), s.gwookEnv()...)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	err = cmd.Run()
	return strings.TrimSpace(stdout.String()), err
}
