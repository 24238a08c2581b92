package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

// Fault rates for message creation; the rest is answered normally.
const (
	rate500  = 0.20
	rate429  = 0.10
	rateSlow = 0.01
)

// svixFaults are the Svix-compatible server's random faults while the soak
// runs: a 500, a 429 with Retry-After: 1, or an answer that takes slow and
// is then normal.
func svixFaults(slow time.Duration) []svixserver.Fault {
	return []svixserver.Fault{
		{Rate: rate500, Response: svixserver.Response{Status: http.StatusInternalServerError}},
		{Rate: rate429, Response: svixserver.Response{Status: http.StatusTooManyRequests, RetryAfter: "1"}},
		{Rate: rateSlow, Response: svixserver.Response{Delay: slow}},
	}
}

// Redis latency: gwook's REDIS_TIMEOUT, and how long CLIENT PAUSE holds
// every command, well above it.
const (
	redisTimeout = 500 * time.Millisecond
	redisPause   = 3 * time.Second
)

// Before the SIGKILL, Svix holds every message creation for svixHang, so
// that calls are in flight when gwook dies; the kill comes once
// killPending calls are, or after killWait.
const (
	svixHang    = 30 * time.Second
	killPending = 10
	killWait    = 5 * time.Second
)

// pendingCalls wraps the Svix-compatible server and counts the requests it
// is answering.
type pendingCalls struct {
	next    http.Handler
	pending atomic.Int64
}

func (p *pendingCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.pending.Add(1)
	defer p.pending.Add(-1)
	p.next.ServeHTTP(w, r)
}

// pauseRedis makes the Redis at addr hold every client's commands for d
// (CLIENT PAUSE d ALL), then measures how long a PING on a new connection
// waits for its answer.
func pauseRedis(addr string, d time.Duration) (pingWaited time.Duration, err error) {
	reply, err := redisCommand(addr, time.Second, "CLIENT", "PAUSE", strconv.FormatInt(d.Milliseconds(), 10), "ALL")
	if err != nil {
		return 0, err
	}
	if reply != "+OK" {
		return 0, fmt.Errorf("CLIENT PAUSE answered %q", reply)
	}
	start := time.Now()
	reply, err = redisCommand(addr, d+5*time.Second, "PING")
	if err != nil {
		return 0, err
	}
	if reply != "+PONG" {
		return 0, fmt.Errorf("PING answered %q", reply)
	}
	return time.Since(start), nil
}

// redisCommand sends one command to the Redis at addr on a new connection
// and returns the first line of the answer.
func redisCommand(addr string, timeout time.Duration, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	cmd := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// sleepCtx waits for d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
