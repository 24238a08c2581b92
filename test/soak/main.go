// Command soak is Gwook's fault-injection run (make soak). It sends N
// events, half published to a Pub/Sub emulator topic that a push
// subscription delivers to gwook and half POSTed directly by producers that
// retry, while the Svix-compatible server fails 20% of message creations
// with 500, 10% with 429 and Retry-After, and answers 1% slowly. Midway,
// Redis is restarted once, and gwook gets SIGTERM (it drains) and is
// started again. When all is quiet, the faults stop, as after an outage,
// and `gwook replay` empties the dead-letter subscription. Then every event
// must have been delivered to Svix exactly once by eventId: the counts are
// printed and the command exits non-zero on any loss or duplicate.
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
	flag.IntVar(&o.events, "events", 2000, "events to send, half through Pub/Sub push and half directly")
	flag.DurationVar(&o.spread, "spread", 40*time.Second, "time over which the events are sent")
	flag.DurationVar(&o.quiet, "quiet", 8*time.Second, "how long Svix must see no request before the replay")
	flag.DurationVar(&o.slow, "slow", 3*time.Second, "how long a slow Svix answer takes")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run")
	flag.Int64Var(&o.seed, "seed", 1, "seed of the fault injection")
	flag.Parse()
	if o.events < 2 || o.spread <= 0 {
		fmt.Fprintln(os.Stderr, "soak: -events must be at least 2 and -spread positive")
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
		fmt.Println("soak: FAILED: events were lost or delivered more than once")
		os.Exit(1)
	}
	fmt.Println("soak: ok: every event delivered exactly once")
}

// soak holds the run's parts.
type soak struct {
	opts    options
	run     string
	logs    string
	started time.Time

	emu                          *emulator
	srcTopic, dltTopic, dltSub   string
	pushSub                      string
	svix                         *svixserver.Server
	svixURL                      string
	redisPort, gwookPort         int
	redis, gwook                 *proc.Process
	redisDowntime, gwookDowntime time.Duration
	redisAt, gwookAt             time.Duration
	gwookMu                      sync.Mutex // guards gwook across the restart
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
	s.svix = srv
	srv.FailRandomly(s.opts.seed, svixFaults(s.opts.slow)...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.svixURL = "http://" + ln.Addr().String()
	go func() { _ = (&http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()

	if s.redisPort, err = proc.FreePort(); err != nil {
		return err
	}
	if s.redis, err = proc.StartRedis(ctx, s.redisPort, filepath.Join(s.logs, "redis.log")); err != nil {
		return err
	}

	s.srcTopic, s.dltTopic = "soak-src-"+s.run, "soak-dlt-"+s.run
	s.dltSub, s.pushSub = "soak-dlt-sub-"+s.run, "soak-push-"+s.run
	for _, t := range []string{s.srcTopic, s.dltTopic} {
		if err := s.emu.createTopic(ctx, t); err != nil {
			return err
		}
	}
	if err := s.emu.createSubscription(ctx, s.dltSub, s.dltTopic, "", time.Minute); err != nil {
		return err
	}

	if s.gwookPort, err = proc.FreePort(); err != nil {
		return err
	}
	if err := s.startGwook(ctx, "gwook-1.log"); err != nil {
		return err
	}
	// The push subscription exists only once gwook answers, and its ack
	// deadline covers gwook's whole retry budget and a dead-letter publish.
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/notifications?token=%s", s.gwookPort, pushToken)
	return s.emu.createSubscription(ctx, s.pushSub, s.srcTopic, endpoint, time.Minute)
}

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
		"DEDUP_TTL=10m",
		"DEAD_LETTER_TOPIC=" + s.dltTopic,
		"PUBSUB_PROJECT_ID=" + s.emu.project,
		"PUBSUB_EMULATOR_HOST=" + s.emu.host,
		"LOG_LEVEL=warn",
		"SENTRY_DSN=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
	}
}

// startGwook starts gwook and waits until /ready answers 200.
func (s *soak) startGwook(ctx context.Context, logName string) error {
	p, err := proc.Start("gwook", filepath.Join(s.logs, logName), s.gwookEnv(), s.opts.gwook)
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
	if s.pushSub != "" {
		for _, name := range []string{s.emu.subscription(s.pushSub), s.emu.subscription(s.dltSub),
			s.emu.topic(s.srcTopic), s.emu.topic(s.dltTopic)} {
			_ = s.emu.delete(ctx, name)
		}
	}
	s.gwookMu.Lock()
	defer s.gwookMu.Unlock()
	for _, p := range []*proc.Process{s.gwook, s.redis} {
		if p != nil {
			_ = p.Stop(15 * time.Second)
		}
	}
}

// trafficStats is what the senders counted.
type trafficStats struct {
	published int
	direct    *directStats
}

// traffic sends the events, paced evenly over the spread, while the fault
// schedule restarts Redis and gwook, and returns once every event was
// published or settled with its producer.
func (s *soak) traffic(ctx context.Context) (*trafficStats, error) {
	n := s.opts.events
	stats := &trafficStats{direct: &directStats{}}
	pushes, directs := make(chan int, n), make(chan int, n)
	var wg sync.WaitGroup
	var publishErr error

	wg.Go(func() { // feeder
		defer close(pushes)
		defer close(directs)
		for i := range n {
			if !sleepCtx(ctx, time.Until(s.started.Add(s.opts.spread*time.Duration(i)/time.Duration(n)))) {
				return
			}
			if i%2 == 0 {
				pushes <- i
			} else {
				directs <- i
			}
		}
	})
	wg.Go(func() { // publisher: what arrived each 100 ms, in one publish call
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for open := true; open; {
			<-tick.C
			var batch [][]byte
		drain:
			for {
				select {
				case i, ok := <-pushes:
					if !ok {
						open = false
						break drain
					}
					batch = append(batch, event(s.run, i))
				default:
					break drain
				}
			}
			if len(batch) == 0 {
				continue
			}
			if err := s.publish(ctx, batch); err != nil {
				publishErr = err
				return
			}
			stats.published += len(batch)
		}
	})
	client := &http.Client{Timeout: 30 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/notifications", s.gwookPort)
	for range 32 {
		wg.Go(func() {
			for i := range directs {
				postDirect(ctx, client, url, event(s.run, i), stats.direct)
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

// publish publishes a batch, retrying for up to a minute.
func (s *soak) publish(ctx context.Context, batch [][]byte) error {
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if err = s.emu.publish(ctx, s.srcTopic, batch); err == nil || ctx.Err() != nil {
			return err
		}
		sleepCtx(ctx, time.Second)
	}
	return fmt.Errorf("publishing to the emulator: %w", err)
}

// scheduleFaults restarts Redis a third of the way through the spread,
// and stops gwook with SIGTERM and starts it again a little past halfway.
func (s *soak) scheduleFaults(ctx context.Context) error {
	if !sleepCtx(ctx, time.Until(s.started.Add(s.opts.spread/3))) {
		return ctx.Err()
	}
	s.redisAt = time.Since(s.started)
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
	s.redisDowntime = time.Since(down)
	s.progress("fault: Redis back after %s (empty: its dedup keys are gone)", s.redisDowntime.Round(time.Millisecond))

	if !sleepCtx(ctx, time.Until(s.started.Add(s.opts.spread*55/100))) {
		return ctx.Err()
	}
	s.gwookAt = time.Since(s.started)
	down = time.Now()
	s.progress("fault: SIGTERM to gwook (it drains)")
	s.gwookMu.Lock()
	old := s.gwook
	s.gwookMu.Unlock()
	if err := old.Stop(30 * time.Second); err != nil {
		return fmt.Errorf("gwook did not shut down cleanly: %w\n%s", err, old.LogTail(20))
	}
	s.progress("fault: gwook exited after %s; starting it again", time.Since(down).Round(time.Millisecond))
	if err := s.startGwook(ctx, "gwook-2.log"); err != nil {
		return err
	}
	s.gwookDowntime = time.Since(down)
	s.progress("fault: gwook ready again after %s", s.gwookDowntime.Round(time.Millisecond))
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
				s.progress("Svix stored %d; direct: %d accepted, %d dead-lettered, %d retries; Svix attempts %d (%d 500, %d 429, %d slow)",
					len(s.svix.Messages()), d.accepted.Load(), d.deadLettered.Load(), d.retries.Load(),
					s.svix.Attempts(), t.ByStatus[http.StatusInternalServerError], t.ByStatus[http.StatusTooManyRequests], t.Delayed)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// finish waits until all is quiet, turns the faults off, replays the
// dead-letter subscription and counts every event's messages.
func (s *soak) finish(ctx context.Context, traffic *trafficStats) (*result, error) {
	s.progress("all events sent; waiting until Svix sees no request for %s", s.opts.quiet)
	for time.Since(s.svix.Tally().Last) < s.opts.quiet {
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return nil, fmt.Errorf("not quiet before the deadline: %w", ctx.Err())
		}
	}
	res := &result{opts: s.opts, traffic: traffic, svix: s.svix,
		redisAt: s.redisAt, redisDowntime: s.redisDowntime, gwookAt: s.gwookAt, gwookDowntime: s.gwookDowntime}
	res.beforeReplay = len(s.svix.Messages())

	s.svix.FailRandomly(0)
	s.progress("faults off; %d of %d events at Svix; replaying the dead-letter subscription", res.beforeReplay, s.opts.events)
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
	// stragglers a bounded time before counting anything as lost.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if res.tally(s.svix.Messages(), s.run); len(res.lost) == 0 {
			break
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	res.tally(s.svix.Messages(), s.run)
	res.elapsed = time.Since(s.started)
	return res, nil
}

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
