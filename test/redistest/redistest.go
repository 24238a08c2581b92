// Package redistest runs a private redis-server for tests that must stop and
// restart Redis, such as tests of how a client behaves while Redis is down.
// Tests that only need a working Redis use the shared server instead, at
// SharedURL.
//
// Start needs redis-server on PATH and fails the test when it is missing:
// tests that need Redis never skip silently. The server listens on a free
// port of 127.0.0.1, keeps nothing on disk and runs until the test ends.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gwook/gwook/test/proc"
)

// DefaultSharedURL is the shared Redis that SharedURL returns by default.
const DefaultSharedURL = "redis://127.0.0.1:6379/0"

// readyTimeout bounds how long a starting server may take to answer PING,
// and a stopping server to exit and free its port.
const readyTimeout = 10 * time.Second

// startAttempts is how many free ports Start tries: another process may take
// the port between the moment it is found free and redis-server's bind.
const startAttempts = 3

// SharedURL returns the URL of the shared Redis that tests use when they do
// not need to stop it: REDIS_URL when set (scripts/test-services prints it),
// else DefaultSharedURL.
func SharedURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return DefaultSharedURL
}

// Server is a redis-server process owned by one test. Its methods report
// failures through the test and must be called from the test goroutine.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port. It stays the same across
	// Stop and Restart.
	Addr string

	port int
	log  string        // the server's output, shown when it fails to start
	proc *proc.Process // nil while stopped
}

// Start starts a redis-server on a free port of 127.0.0.1 and waits until it
// answers PING. The server is stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redistest: redis-server is not on PATH (%v); install Redis (e.g. apt-get install redis-server) to run this test", err)
	}
	s := &Server{log: filepath.Join(tb.TempDir(), "redis-server.log")}
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("redistest: %v", err)
		}
	})
	var errs []error
	for range startAttempts {
		port, err := proc.FreePort()
		if err != nil {
			tb.Fatalf("redistest: finding a free port: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := s.start(); err != nil {
			errs = append(errs, err)
			continue
		}
		return s
	}
	tb.Fatalf("redistest: %v", errors.Join(errs...))
	return nil
}

// URL returns the server's URL for database 0, redis://127.0.0.1:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop stops the server and waits until its port refuses connections.
// Stopping a stopped server does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
}

// Restart starts the server again on the same port, stopping it first if it
// is running, and waits until it answers PING. The new server starts empty.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	if err := s.start(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
}

// start runs redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	p, err := proc.StartRedis(ctx, s.port, s.log)
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// stop ends the running process, if any: SIGTERM first, SIGKILL when it has
// not exited within readyTimeout. It returns once the port refuses
// connections.
func (s *Server) stop() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if err := p.Stop(readyTimeout); err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("port of %s still accepts connections %v after redis-server exited", s.Addr, readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
