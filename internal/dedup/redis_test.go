package dedup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/internal/batch"
	"github.com/gwook/gwook/test/redistest"
)

// newRedisClient returns a client for url that is closed when the test ends,
// and fails the test unless the server answers PING within 2 seconds.
func newRedisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parsing Redis URL %q: %v", url, err)
	}
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer PING: %v; start it with `scripts/test-services start` or run `make test` (set REDIS_URL for another server)", url, err)
	}
	return client
}

// impatientClient is a client for addr with short timeouts and Gwook's one
// retry of a command whose reply did not come (MaxRetries 1): the client a
// slow or stalled Redis meets in production, only quicker to give up.
func impatientClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	client := redis.NewClient(&redis.Options{
		Addr:          addr,
		DialTimeout:   200 * time.Millisecond,
		ReadTimeout:   200 * time.Millisecond,
		WriteTimeout:  200 * time.Millisecond,
		PoolTimeout:   200 * time.Millisecond,
		MaxRetries:    1,
		DialerRetries: 1,
	})
	t.Cleanup(func() { client.Close() })
	return client
}

// waitForPing polls d.Ping until it succeeds, which it must within
// pollTimeout.
func waitForPing(t *testing.T, d Deduper) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		err := d.Ping(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping still fails after %v: %v", pollTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisShared(t *testing.T) {
	client := newRedisClient(t, redistest.SharedURL())
	testDeduper(t, func(*testing.T) Deduper { return NewRedis(client) })
}

func TestRedisPrivate(t *testing.T) {
	client := newRedisClient(t, redistest.Start(t).URL())
	testDeduper(t, func(*testing.T) Deduper { return NewRedis(client) })
}

// TestRedisRecordFormat pins what a record looks like in Redis: operators
// read it, and replicas running different releases share it.
func TestRedisRecordFormat(t *testing.T) {
	client := newRedisClient(t, redistest.SharedURL())
	d := NewRedis(client)
	key := testKey(t)
	ctx := t.Context()
	expect := func(step, value string, minTTL, maxTTL time.Duration) {
		t.Helper()
		if got, err := client.Get(ctx, key).Result(); err != nil || got != value {
			t.Errorf("after %s: GET = %q, %v; want %q", step, got, err, value)
		}
		if got, err := client.PTTL(ctx, key).Result(); err != nil || got <= minTTL || got > maxTTL {
			t.Errorf("after %s: PTTL = %v, %v; want within (%v, %v]", step, got, err, minTTL, maxTTL)
		}
	}

	const lease, window = 1500 * time.Millisecond, time.Minute
	c := claim(t, d, key, "evt_a", lease)
	expect("the claim", "in_flight:evt_a", 0, lease)
	mustCommit(t, d, c, window)
	expect("the commit", "delivered:evt_a", lease, window)
	// An own claim of a delivered record leaves it, window and all; its
	// commit, after the copy was sent again, restarts the window.
	again := claim(t, d, key, "evt_a", lease)
	expect("an own claim", "delivered:evt_a", lease, window)
	mustCommit(t, d, again, 2*window)
	expect("the copy's commit", "delivered:evt_a", window, 2*window)

	other := testKey(t)
	mustRelease(t, d, claim(t, d, other, "evt_b", lease))
	if n, err := client.Exists(ctx, other).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS after Release = %d, %v; want 0", n, err)
	}
}

// TestRedisEventIDWithColons checks that the record's first colon ends the
// state, whatever the event id holds.
func TestRedisEventIDWithColons(t *testing.T) {
	d := NewRedis(newRedisClient(t, redistest.SharedURL()))
	key := testKey(t)
	const id = "delivered:in_flight:x"
	a := mustClaim(t, d, key, id, false)
	mustFind(t, d, key, "in_flight:x", InFlight, id)
	mustFind(t, d, key, "x", InFlight, id)
	mustCommit(t, d, a, longTTL)
	mustFind(t, d, key, "x", Duplicate, id)
	mustClaim(t, d, key, id, true)
}

func TestRedisUnexpectedRecord(t *testing.T) {
	client := newRedisClient(t, redistest.SharedURL())
	d := NewRedis(client)
	key := testKey(t)
	if err := client.Set(t.Context(), key, "something else", longTTL).Err(); err != nil {
		t.Fatal(err)
	}
	if c, err := d.Claim(t.Context(), key, "evt_a", longTTL); err == nil {
		t.Errorf("Claim of a key holding something else = %+v, want an error", c)
	}
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	d := NewRedis(impatientClient(t, srv.Addr))
	held := mustClaim(t, d, testKey(t), "evt_a", false)

	srv.Stop(t)
	if c, err := d.Claim(t.Context(), testKey(t), "evt_b", longTTL); err == nil {
		t.Errorf("Claim while Redis is down = %+v, want an error", c)
	}
	if err := commit(d, held, longTTL); err == nil || errors.Is(err, ErrNotHeld) {
		t.Errorf("Commit while Redis is down = %v, want an error other than ErrNotHeld", err)
	}
	if err := d.Release(t.Context(), held); err == nil {
		t.Error("Release while Redis is down = nil, want an error")
	}
	if err := d.Ping(t.Context()); err == nil {
		t.Error("Ping while Redis is down = nil, want an error")
	}

	srv.Restart(t)
	waitForPing(t, d)
	key := testKey(t)
	mustClaim(t, d, key, "evt_c", false)
	mustFind(t, d, key, "evt_d", InFlight, "evt_c")
}

// TestRedisPausedServer stalls every command on the server for longer than
// the client waits (CLIENT PAUSE), the way an overloaded or failing-over
// Redis looks: the claim is an error, never a duplicate, and the event's
// retry afterwards is claimed, whether or not the stalled write ran.
func TestRedisPausedServer(t *testing.T) {
	srv := redistest.Start(t)
	admin := newRedisClient(t, srv.URL())
	d := NewRedis(impatientClient(t, srv.Addr))
	key := testKey(t)

	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", 1000, "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	c, err := d.Claim(t.Context(), key, "evt_a", longTTL)
	if err == nil {
		t.Fatalf("Claim while Redis is paused = %+v, want an error", c)
	}
	waitForPing(t, d)
	landed := false
	switch got, err := admin.Get(t.Context(), key).Result(); {
	case err == nil && got == "in_flight:evt_a":
		landed = true
	case !errors.Is(err, redis.Nil):
		t.Fatalf("GET %s after the pause = %q, %v; want in_flight:evt_a or nothing", key, got, err)
	}
	t.Logf("the stalled claim's write landed: %v", landed)
	mustClaim(t, d, key, "evt_a", landed)
	mustFind(t, d, key, "evt_b", InFlight, "evt_a")
}

// TestRedisLostReply makes the claim reach Redis and run, and its reply not
// reach the client, twice: the first sending and the client's retry. The
// write landed; the claim is still an error, and the event's retry is
// claimed (its own record), not held up or suppressed by it.
func TestRedisLostReply(t *testing.T) {
	srv := redistest.Start(t)
	direct := newRedisClient(t, srv.URL())
	proxy := startReplyStaller(t, srv.Addr)
	d := NewRedis(impatientClient(t, proxy.addr))
	// Load the script into Redis, so that the stalled claim runs it by its
	// hash (EVALSHA) and needs no second command.
	mustRelease(t, d, claim(t, d, testKey(t), "evt_warmup", longTTL))

	key := testKey(t)
	proxy.stall()
	c, err := d.Claim(t.Context(), key, "evt_a", longTTL)
	if err == nil {
		t.Fatalf("Claim whose replies were held back = %+v, want an error", c)
	}
	if got, err := direct.Get(t.Context(), key).Result(); err != nil || got != "in_flight:evt_a" {
		t.Fatalf("GET %s = %q, %v; want the stalled claim's write, in_flight:evt_a", key, got, err)
	}
	mustFind(t, NewRedis(direct), key, "evt_b", InFlight, "evt_a")
	proxy.resume()

	mustClaim(t, d, key, "evt_a", true)
	mustFind(t, d, key, "evt_b", InFlight, "evt_a")
}

// replyStaller is a TCP proxy in front of a Redis server that can hold back
// the server's replies: commands reach Redis and run, their replies wait.
type replyStaller struct {
	addr string

	mu sync.Mutex
	// open is closed while replies pass; stall replaces it with an open
	// channel that resume closes.
	open  chan struct{}
	conns []net.Conn
}

// startReplyStaller starts a proxy to upstream, closed when the test ends.
func startReplyStaller(t *testing.T, upstream string) *replyStaller {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyStaller{addr: ln.Addr().String(), open: make(chan struct{})}
	close(p.open)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.resume()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(server, client)
				server.Close()
			})
			wg.Go(func() {
				p.passReplies(client, server)
				client.Close()
			})
		}
	})
	return p
}

// passReplies copies server to client, each read waiting while replies are
// held back.
func (p *replyStaller) passReplies(client, server net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			p.mu.Lock()
			open := p.open
			p.mu.Unlock()
			<-open
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stall holds back every reply from now on, until resume.
func (p *replyStaller) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default: // already stalled
	}
}

// resume passes the held replies on, and every later one.
func (p *replyStaller) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open: // not stalled
	default:
		close(p.open)
	}
}

// roundTrips is a go-redis hook that counts the scripts that reach the
// server: alone, and in pipelines with how many each carried. (A new
// connection's own handshake is not counted.)
type roundTrips struct {
	mu        sync.Mutex
	single    int
	pipelines []int
}

func isScript(cmd redis.Cmder) bool {
	return cmd.Name() == "evalsha" || cmd.Name() == "eval"
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isScript(cmd) {
			h.mu.Lock()
			h.single++
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && isScript(cmds[0]) {
			h.mu.Lock()
			h.pipelines = append(h.pipelines, len(cmds))
			h.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

// Steps waiting together go to Redis as one pipeline, each with its own
// answer; a server that lost the scripts (SCRIPT FLUSH, as after a restart
// or a failover) gets each one again with its body.
func TestRedisPipelinesSteps(t *testing.T) {
	url := redistest.Start(t).URL()
	client := newRedisClient(t, url)
	d := NewRedis(client)
	ctx := t.Context()
	held := mustClaim(t, d, testKey(t), "evt_holder", false)
	if err := commit(d, held, longTTL); err != nil {
		t.Fatal(err)
	}
	for _, flushed := range []bool{false, true} {
		if flushed {
			if err := client.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		hook := &roundTrips{}
		client := newRedisClient(t, url) // a fresh client for each hook
		client.AddHook(hook)
		d := NewRedis(client)
		// Ten claims of free keys and one of the committed key, in one batch.
		var calls []scriptCall
		for i := range 10 {
			calls = append(calls, scriptCall{claimScript, testKey(t) + fmt.Sprint(":", flushed, i), []any{"evt_" + fmt.Sprint(i), 60000}})
		}
		calls = append(calls, scriptCall{claimScript, held.Key, []any{"evt_other", 60000}})
		results, err := d.runScripts(ctx, calls)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			want := int64(1) // claimed
			if i == 10 {
				want = 3 // duplicate of evt_holder
			}
			if r.err != nil || len(r.reply.([]any)) != 3 || r.reply.([]any)[0] != want {
				t.Errorf("flushed %v: call %d = %v, %v; want answer %d", flushed, i, r.reply, r.err, want)
			}
		}
		hook.mu.Lock()
		if len(hook.pipelines) != 1 || hook.pipelines[0] != len(calls) {
			t.Errorf("flushed %v: pipelines %v, want one of %d", flushed, hook.pipelines, len(calls))
		}
		// Lost scripts: each is sent again alone; the first as EVALSHA and
		// then EVAL, which loads it for the others' EVALSHA.
		if wantSingle := map[bool]int{false: 0, true: len(calls) + 1}[flushed]; hook.single != wantSingle {
			t.Errorf("flushed %v: %d single commands, want %d", flushed, hook.single, wantSingle)
		}
		hook.mu.Unlock()
	}
}

// A commit waits for the next pipeline and rides in it, ahead of its
// claims; with no pipeline it goes alone within CommitDelay.
func TestRedisCommitRidesTheNextPipeline(t *testing.T) {
	hook := &roundTrips{}
	client := newRedisClient(t, redistest.SharedURL())
	client.AddHook(hook)
	d := NewRedis(client)
	d.commitDelay = time.Hour // no timer sends the commit first
	t.Cleanup(func() { d.Close(context.Background()) })
	held := mustClaim(t, d, testKey(t), "evt_a", false)
	written := make(chan error, 1)
	hook.mu.Lock()
	hook.single, hook.pipelines = 0, nil
	hook.mu.Unlock()

	d.Commit(held, longTTL, func(err error) { written <- err })
	// The next pipeline: a claim, as a writer hands it to runScripts.
	other := testKey(t)
	results, _ := d.runScripts(t.Context(), []scriptCall{{claimScript, other, []any{"evt_b", 60000}}})
	if len(results) != 1 || results[0].err != nil || results[0].reply.([]any)[0] != int64(1) {
		t.Fatalf("claim in the pipeline: %+v", results)
	}
	if err := <-written; err != nil {
		t.Fatalf("commit: %v", err)
	}
	hook.mu.Lock()
	if hook.single != 0 || len(hook.pipelines) != 1 || hook.pipelines[0] != 2 {
		t.Errorf("%d single scripts and pipelines %v; want the commit and the claim in one pipeline", hook.single, hook.pipelines)
	}
	hook.mu.Unlock()
	mustFind(t, d, held.Key, "evt_c", Duplicate, "evt_a")

	// Alone, it is written by the timer.
	d = NewRedis(client)
	t.Cleanup(func() { d.Close(context.Background()) })
	lone := mustClaim(t, d, testKey(t), "evt_d", false)
	start := time.Now()
	d.Commit(lone, longTTL, func(err error) { written <- err })
	select {
	case err := <-written:
		if err != nil {
			t.Fatalf("lone commit: %v", err)
		}
		t.Logf("lone commit written after %v", time.Since(start))
	case <-time.After(pollTimeout):
		t.Fatalf("a lone commit was not written within %v", pollTimeout)
	}
	if v, err := client.Get(t.Context(), lone.Key).Result(); err != nil || v != "delivered:evt_d" {
		t.Errorf("record after the lone commit: %q, %v", v, err)
	}
}

// Close writes the commits still waiting, and a commit after Close fails.
func TestRedisCloseWritesWaitingCommits(t *testing.T) {
	client := newRedisClient(t, redistest.SharedURL())
	d := NewRedis(client)
	d.commitDelay = time.Hour // only Close sends the commit
	held := mustClaim(t, d, testKey(t), "evt_a", false)
	var outcome atomic.Value
	d.Commit(held, longTTL, func(err error) { outcome.Store(fmt.Sprint(err)) })
	if outcome.Load() != nil {
		t.Fatal("the commit was written before Close")
	}
	d.Close(t.Context())
	if got := outcome.Load(); got != "<nil>" {
		t.Errorf("the waiting commit's outcome after Close: %v, want <nil>", got)
	}
	if v, err := client.Get(t.Context(), held.Key).Result(); err != nil || v != "delivered:evt_a" {
		t.Errorf("record after Close: %q, %v; want delivered:evt_a", v, err)
	}
	var late error
	d.Commit(held, longTTL, func(err error) { late = err })
	if !errors.Is(late, batch.ErrClosed) {
		t.Errorf("Commit after Close: %v, want batch.ErrClosed", late)
	}
}

// commitStaller is a go-redis hook that holds every commit before it is
// sent, until release is closed.
type commitStaller struct {
	held    chan struct{} // closed when the first commit is held
	release chan struct{}
	once    sync.Once
}

func (h *commitStaller) hold(cmds ...redis.Cmder) {
	for _, cmd := range cmds {
		if args := cmd.Args(); cmd.Name() == "evalsha" && len(args) > 1 && args[1] == commitScript.Hash() {
			h.once.Do(func() { close(h.held) })
			<-h.release
			return
		}
	}
}

func (h *commitStaller) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *commitStaller) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.hold(cmd)
		return next(ctx, cmd)
	}
}

func (h *commitStaller) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.hold(cmds...)
		return next(ctx, cmds)
	}
}

// A claim of a key whose commit another writer has taken but not yet sent
// waits for that commit, so it sees the event delivered.
func TestRedisClaimWaitsForTheCommitOnTheWire(t *testing.T) {
	stall := &commitStaller{held: make(chan struct{}), release: make(chan struct{})}
	client := newRedisClient(t, redistest.SharedURL())
	client.AddHook(stall)
	d := NewRedis(client)
	t.Cleanup(func() { d.Close(context.Background()) })
	held := mustClaim(t, d, testKey(t), "evt_a", false)
	written := make(chan error, 1)
	d.Commit(held, longTTL, func(err error) { written <- err })
	<-stall.held // the timer's writer took it and is held before sending
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(stall.release)
	}()
	mustFind(t, d, held.Key, "evt_b", Duplicate, "evt_a")
	if err := <-written; err != nil {
		t.Fatalf("commit: %v", err)
	}
}
