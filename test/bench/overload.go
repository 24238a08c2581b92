package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gwook/gwook/test/proc"
)

// overloadOptions are the flags of the overload mode.
type overloadOptions struct {
	gwook            string
	out              string
	maxInFlight      int
	maxInFlightBytes int
	burst            int
	bodyBytes        int
	body             string
	svixDelay        time.Duration
	slow             int
	announce         int64
	readTimeout      time.Duration
}

// runOverload is the "overload" mode. It starts gwook in front of a
// Svix-compatible server that takes -svix-delay per message, and reads
// gwook's peak resident memory and Go heap while:
//
//  1. a burst of -burst requests with bodies of -body-bytes arrives at once;
//  2. -slow connections announce a Content-Length of -announce and send it
//     at 10 KiB/s, until gwook answers (408 after HTTP_SERVER_READ_TIMEOUT);
//  3. -slow connections announce 16 MiB, over MAX_BODY_BYTES.
//
// It prints what each phase got and the memory.
func runOverload(args []string) error {
	var o overloadOptions
	fs := flag.NewFlagSet("overload", flag.ContinueOnError)
	fs.StringVar(&o.gwook, "gwook", "bin/gwook", "gwook binary to measure")
	fs.StringVar(&o.out, "out", "reports", "directory for the processes' logs (in overload-logs/)")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 0, "gwook's MAX_IN_FLIGHT; 0 keeps its default")
	fs.IntVar(&o.maxInFlightBytes, "max-in-flight-bytes", 0, "gwook's MAX_IN_FLIGHT_BYTES; 0 keeps its default")
	fs.IntVar(&o.burst, "burst", 500, "requests sent at once in the burst")
	fs.IntVar(&o.bodyBytes, "body-bytes", 1<<20, "size of each body of the burst")
	fs.StringVar(&o.body, "body", bodyRaw, "body kind of the burst: raw (an event of -body-bytes) or push (an envelope of -body-bytes)")
	fs.DurationVar(&o.svixDelay, "svix-delay", 200*time.Millisecond, "time the Svix-compatible server takes per message")
	fs.IntVar(&o.slow, "slow-conns", 200, "slow connections in phases 2 and 3")
	fs.Int64Var(&o.announce, "announce", 2<<20, "Content-Length the slow connections of phase 2 announce (at most MAX_BODY_BYTES)")
	fs.DurationVar(&o.readTimeout, "read-timeout", 10*time.Second, "gwook's HTTP_SERVER_READ_TIMEOUT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.body != bodyRaw && o.body != bodyPush {
		return fmt.Errorf("-body: unknown body kind %q", o.body)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := proc.RaiseFileLimit(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logs := filepath.Join(o.out, "overload-logs")

	svixPort, err := proc.FreePort()
	if err != nil {
		return err
	}
	svixAddr := "127.0.0.1:" + strconv.Itoa(svixPort)
	svix, err := proc.Start("svix", filepath.Join(logs, "svix.log"), nil, self, "svix", "-listen", svixAddr, "-delay", o.svixDelay.String())
	if err != nil {
		return err
	}
	defer svix.Stop(5 * time.Second)
	if err := waitReady(ctx, func(ctx context.Context) error {
		return proc.WaitHTTP(ctx, "http://"+svixAddr+"/api/v1/health", http.StatusNoContent, svix)
	}); err != nil {
		return err
	}

	fmt.Printf("gwook with MAX_IN_FLIGHT %s, MAX_IN_FLIGHT_BYTES %s, HTTP_SERVER_READ_TIMEOUT %s; Svix takes %s per message. A fresh gwook for each phase.\n\n",
		cmpOr(o.maxInFlight, "default"), cmpOr(o.maxInFlightBytes, "default"), o.readTimeout, o.svixDelay)
	phases := []struct {
		name string
		run  func(ctx context.Context, addr string) map[string]int
	}{
		{fmt.Sprintf("burst: %d requests at once, %s bodies of %d bytes", o.burst, o.body, o.bodyBytes),
			o.sendBurst},
		{fmt.Sprintf("slow: %d connections announcing %d bytes, sending 10 KiB/s", o.slow, o.announce),
			func(ctx context.Context, addr string) map[string]int {
				return sendSlowly(ctx, addr, o.slow, o.announce)
			}},
		{fmt.Sprintf("slow: %d connections announcing 16 MiB", o.slow),
			func(ctx context.Context, addr string) map[string]int { return sendSlowly(ctx, addr, o.slow, 16<<20) }},
	}
	for i, p := range phases {
		gw, addr, err := o.startGwook(ctx, svixAddr, filepath.Join(logs, fmt.Sprintf("gwook-%d.log", i+1)))
		if err != nil {
			return err
		}
		before, err := proc.RSS(gw.Pid())
		if err != nil {
			_ = gw.Stop(15 * time.Second)
			return err
		}
		started := time.Now()
		peak, answers := measurePeaks(gw.Pid(), addr, func() map[string]int { return p.run(ctx, addr) })
		_ = gw.Stop(15 * time.Second)
		fmt.Printf("%s\n  answers: %s in %.1f s\n  RSS: %.1f MiB before, %.1f MiB at the peak; Go heap in use at the peak: %.1f MiB\n\n",
			p.name, formatAnswers(answers), time.Since(started).Seconds(), mib(before), mib(peak.rss), mib(peak.heap))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// startGwook starts gwook in front of the Svix-compatible server at
// svixAddr and returns it and its address once it is ready.
func (o overloadOptions) startGwook(ctx context.Context, svixAddr, logPath string) (*proc.Process, string, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, "", err
	}
	env := []string{
		"HTTP_SERVER_PORT=" + strconv.Itoa(port), "METRICS_PORT=0",
		"HTTP_SERVER_READ_TIMEOUT=" + o.readTimeout.String(),
		"SVIX_AUTH_TOKEN=" + svixToken, "SVIX_SERVER_URL=http://" + svixAddr,
		"AUTH_USERNAME=" + authUser, "AUTH_PASSWORD=" + authPass, "PUBSUB_VERIFICATION_TOKEN=" + pushToken,
		"DEDUP_TTL=0", "REDIS_URL=", "DEAD_LETTER_TOPIC=", "SENTRY_DSN=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "LOG_LEVEL=warn",
	}
	if o.maxInFlight > 0 {
		env = append(env, "MAX_IN_FLIGHT="+strconv.Itoa(o.maxInFlight))
	}
	if o.maxInFlightBytes > 0 {
		env = append(env, "MAX_IN_FLIGHT_BYTES="+strconv.Itoa(o.maxInFlightBytes))
	}
	env = append(env, "DATA_DIR="+strings.TrimSuffix(logPath, ".log")+"-data")
	gw, err := proc.Start("gwook", logPath, env, o.gwook)
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(ctx, func(ctx context.Context) error {
		return proc.WaitHTTP(ctx, "http://"+addr+"/ready", http.StatusOK, gw)
	}); err != nil {
		_ = gw.Stop(time.Second)
		return nil, "", err
	}
	return gw, addr, nil
}

func cmpOr(n int, zero string) string {
	if n == 0 {
		return zero
	}
	return strconv.Itoa(n)
}

// peaks are the highest memory figures of gwook seen during a phase.
type peaks struct {
	rss  int64 // resident memory, sampled every 2 ms
	heap int64 // go_memstats_heap_inuse_bytes, from /metrics every 20 ms
}

// measurePeaks runs f and returns the highest memory of gwook (process
// pid, serving at addr) seen while it ran. The Go heap can hold what is
// not resident: a buffer allocated whole and never written.
func measurePeaks(pid int, addr string, f func() map[string]int) (peaks, map[string]int) {
	var p peaks
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if rss, err := proc.RSS(pid); err == nil {
				p.rss = max(p.rss, rss)
			}
			if i%10 == 0 {
				if heap, err := heapInUse(addr); err == nil {
					p.heap = max(p.heap, heap)
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	answers := f()
	// Memory freed late still counts: keep sampling a little.
	time.Sleep(500 * time.Millisecond)
	close(done)
	<-sampled
	return p, answers
}

// heapInUse reads go_memstats_heap_inuse_bytes from gwook's /metrics.
func heapInUse(addr string) (int64, error) {
	resp, err := metricsClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, errors.New("no go_memstats_heap_inuse_bytes on /metrics")
}

var metricsClient = &http.Client{Timeout: time.Second}

// sendBurst sends o.burst requests at once, each on its own connection,
// and counts the answers by status.
func (o overloadOptions) sendBurst(ctx context.Context, addr string) map[string]int {
	body, target := o.burstBody(addr)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}}
	var (
		mu      sync.Mutex
		answers = map[string]int{}
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for range o.burst {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			if o.body == bodyRaw {
				req.SetBasicAuth(authUser, authPass)
			}
			<-start
			var answer string
			resp, err := client.Do(req)
			switch {
			case err == nil:
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answer = strconv.Itoa(resp.StatusCode)
			case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
				// Answered before its body was sent, the connection closed
				// under the rest of it.
				answer = "connection reset"
			default:
				answer = "error"
			}
			mu.Lock()
			answers[answer]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return answers
}

// burstBody is one body of o.bodyBytes and where to send it. Every request
// of the burst carries the same event, which Svix's idempotency key keeps
// to one message.
func (o overloadOptions) burstBody(addr string) ([]byte, string) {
	eventBytes := o.bodyBytes
	if o.body == bodyPush {
		eventBytes = (o.bodyBytes - 200) / 4 * 3
	}
	head := `{"id":"evt_overload","type":"user.signed_up","source":"overload","project":"p","user_id":"usr_overload","time":"2026-03-02T08:15:42Z","data":{"pad":"`
	tail := `"}}`
	event := []byte(head + strings.Repeat("x", max(eventBytes-len(head)-len(tail), 0)) + tail)
	if o.body == bodyRaw {
		return event, "http://" + addr + "/notifications"
	}
	env := []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString(event) + `","messageId":"m-1"},"subscription":"projects/p/subscriptions/overload"}`)
	return env, "http://" + addr + "/notifications?token=" + pushToken
}

// sendSlowly opens n authenticated connections that each announce a body
// of announced bytes and send it 1 KiB every 100 ms until gwook answers,
// and counts the answers by status.
func sendSlowly(ctx context.Context, addr string, n int, announced int64) map[string]int {
	var (
		mu      sync.Mutex
		answers = map[string]int{}
		wg      sync.WaitGroup
	)
	auth := base64.StdEncoding.EncodeToString([]byte(authUser + ":" + authPass))
	chunk := bytes.Repeat([]byte("x"), 1024)
	for range n {
		wg.Go(func() {
			answer := slowRequest(ctx, addr, auth, announced, chunk)
			mu.Lock()
			answers[answer]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return answers
}

func slowRequest(ctx context.Context, addr, auth string, announced int64, chunk []byte) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "error"
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	head := "POST /notifications HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Basic " + auth +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.FormatInt(announced, 10) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		return "error"
	}
	answered := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		k, err := io.ReadAtLeast(conn, buf, 12)
		if err != nil {
			answered <- "closed"
			return
		}
		answered <- strings.Fields(string(buf[:k]))[1]
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for sent := int64(0); sent < announced; sent += int64(len(chunk)) {
		select {
		case a := <-answered:
			return a
		case <-ctx.Done():
			return "error"
		case <-tick.C:
		}
		if _, err := conn.Write(chunk[:min(int64(len(chunk)), announced-sent)]); err != nil {
			break
		}
	}
	return <-answered
}

func formatAnswers(answers map[string]int) string {
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d × %s", answers[k], k)
	}
	return strings.Join(parts, ", ")
}
