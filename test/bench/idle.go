package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gwook/gwook/test/proc"
)

// Memory is gwook's resident memory before and while it holds idle
// keep-alive connections.
type Memory struct {
	// Of is the process measured.
	Of          string `json:"of"`
	Connections int    `json:"connections"`
	RSSBefore   int64  `json:"rss_before_bytes"`
	RSSAfter    int64  `json:"rss_after_bytes"`
	// PerConnection is (RSSAfter - RSSBefore) / Connections.
	PerConnection float64 `json:"rss_per_connection_bytes"`
	OpenSeconds   float64 `json:"open_seconds"`
	// Rounds are every round's PerConnection, in ascending order; the
	// median round is reported.
	Rounds []float64 `json:"rounds_rss_per_connection_bytes"`
}

// idleSettle is how long the connections sit idle before RSS is read.
const idleSettle = 3 * time.Second

// idleConnections opens n connections to addr, completes one GET /health
// on each so that the server holds it as an idle keep-alive connection,
// and reads the RSS of process pid before and while they are held.
func idleConnections(ctx context.Context, addr string, pid, n int) (Memory, error) {
	m := Memory{Connections: n}
	var err error
	if m.RSSBefore, err = proc.RSS(pid); err != nil {
		return m, err
	}
	started := time.Now()
	conns, err := openIdle(ctx, addr, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return m, err
	}
	m.OpenSeconds = time.Since(started).Seconds()
	sleep(ctx, idleSettle)
	if m.RSSAfter, err = proc.RSS(pid); err != nil {
		return m, err
	}
	m.PerConnection = float64(m.RSSAfter-m.RSSBefore) / float64(n)
	return m, nil
}

// openIdle opens n connections to addr, 64 at a time, each left idle after
// one completed GET /health.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	const dialers = 64
	var (
		mu       sync.Mutex
		conns    = make([]net.Conn, 0, n)
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan struct{})
	go func() {
		defer close(next)
		for range n {
			select {
			case next <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range dialers {
		wg.Go(func() {
			for range next {
				c, err := healthConn(addr)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if c != nil {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr == nil && len(conns) < n {
		firstErr = fmt.Errorf("opened %d of %d connections: %v", len(conns), n, ctx.Err())
	}
	return conns, firstErr
}

// healthConn dials addr and completes one keep-alive GET /health on it.
func healthConn(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		c.Close()
		return nil, fmt.Errorf("GET /health: %s (close=%v)", resp.Status, resp.Close)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
