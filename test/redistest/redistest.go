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
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
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
// not need to stop it: REDIS_URL when set, else redis://REDIS_ADDR/0 when
// REDIS_ADDR (host:port, as scripts/test-services prints it) is set, else
// DefaultSharedURL.
func SharedURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return "redis://" + a + "/0"
	}
	return DefaultSharedURL
}

// Server is a redis-server process owned by one test. Its methods report
// failures through the test and must be called from the test goroutine.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port. It stays the same across
	// Stop and Restart.
	Addr string

	bin  string
	dir  string
	port int
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before exited is closed
}

// Start starts a redis-server on a free port of 127.0.0.1 and waits until it
// answers PING. The server is stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server is not on PATH (%v); install Redis (e.g. apt-get install redis-server) to run this test", err)
	}
	s := &Server{bin: bin, dir: tb.TempDir()}
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("redistest: %v", err)
		}
	})
	var errs []error
	for range startAttempts {
		port, err := freePort()
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
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
	)
	p := &process{cmd: cmd, output: new(syncBuffer), exited: make(chan struct{})}
	cmd.Stdout = p.output
	cmd.Stderr = p.output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.proc = p

	deadline := time.Now().Add(readyTimeout)
	for {
		err := ping(s.Addr)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			s.proc = nil
			return fmt.Errorf("redis-server on %s exited before answering PING (%v); its output:\n%s", s.Addr, p.err, p.output)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stopErr := s.stop()
			return errors.Join(fmt.Errorf("redis-server on %s did not answer PING within %v: %w; its output:\n%s",
				s.Addr, readyTimeout, err, p.output), stopErr)
		}
	}
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
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(readyTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
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

// ping sends PING to addr and checks that the answer is PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer that the process may write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
