// Command bench is Gwook's load test (make bench). On loopback, with every
// part in its own process, it measures gwook against a bare reverse proxy
// (the baseline: one HTTP hop in and one out per event) in front of the
// same Svix-compatible server, and writes reports/bench.md and
// reports/bench.json.
//
// For each configuration (the baseline; gwook with Redis dedup on; gwook
// with dedup off; gwook with the Svix SDK's default http.Client) and body
// kind (raw event, Pub/Sub push envelope) it measures the sustained
// throughput of a closed loop at each fixed concurrency and the latency
// distribution of an open loop at a fixed rate. Every event is unique on
// id and on the dedup key. Last, it reads gwook's RSS before and while it
// holds many idle keep-alive connections.
//
// Usage:
//
//	bench [flags]                        run every phase (see -h)
//	bench overload [flags]               gwook's memory under a burst of large bodies and slow senders (see overload -h)
//	bench direct [flags]                 gwook's own delivery (DELIVERY_BACKEND=direct) on PostgreSQL and SQLite (see direct -h)
//	bench proxy -listen A -upstream URL  the baseline reverse proxy, started by bench
//	bench svix -listen A [-delay D]      the Svix-compatible server, started by bench
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gwook/gwook/test/proc"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "proxy":
		err = runProxy(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "svix":
		err = runSvix(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "overload":
		err = runOverload(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "direct":
		err = runDirect(os.Args[2:])
	default:
		err = runBench(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the bench's flags.
type options struct {
	gwook       string
	out         string
	concurrency []int
	warmup      time.Duration
	window      time.Duration
	rate        int
	rateWarmup  time.Duration
	rateWindow  time.Duration
	idleConns   int
	logLevel    string
	rounds      int
	configs     []configuration
	phases      []string
	proxy       string
	memoryOf    string
}

func parseOptions(args []string) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.gwook, "gwook", "bin/gwook", "gwook binary to measure")
	fs.StringVar(&o.out, "out", "reports", "directory for bench.md, bench.json and the processes' logs")
	conc := fs.String("concurrency", "64,256", "closed-loop concurrencies, comma-separated")
	only := fs.String("configs", "baseline,dedup-on,dedup-off,sdk-default", "configurations to measure, comma-separated")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "closed loop: warm-up before each measurement")
	fs.DurationVar(&o.window, "duration", 4*time.Second, "closed loop: measurement window")
	fs.IntVar(&o.rate, "rate", 2000, "open loop: events per second")
	fs.DurationVar(&o.rateWarmup, "rate-warmup", time.Second, "open loop: warm-up at the same rate")
	fs.DurationVar(&o.rateWindow, "rate-duration", 6*time.Second, "open loop: measurement window")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement; the best is reported (memory: the median)")
	fs.IntVar(&o.idleConns, "idle-conns", 10000, "idle keep-alive connections for the memory measurement")
	fs.StringVar(&o.logLevel, "log-level", "warn", "gwook's LOG_LEVEL; info writes a line per request to reports/bench-logs (about 450 bytes each)")
	bodies := fs.String("bodies", bodyRaw+","+bodyPush, "body kinds to send, comma-separated")
	fs.StringVar(&o.proxy, "proxy", "", "baseline proxy command, \"BIN [ARGS]\", started with -listen A -upstream URL added (default: this binary's proxy mode)")
	fs.StringVar(&o.memoryOf, "memory-of", "gwook", "memory phase: the process to measure, gwook (Redis dedup on) or baseline (the -proxy)")
	phases := fs.String("phases", phaseLoad+","+phaseMemory, "phases to run, comma-separated: "+phaseLoad+" (throughput and latency), "+phaseMemory+" (RSS with idle connections)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	for p := range strings.SplitSeq(*phases, ",") {
		p = strings.TrimSpace(p)
		if p != phaseLoad && p != phaseMemory {
			return o, fmt.Errorf("-phases: unknown phase %q", p)
		}
		o.phases = append(o.phases, p)
	}
	if o.concurrency, err = positiveInts("concurrency", *conc); err != nil {
		return o, err
	}
	for id := range strings.SplitSeq(*only, ",") {
		i := slices.IndexFunc(configurations, func(c configuration) bool { return c.ID == strings.TrimSpace(id) })
		if i < 0 {
			return o, fmt.Errorf("-configs: unknown configuration %q", id)
		}
		o.configs = append(o.configs, configurations[i])
	}
	kinds := strings.Split(strings.ReplaceAll(*bodies, " ", ""), ",")
	for _, k := range kinds {
		if k != bodyRaw && k != bodyPush {
			return o, fmt.Errorf("-bodies: unknown body kind %q", k)
		}
	}
	for i := range o.configs {
		o.configs[i].Bodies = slices.DeleteFunc(slices.Clone(o.configs[i].Bodies), func(b string) bool { return !slices.Contains(kinds, b) })
	}
	if o.memoryOf != "gwook" && o.memoryOf != "baseline" {
		return o, fmt.Errorf("-memory-of: %q is neither gwook nor baseline", o.memoryOf)
	}
	if o.rate < 1 || o.idleConns < 1 || o.rounds < 1 {
		return o, errors.New("-rate, -idle-conns and -rounds must be positive")
	}
	return o, nil
}

// The bench's phases, for -phases.
const (
	phaseLoad   = "load"
	phaseMemory = "memory"
)

// configuration is one thing measured: the baseline proxy or a gwook setup.
type configuration struct {
	ID         string // for -configs
	Name       string // as shown in the report
	Baseline   bool
	Dedup      bool
	SvixClient string // SVIX_HTTP_CLIENT
	Bodies     []string
}

var configurations = []configuration{
	{ID: "baseline", Name: "baseline: bare reverse proxy", Baseline: true, Bodies: []string{bodyRaw, bodyPush}},
	{ID: "dedup-on", Name: "gwook, Redis dedup on", Dedup: true, SvixClient: "tuned", Bodies: []string{bodyRaw, bodyPush}},
	{ID: "dedup-off", Name: "gwook, dedup off", SvixClient: "tuned", Bodies: []string{bodyRaw, bodyPush}},
	{ID: "sdk-default", Name: "gwook, Redis dedup on, SDK default http.Client", Dedup: true, SvixClient: "sdk-default", Bodies: []string{bodyRaw}},
}

// bench holds what the phases share.
type bench struct {
	opts     options
	self     string // this binary, started again as the proxy and the Svix server
	logs     string
	redisURL string
	redisPid int
	events   *events
	started  time.Time
}

func runBench(args []string) error {
	opts, err := parseOptions(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	limit, err := proc.RaiseFileLimit()
	if err != nil {
		return fmt.Errorf("raising the open-file limit: %w", err)
	}
	if limit < uint64(opts.idleConns)+1000 {
		return fmt.Errorf("the open-file limit is %d; -idle-conns %d needs more (raise the hard limit: ulimit -Hn)", limit, opts.idleConns)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	b := &bench{opts: opts, self: self, logs: filepath.Join(opts.out, "bench-logs"),
		events: &events{run: hex.EncodeToString(runID)}, started: time.Now()}

	redisPort, err := proc.FreePort()
	if err != nil {
		return err
	}
	redis, err := proc.StartRedis(ctx, redisPort, filepath.Join(b.logs, "redis.log"))
	if err != nil {
		return err
	}
	defer redis.Stop(5 * time.Second)
	b.redisURL, b.redisPid = fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort), redis.Pid()

	report := &Report{Started: b.started.UTC(), Machine: machine(), Settings: opts.settings(), LoadBefore: loadAverage()}
	if slices.Contains(opts.phases, phaseLoad) {
		stacks, stopStacks, err := b.startStacks(ctx)
		defer stopStacks()
		if err != nil {
			return err
		}
		report.Rows = b.measure(ctx, stacks)
		stopStacks()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if slices.Contains(opts.phases, phaseMemory) {
		// RSS includes the garbage of the connections' requests that no
		// collection has freed yet, which varies with when the last one
		// ran: each round starts a fresh process, and the median round is
		// reported.
		var rounds []Memory
		for range opts.rounds {
			mem, err := b.memory(ctx)
			if err != nil {
				return fmt.Errorf("memory: %w", err)
			}
			rounds = append(rounds, mem)
		}
		slices.SortFunc(rounds, func(x, y Memory) int { return cmp.Compare(x.PerConnection, y.PerConnection) })
		report.Memory = rounds[len(rounds)/2]
		for _, m := range rounds {
			report.Memory.Rounds = append(report.Memory.Rounds, m.PerConnection)
		}
	}
	report.Seconds = time.Since(b.started).Seconds()
	report.LoadAfter = loadAverage()
	report.compare()
	if err := report.write(opts.out); err != nil {
		return err
	}
	fmt.Print(report.markdown())
	b.progress("wrote %s and %s", filepath.Join(opts.out, "bench.md"), filepath.Join(opts.out, "bench.json"))
	return nil
}

// positiveInts parses the comma-separated positive numbers of flag name.
func positiveInts(name, list string) ([]int, error) {
	var out []int
	for s := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a positive number", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}

func (o options) settings() Settings {
	return Settings{Concurrency: o.concurrency, WarmupSeconds: o.warmup.Seconds(), WindowSeconds: o.window.Seconds(),
		Rate: o.rate, RateWarmupSeconds: o.rateWarmup.Seconds(), RateWindowSeconds: o.rateWindow.Seconds(), GwookLogLevel: o.logLevel,
		IdleConnections: o.idleConns, Rounds: o.rounds}
}

// progress prints a line to stderr with the time since the start.
func (b *bench) progress(format string, args ...any) { progress(b.started, format, args...) }

// progress prints a line to stderr with the time since started.
func progress(started time.Time, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%4.0fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

// stack is one configuration, running: the process under test (gwook or
// the proxy) in front of its own Svix-compatible server.
type stack struct {
	configuration
	base string         // the front's base URL
	pids map[string]int // processes whose CPU time is measured
}

// startStacks starts every configuration at once, so that the
// measurements can take turns: a machine whose load changes during the
// run then affects each configuration alike. stop ends them all.
func (b *bench) startStacks(ctx context.Context) ([]*stack, func(), error) {
	var procs []*proc.Process
	stop := func() {
		for _, p := range procs {
			_ = p.Stop(15 * time.Second)
		}
		procs = nil
	}
	var stacks []*stack
	for _, c := range b.opts.configs {
		svix, svixURL, err := b.startSvix(ctx, c.Name)
		if err != nil {
			return nil, stop, fmt.Errorf("%s: %w", c.Name, err)
		}
		procs = append(procs, svix)
		var front *proc.Process
		var base string
		if c.Baseline {
			front, base, err = b.startProxy(ctx, svixURL)
		} else {
			front, base, err = b.startGwook(ctx, svixURL, c)
		}
		if err != nil {
			return nil, stop, fmt.Errorf("%s: %w", c.Name, err)
		}
		procs = append(procs, front)
		s := &stack{configuration: c, base: base, pids: map[string]int{"front": front.Pid(), "svix": svix.Pid()}}
		if c.Dedup {
			s.pids["redis"] = b.redisPid
		}
		stacks = append(stacks, s)
	}
	b.progress("started %d configurations; %d round(s) of each measurement, taking turns", len(stacks), b.opts.rounds)
	return stacks, stop, nil
}

// measure runs every measurement on every stack and body kind, rounds
// times, the stacks taking turns, and keeps the best round of each: the
// highest throughput, the latency round with the lowest p99. Other load on
// the machine can only lower throughput and raise latency.
func (b *bench) measure(ctx context.Context, stacks []*stack) []Row {
	type key struct {
		s    *stack
		body string
	}
	rows := map[key]*Row{}
	var order []key
	for _, s := range stacks {
		for _, body := range s.Bodies {
			k := key{s, body}
			order = append(order, k)
			rows[k] = &Row{Configuration: s.Name, Baseline: s.Baseline, Dedup: s.Dedup, SvixClient: s.SvixClient, Body: body,
				Throughput: make([]Throughput, len(b.opts.concurrency))}
		}
	}
	for _, body := range []string{bodyRaw, bodyPush} {
		for i, n := range b.opts.concurrency {
			for round := range b.opts.rounds {
				for _, k := range order {
					if k.body != body || ctx.Err() != nil {
						continue
					}
					t := closedLoop(ctx, newRequest(b.events, k.s.base, body), expectedStatus(k.s.Baseline, body),
						n, b.opts.warmup, b.opts.window, k.s.pids)
					b.progress("%s, %s, concurrency %d, round %d: %.0f events/s (%d errors; other load %.2f CPUs)",
						k.s.Name, body, n, round+1, t.EventsPerSec, t.Errors, t.OtherCPUs)
					best := &rows[k].Throughput[i]
					rounds := append(best.Rounds, t.EventsPerSec)
					if t.EventsPerSec > best.EventsPerSec {
						*best = t
					}
					best.Rounds = rounds
				}
			}
		}
		for round := range b.opts.rounds {
			for _, k := range order {
				if k.body != body || ctx.Err() != nil {
					continue
				}
				l := openLoop(ctx, newRequest(b.events, k.s.base, body), expectedStatus(k.s.Baseline, body),
					b.opts.rate, b.opts.rateWarmup, b.opts.rateWindow)
				b.progress("%s, %s, %d/s open loop, round %d: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (%d errors; sent late: p99 %.2f ms)",
					k.s.Name, body, l.Rate, round+1, l.P50, l.P90, l.P99, l.Max, l.Errors, l.LagP99)
				best := &rows[k].Latency
				rounds := append(best.RoundsP99, l.P99)
				if len(rounds) == 1 || l.P99 < best.P99 {
					*best = l
				}
				best.RoundsP99 = rounds
			}
		}
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		out = append(out, *rows[k])
	}
	return out
}

// expectedStatus is the answer counted as success: gwook's 202 for a
// producer and 200 for a push; for the baseline, Svix's 202.
func expectedStatus(baseline bool, kind string) int {
	switch {
	case baseline:
		return http.StatusAccepted
	case kind == bodyPush:
		return http.StatusOK
	default:
		return http.StatusAccepted
	}
}

// memory measures a fresh gwook (Redis dedup on), or with -memory-of
// baseline the baseline proxy, holding idle connections.
func (b *bench) memory(ctx context.Context) (Memory, error) {
	svix, svixURL, err := b.startSvix(ctx, "memory")
	if err != nil {
		return Memory{}, err
	}
	defer svix.Stop(5 * time.Second)
	var front *proc.Process
	var base, name string
	if b.opts.memoryOf == "baseline" {
		name = "the baseline proxy (" + filepath.Base(b.proxyCommand()[0]) + ")"
		front, base, err = b.startProxy(ctx, svixURL)
	} else {
		name = "gwook (Redis dedup on)"
		front, base, err = b.startGwook(ctx, svixURL, configurations[1])
	}
	if err != nil {
		return Memory{}, err
	}
	defer front.Stop(15 * time.Second)
	b.progress("memory: opening %d idle keep-alive connections to %s", b.opts.idleConns, name)
	m, err := idleConnections(ctx, strings.TrimPrefix(base, "http://"), front.Pid(), b.opts.idleConns)
	m.Of = name
	if err != nil {
		return m, err
	}
	b.progress("memory: RSS %.1f MiB idle, %.1f MiB with %d connections: %.1f KiB per connection",
		mib(m.RSSBefore), mib(m.RSSAfter), m.Connections, m.PerConnection/1024)
	return m, nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// startSvix starts this binary's Svix-compatible server on a free port,
// for the configuration named name.
func (b *bench) startSvix(ctx context.Context, name string) (*proc.Process, string, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := proc.Start("svix", b.logFile("svix", name), nil, b.self, "svix", "-listen", addr)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if err := waitReady(ctx, func(ctx context.Context) error {
		return proc.WaitHTTP(ctx, url+"/api/v1/health", http.StatusNoContent, p)
	}); err != nil {
		_ = p.Stop(time.Second)
		return nil, "", err
	}
	return p, url, nil
}

// startProxy starts the baseline proxy in front of upstream.
func (b *bench) startProxy(ctx context.Context, upstream string) (*proc.Process, string, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := append(b.proxyCommand(), "-listen", addr, "-upstream", upstream)
	p, err := proc.Start("proxy", filepath.Join(b.logs, "proxy.log"), nil, cmd[0], cmd[1:]...)
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(ctx, func(ctx context.Context) error { return proc.WaitTCP(ctx, addr, p) }); err != nil {
		_ = p.Stop(time.Second)
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// proxyCommand is the baseline proxy's command line, without its flags.
func (b *bench) proxyCommand() []string {
	if cmd := strings.Fields(b.opts.proxy); len(cmd) > 0 {
		return cmd
	}
	return []string{b.self, "proxy"}
}

// startGwook starts gwook configured as c, in front of the Svix-compatible
// server at svixURL.
func (b *bench) startGwook(ctx context.Context, svixURL string, c configuration) (*proc.Process, string, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, "", err
	}
	dedupTTL := "0"
	if c.Dedup {
		dedupTTL = "10m"
	}
	env := []string{
		"HTTP_SERVER_PORT=" + strconv.Itoa(port),
		"METRICS_PORT=0",
		"SVIX_AUTH_TOKEN=" + svixToken,
		"SVIX_SERVER_URL=" + svixURL,
		"SVIX_HTTP_CLIENT=" + c.SvixClient,
		"AUTH_USERNAME=" + authUser,
		"AUTH_PASSWORD=" + authPass,
		"PUBSUB_VERIFICATION_TOKEN=" + pushToken,
		"REDIS_URL=" + b.redisURL,
		"DEDUP_TTL=" + dedupTTL,
		"DEAD_LETTER_TOPIC=",
		"SENTRY_DSN=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
		"LOG_LEVEL=" + b.opts.logLevel,
	}
	logPath := b.logFile("gwook", c.Name)
	env = append(env, "DATA_DIR="+strings.TrimSuffix(logPath, ".log")+"-data")
	p, err := proc.Start("gwook", logPath, env, b.opts.gwook)
	if err != nil {
		return nil, "", err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(ctx, func(ctx context.Context) error {
		return proc.WaitHTTP(ctx, base+"/ready", http.StatusOK, p)
	}); err != nil {
		_ = p.Stop(time.Second)
		return nil, "", err
	}
	return p, base, nil
}

// logFile is the log of process what for the configuration named name.
func (b *bench) logFile(what, name string) string {
	slug := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(name))
	return filepath.Join(b.logs, what+"-"+slug+".log")
}

// waitReady bounds a readiness wait to 30 seconds.
func waitReady(ctx context.Context, wait func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return wait(ctx)
}
