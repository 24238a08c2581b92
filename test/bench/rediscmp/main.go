// Command rediscmp measures what the Redis side of Gwook's duplicate
// suppression costs with three clients: the claim script and then the commit
// script of one event (package dedup's Lua scripts, with the arguments Gwook
// sends), on a fresh key each time, by many goroutines at once: each as
// fast as it can (the default), or paced to -rate events/s in all, the
// load Gwook puts on Redis (it delivers 5,000-10,000 events/s on 2 cores),
// where fewer steps wait together and pipelines are shorter.
//
//   - gwook: dedup's own Redis store, as Gwook runs it (go-redis, the
//     steps that wait at the same moment sent as one pipeline by
//     internal/batch, and each commit sent with the next pipeline). Gwook
//     answers without waiting for the commit; this program waits for it,
//     as for the other clients.
//   - go-redis: the same go-redis client, one EVALSHA round trip per step,
//     no batching (the store before pipelines).
//   - rueidis: github.com/redis/rueidis with its default automatic
//     pipelining of concurrent calls, through its Lua script helper.
//   - rueidis-delay (only when asked for with -clients): the same, with
//     MaxFlushDelay 20 µs, which rueidis offers to trade a little latency
//     for fewer writes.
//   - none (only when asked for): no Redis at all, this program's own CPU
//     per event, which every other client's includes; with -rate, mostly
//     the pacing's wake-ups.
//
// For each client and concurrency it reports events/s (one event is a claim
// and its commit), this program's CPU per event (getrusage: user+system),
// Redis's CPU per event (INFO cpu: used_cpu_user+used_cpu_sys), Redis
// commands per event (6 when nobody else uses the server: each EVALSHA
// counts, and so do the GET and the SET it runs), the p50 and p99
// of one claim+commit, and the CPUs that other processes used meanwhile
// (the machine's busy time from /proc/stat, less this program's and
// Redis's): on a shared machine, a round with more of it is a noisier one.
// The clients take turns, round by round in a rotating order, and the table
// gives each cell's median and range over the rounds.
//
// It needs a Redis that it may write to (it uses keys under a fresh prefix
// and deletes them after each measurement). The other clients run dedup's
// own scripts (dedup.ClaimLua, dedup.CommitLua); before measuring, it
// checks that they send what dedup's store sends.
//
//	go run ./test/bench/rediscmp -h
//	go run ./test/bench/rediscmp -addr 127.0.0.1:6379 -rounds 3
//	go run ./test/bench/rediscmp -rate 6000 -clients gwook,rueidis,rueidis-delay
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/dedup"
)

// What Gwook sends and how its client is set, with its defaults.
const (
	// redisTimeout is REDIS_TIMEOUT.
	redisTimeout = 500 * time.Millisecond
	// commandBudget is the deadline Gwook puts on every command (see
	// config.RedisCommandBudget).
	commandBudget = (config.RedisMaxRetries + 1) * 3 * redisTimeout
	// lease is the claim's lease, Gwook's default send budget (see
	// config.SendBudget): the claim, SVIX_RETRY_MAX_ELAPSED and the
	// release.
	lease = commandBudget + 8*time.Second + dedup.SettleTimeout
	// ttl is the commit's TTL, DEDUP_TTL.
	ttl = time.Minute
	// keyLen is the length of a dedup key: dedup.KeyPrefix and a hex
	// SHA-256.
	keyLen = len(dedup.KeyPrefix) + 64
)

// A client runs the claim and the commit of one event.
type client interface {
	// event claims key for the event id and commits it. It fails unless the
	// claim answered claimed (not own) and the commit wrote.
	event(ctx context.Context, key, id string) error
	close()
}

// clientKind is one of the configurations compared.
type clientKind struct {
	name, desc string
	open       func(addr string) (client, error)
}

// clients are the configurations compared, in their order in the table.
var clients = []clientKind{
	{"gwook", "gwook's store (go-redis + pipelines)", openGwook},
	{"go-redis", "go-redis, one EVALSHA per step", openGoRedis},
	{"rueidis", "rueidis, auto-pipelining", openRueidis(0)},
	// Not measured by default: rueidis's knob for fewer, larger writes.
	{"rueidis-delay", "rueidis, auto-pipelining, MaxFlushDelay 20 µs", openRueidis(20 * time.Microsecond)},
	// Not measured by default: what this program costs per event by itself.
	{"none", "no Redis: this program's own cost", func(string) (client, error) { return none{}, nil }},
}

// none does nothing, so that its client CPU per event is this program's
// own: making keys, timing, and with -rate the pacing.
type none struct{}

func (none) event(context.Context, string, string) error { return nil }
func (none) close()                                      {}

// newGoRedis returns a go-redis client set as Gwook sets it.
func newGoRedis(addr string) (redis.UniversalClient, error) {
	return dedup.NewClient(dedup.ClientConfig{
		URL:           "redis://" + addr + "/0",
		Timeout:       redisTimeout,
		MaxRetries:    config.RedisMaxRetries,
		CommandBudget: commandBudget,
	})
}

// gwookStore is dedup's Redis store.
type gwookStore struct {
	client redis.UniversalClient
	store  *dedup.Redis
}

func openGwook(addr string) (client, error) {
	c, err := newGoRedis(addr)
	if err != nil {
		return nil, err
	}
	return &gwookStore{client: c, store: dedup.NewRedis(c)}, nil
}

func (g *gwookStore) event(ctx context.Context, key, id string) error {
	c, err := g.store.Claim(ctx, key, id, lease)
	if err != nil {
		return err
	}
	if c.Status != dedup.Claimed || c.Own {
		return fmt.Errorf("claim %s: %s (own %t), want claimed", key, c.Status, c.Own)
	}
	// Gwook answers without waiting for the commit; waiting here keeps
	// "one claim+commit" the same measure for every client.
	committed := make(chan error, 1)
	g.store.Commit(c, ttl, func(err error) { committed <- err })
	select {
	case err := <-committed:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gwookStore) close() {
	ctx, cancel := context.WithTimeout(context.Background(), commandBudget)
	defer cancel()
	g.store.Close(ctx)
	_ = g.client.Close()
}

// goRedis runs each script as its own EVALSHA, as dedup's store did before
// it batched steps.
type goRedis struct {
	client redis.UniversalClient
}

var (
	goRedisClaim  = redis.NewScript(dedup.ClaimLua)
	goRedisCommit = redis.NewScript(dedup.CommitLua)
)

func openGoRedis(addr string) (client, error) {
	c, err := newGoRedis(addr)
	if err != nil {
		return nil, err
	}
	return &goRedis{client: c}, nil
}

func (g *goRedis) event(ctx context.Context, key, id string) error {
	vals, err := goRedisClaim.Run(ctx, g.client, []string{key}, id, lease.Milliseconds()).Slice()
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	if len(vals) != 3 || vals[0] != int64(1) {
		return fmt.Errorf("claim %s: reply %v, want claimed", key, vals)
	}
	wrote, err := goRedisCommit.Run(ctx, g.client, []string{key}, id, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	if wrote != 1 {
		return fmt.Errorf("commit %s: reply %d, want 1", key, wrote)
	}
	return nil
}

func (g *goRedis) close() { _ = g.client.Close() }

// rueidisClient runs each script with rueidis's Lua helper (EVALSHA, and
// EVAL when Redis lacks the script), each step under Gwook's command budget
// as its go-redis hook puts it; concurrent steps share a connection's
// pipeline.
type rueidisClient struct {
	client rueidis.Client
}

var (
	rueidisClaim  = rueidis.NewLuaScript(dedup.ClaimLua)
	rueidisCommit = rueidis.NewLuaScript(dedup.CommitLua)
)

// openRueidis opens rueidis with its defaults, but for flushDelay
// (ClientOption.MaxFlushDelay, 0 by default): how long a connection's
// writer may wait for more commands before it writes.
func openRueidis(flushDelay time.Duration) func(addr string) (client, error) {
	return func(addr string) (client, error) {
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, MaxFlushDelay: flushDelay})
		if err != nil {
			return nil, err
		}
		return &rueidisClient{client: c}, nil
	}
}

func (r *rueidisClient) event(ctx context.Context, key, id string) error {
	cctx, cancel := context.WithTimeout(ctx, commandBudget)
	vals, err := rueidisClaim.Exec(cctx, r.client, []string{key}, []string{id, strconv.FormatInt(lease.Milliseconds(), 10)}).ToArray()
	cancel()
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	var answer int64 = -1
	if len(vals) == 3 {
		answer, _ = vals[0].AsInt64()
	}
	if answer != 1 {
		return fmt.Errorf("claim %s: answer %d, want 1 (claimed)", key, answer)
	}
	cctx, cancel = context.WithTimeout(ctx, commandBudget)
	wrote, err := rueidisCommit.Exec(cctx, r.client, []string{key}, []string{id, strconv.FormatInt(ttl.Milliseconds(), 10)}).AsInt64()
	cancel()
	if err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	if wrote != 1 {
		return fmt.Errorf("commit %s: reply %d, want 1", key, wrote)
	}
	return nil
}

func (r *rueidisClient) close() { r.client.Close() }

// bench measures the clients against one Redis, on keys under one fresh
// prefix.
type bench struct {
	addr   string
	ctl    *redis.Client // INFO and key deletion, never measured
	prefix string
	next   atomic.Uint64 // the next event's number
}

// newBench connects to the Redis at addr and checks the scripts.
func newBench(ctx context.Context, addr string) (*bench, error) {
	ctl := redis.NewClient(&redis.Options{Addr: addr})
	if err := ctl.Ping(ctx).Err(); err != nil {
		ctl.Close()
		return nil, fmt.Errorf("redis at %s: %w (start it with `scripts/test-services start`, or give another)", addr, err)
	}
	b := &bench{addr: addr, ctl: ctl, prefix: "gwook:rediscmp:" + rand.Text()[:16] + ":"}
	if err := b.checkScripts(ctx); err != nil {
		b.close(ctx)
		return nil, err
	}
	return b, nil
}

// key returns the key and the event id of event n: a key as long as a
// dedup key, an id as long as a typical event id.
func (b *bench) key(n uint64) (key, id string) {
	return fmt.Sprintf("%s%0*d", b.prefix, keyLen-len(b.prefix), n), fmt.Sprintf("evt_%026d", n)
}

// checkScripts runs one event through dedup's store on a client that
// records its commands, and fails unless they were EVALSHAs of the same
// scripts with the arguments the other clients send.
func (b *bench) checkScripts(ctx context.Context) error {
	c, err := newGoRedis(b.addr)
	if err != nil {
		return err
	}
	rec := &recorder{}
	c.AddHook(rec)
	g := &gwookStore{client: c, store: dedup.NewRedis(c)}
	defer g.close()
	n := b.next.Add(1) - 1
	defer b.deleteKeys(ctx, n, n+1)
	key, id := b.key(n)
	if err := g.event(ctx, key, id); err != nil {
		return fmt.Errorf("an event through dedup's store: %w", err)
	}
	want := []string{
		fmt.Sprint([]any{"evalsha", sha1Hex(dedup.ClaimLua), 1, key, id, lease.Milliseconds()}),
		fmt.Sprint([]any{"evalsha", sha1Hex(dedup.CommitLua), 1, key, id, ttl.Milliseconds()}),
	}
	if got := rec.evalshas(); !slices.Equal(got, want) {
		return fmt.Errorf("dedup's store sent\n\t%s\nnot what the other clients send\n\t%s\n(update this program's arguments from internal/dedup/redis.go)",
			strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	return nil
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// recorder is a go-redis hook that records the EVALSHA commands sent.
type recorder struct {
	mu   sync.Mutex
	cmds []string
}

func (r *recorder) add(cmd redis.Cmder) {
	if cmd.Name() == "evalsha" {
		r.mu.Lock()
		r.cmds = append(r.cmds, fmt.Sprint(cmd.Args()))
		r.mu.Unlock()
	}
}

func (r *recorder) evalshas() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cmds)
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add(cmd)
		return next(ctx, cmd)
	}
}

func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			r.add(cmd)
		}
		return next(ctx, cmds)
	}
}

// deleteKeys deletes the keys of events from to to (excluded).
func (b *bench) deleteKeys(ctx context.Context, from, to uint64) error {
	const perCommand = 1000
	_, err := b.ctl.Pipelined(ctx, func(p redis.Pipeliner) error {
		keys := make([]string, 0, perCommand)
		for n := from; n < to; n++ {
			key, _ := b.key(n)
			keys = append(keys, key)
			if len(keys) == perCommand || n == to-1 {
				p.Unlink(ctx, keys...)
				keys = make([]string, 0, perCommand)
			}
		}
		return nil
	})
	return err
}

// close deletes whatever key is left under the prefix and closes the
// control client. It returns how many keys it found.
func (b *bench) close(ctx context.Context) (int, error) {
	defer b.ctl.Close()
	found := 0
	iter := b.ctl.Scan(ctx, 0, b.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		found++
		if err := b.ctl.Unlink(ctx, iter.Val()).Err(); err != nil {
			return found, err
		}
	}
	return found, iter.Err()
}

// result is one measurement of one client at one concurrency.
type result struct {
	events    int // claim+commit pairs that ended in the window
	errs      int // events that failed, warm-up included
	firstErr  error
	elapsed   time.Duration
	clientCPU time.Duration // this process's CPU in the window
	redisCPU  time.Duration // Redis's CPU in the window
	redisCmds int64         // commands Redis processed in the window
	othersCPU time.Duration // the machine's busy CPU, less this process's and Redis's
	p50, p99  time.Duration
}

func (r result) perSecond() float64 { return float64(r.events) / r.elapsed.Seconds() }

// perEvent returns d per event in µs.
func (r result) perEvent(d time.Duration) float64 {
	return float64(d.Microseconds()) / float64(max(r.events, 1))
}

// worker is one goroutine's part of a measurement, padded so that the
// goroutines' counters do not share a cache line.
type worker struct {
	latencies []time.Duration
	errs      int
	firstErr  error
	_         [64]byte
}

// load is how a measurement drives a client.
type load struct {
	conc int // goroutines
	// rate, when positive, paces the goroutines to rate events/s in all:
	// each starts an event every conc/rate seconds, or at once when late.
	// 0: each starts its next event as soon as the last ended.
	rate           float64
	warmup, window time.Duration // unmeasured, then measured
}

// measure runs open's client under l, and deletes the keys it wrote.
func (b *bench) measure(ctx context.Context, open func(string) (client, error), l load) (result, error) {
	c, err := open(b.addr)
	if err != nil {
		return result{}, err
	}
	defer c.close()
	from := b.next.Load()
	defer func() { _ = b.deleteKeys(context.WithoutCancel(ctx), from, b.next.Load()) }()

	var interval time.Duration
	if l.rate > 0 {
		interval = time.Duration(float64(l.conc) / l.rate * float64(time.Second))
	}
	var recording, stop atomic.Bool
	workers := make([]worker, l.conc)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		// Paced goroutines start spread over one interval.
		next := time.Now().Add(interval * time.Duration(i) / time.Duration(l.conc))
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				if interval > 0 {
					time.Sleep(time.Until(next))
					if next = next.Add(interval); next.Before(time.Now()) {
						next = time.Now()
					}
				}
				key, id := b.key(b.next.Add(1) - 1)
				start := time.Now()
				err := c.event(ctx, key, id)
				took := time.Since(start)
				switch {
				case err != nil:
					w.errs++
					if w.firstErr == nil {
						w.firstErr = err
					}
				case recording.Load():
					w.latencies = append(w.latencies, took)
				}
			}
		})
	}
	sleep(ctx, l.warmup)
	before, err := b.snapshot(ctx)
	recording.Store(true)
	if err == nil {
		sleep(ctx, l.window)
	}
	recording.Store(false)
	after, err2 := b.snapshot(ctx)
	stop.Store(true)
	wg.Wait()
	if err = errors.Join(err, err2, ctx.Err()); err != nil {
		return result{}, err
	}

	r := result{
		elapsed:   after.at.Sub(before.at),
		clientCPU: after.self - before.self,
		redisCPU:  after.redis - before.redis,
		redisCmds: after.redisCmds - before.redisCmds,
	}
	busy := r.elapsed*time.Duration(after.cpus) - (after.idle - before.idle)
	r.othersCPU = busy - r.clientCPU - r.redisCPU
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.latencies...)
		r.errs += w.errs
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	r.events = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.p50, r.p99 = all[len(all)*50/100], all[len(all)*99/100]
	}
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// snapshot is what the CPU counters read at one moment.
type snapshot struct {
	at        time.Time
	self      time.Duration // this process, user+system
	redis     time.Duration // Redis, used_cpu_user+used_cpu_sys
	redisCmds int64         // total_commands_processed
	idle      time.Duration // the whole machine's idle CPUs, and how many
	cpus      int
}

func (b *bench) snapshot(ctx context.Context) (snapshot, error) {
	info, err := b.ctl.InfoMap(ctx, "cpu", "stats").Result()
	if err != nil {
		return snapshot{}, fmt.Errorf("INFO: %w", err)
	}
	var s snapshot
	s.at = time.Now()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return snapshot{}, err
	}
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if s.idle, s.cpus, err = machineIdle(); err != nil {
		return snapshot{}, err
	}
	for _, f := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(info["CPU"][f], 64)
		if err != nil {
			return snapshot{}, fmt.Errorf("INFO cpu %s: %w", f, err)
		}
		s.redis += time.Duration(v * float64(time.Second))
	}
	if s.redisCmds, err = strconv.ParseInt(info["Stats"]["total_commands_processed"], 10, 64); err != nil {
		return snapshot{}, fmt.Errorf("INFO stats total_commands_processed: %w", err)
	}
	return s, nil
}

// machineIdle returns the time all CPUs together have been idle since boot
// (idle and iowait in /proc/stat), and the number of CPUs. Idle time, unlike
// the busy times beside it, is measured rather than sampled at each tick, so
// that it stays true under many short wake-ups.
func machineIdle() (time.Duration, int, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	f := strings.Fields(lines[0])
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, errors.New("unexpected /proc/stat")
	}
	var ticks int64
	for _, v := range f[4:6] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	cpus := 0
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "cpu") {
			cpus++
		}
	}
	const userHZ = 100 // the unit of /proc/stat, USER_HZ on Linux
	return time.Duration(ticks) * time.Second / userHZ, cpus, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rediscmp:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:6379", "host:port of the Redis to measure against (keys under a fresh prefix, deleted after)")
	concList := flag.String("concurrency", "64,256", "comma-separated numbers of goroutines")
	names := flag.String("clients", "gwook,go-redis,rueidis", "comma-separated clients to compare: gwook (dedup's store: go-redis + pipelines), go-redis (one EVALSHA per step), rueidis (auto-pipelining), rueidis-delay (the same, MaxFlushDelay 20µs), none (no Redis: this program's own cost)")
	warmup := flag.Duration("warmup", time.Second, "unmeasured time before each measurement")
	measured := flag.Duration("window", 5*time.Second, "measured time of each measurement")
	rate := flag.Float64("rate", 0, "events/s in all, paced across the goroutines (0: each goroutine as fast as it can)")
	rounds := flag.Int("rounds", 3, "rounds; each measures every client at every concurrency, the clients taking turns")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: go run ./test/bench/rediscmp [flags]

Measures one event's dedup claim and commit against a real Redis with
Gwook's store (go-redis + pipelines), go-redis with one EVALSHA per step,
and rueidis's auto-pipelining: events/s, this program's and Redis's CPU per
event, p50 and p99, median and range over the rounds.

`)
		flag.PrintDefaults()
	}
	flag.Parse()

	var concs []int
	for f := range strings.SplitSeq(*concList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-concurrency: %q is not a positive number", f)
		}
		concs = append(concs, n)
	}
	var chosen []int // indexes into clients
	for f := range strings.SplitSeq(*names, ",") {
		i := slices.IndexFunc(clients, func(c clientKind) bool { return c.name == strings.TrimSpace(f) })
		if i < 0 {
			return fmt.Errorf("-clients: unknown client %q", f)
		}
		chosen = append(chosen, i)
	}
	if *rate < 0 {
		return errors.New("-rate must not be negative")
	}
	if *rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}

	ctx := context.Background()
	b, err := newBench(ctx, *addr)
	if err != nil {
		return err
	}
	defer func() {
		if n, err := b.close(ctx); err != nil || n > 0 {
			fmt.Fprintf(os.Stderr, "rediscmp: %d keys were left under %s and deleted (%v)\n", n, b.prefix, err)
		}
	}()
	pace := "as fast as they can"
	if *rate > 0 {
		pace = fmt.Sprintf("paced to %.0f events/s", *rate)
	}
	fmt.Printf("Redis %s, keys under %s, GOMAXPROCS %d; goroutines %s; %v warm-up, %v measured, %d rounds\n\n",
		*addr, b.prefix, runtime.GOMAXPROCS(0), pace, *warmup, *measured, *rounds)

	results := map[[2]int][]result{} // by client index and concurrency
	for round := range *rounds {
		for _, conc := range concs {
			for k := range chosen {
				i := chosen[(k+round)%len(chosen)]
				r, err := b.measure(ctx, clients[i].open, load{conc: conc, rate: *rate, warmup: *warmup, window: *measured})
				if err != nil {
					return fmt.Errorf("%s at %d: %w", clients[i].name, conc, err)
				}
				if r.errs > 0 {
					return fmt.Errorf("%s at %d: %d events failed, the first: %w", clients[i].name, conc, r.errs, r.firstErr)
				}
				fmt.Printf("round %d  %-9s %4d  %7.0f events/s  client %5.1f µs  Redis %5.1f µs  p50 %5.2f ms  p99 %5.2f ms  %.2f cmds/event  others %.2f CPUs\n",
					round+1, clients[i].name, conc, r.perSecond(), r.perEvent(r.clientCPU), r.perEvent(r.redisCPU),
					ms(r.p50), ms(r.p99), float64(r.redisCmds)/float64(max(r.events, 1)), r.othersCPU.Seconds()/r.elapsed.Seconds())
				results[[2]int{i, conc}] = append(results[[2]int{i, conc}], r)
			}
		}
	}

	clientCPU := func(r result) float64 { return r.perEvent(r.clientCPU) }
	redisCPU := func(r result) float64 { return r.perEvent(r.redisCPU) }
	base := chosen[0]
	fmt.Printf("\nMedian (range) of %d rounds, %v each. Δ: each round's difference from %s in the same round,\n"+
		"which cancels much of the other processes' changing load.\n\n", *rounds, *measured, clients[base].name)
	fmt.Println("| client | goroutines | events/s | client µs/event | Δ client µs/event | Redis µs/event | Δ Redis µs/event | p50 ms | p99 ms | Redis cmds/event | others' CPUs |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, conc := range concs {
		for _, i := range slices.Sorted(slices.Values(chosen)) {
			rs, bs := results[[2]int{i, conc}], results[[2]int{base, conc}]
			col := func(f func(result) float64, prec int) string { return spread(rs, nil, f, prec) }
			delta := func(f func(result) float64) string {
				if i == base {
					return "–"
				}
				return spread(rs, bs, f, 1)
			}
			fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", clients[i].desc, conc,
				col(result.perSecond, 0),
				col(clientCPU, 1), delta(clientCPU),
				col(redisCPU, 1), delta(redisCPU),
				col(func(r result) float64 { return ms(r.p50) }, 2),
				col(func(r result) float64 { return ms(r.p99) }, 2),
				col(func(r result) float64 { return float64(r.redisCmds) / float64(max(r.events, 1)) }, 2),
				col(func(r result) float64 { return r.othersCPU.Seconds() / r.elapsed.Seconds() }, 2))
		}
	}
	return nil
}

// spread formats the median of f over rs and, with several, its range;
// with base, of f over rs less f over base, round by round.
func spread(rs, base []result, f func(result) float64, prec int) string {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
		if base != nil {
			vs[i] -= f(base[i])
		}
	}
	slices.Sort(vs)
	var median float64
	if n := len(vs); n%2 == 1 {
		median = vs[n/2]
	} else {
		median = (vs[n/2-1] + vs[n/2]) / 2
	}
	s := strconv.FormatFloat(median, 'f', prec, 64)
	if len(vs) > 1 {
		s += " (" + strconv.FormatFloat(vs[0], 'f', prec, 64) + "–" + strconv.FormatFloat(vs[len(vs)-1], 'f', prec, 64) + ")"
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
