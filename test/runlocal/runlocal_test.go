// Package runlocal_test checks scripts/run-local, what `make run` runs:
// gwook against the local Svix-compatible server, stopped by Ctrl-C or
// SIGTERM with exit status 0 and nothing left running.
package runlocal_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/test/proc"
)

// root is the repository, relative to this package.
const root = "../.."

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// install lays out a copy of the repository's scripts/run-local next to
// freshly built bin/gwook and bin/svix-test-server, as `make run` has them.
func install(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, cmd := range []string{"gwook", "svix-test-server"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", cmd), "./cmd/"+cmd)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", cmd, err, out)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "run-local"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts", "run-local"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port
}

// TestStopsQuietly runs scripts/run-local in a process group of its own,
// as a terminal runs `make run`, sends an event through it, signals the
// whole group as Ctrl-C does (or SIGTERM), and checks that the script exits
// 0 after gwook drained and that the Svix-compatible server is gone too.
func TestStopsQuietly(t *testing.T) {
	dir := install(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			gwookAddr, gwookPort := freeAddr(t)
			_, metricsPort := freeAddr(t)
			svixAddr, _ := freeAddr(t)
			cmd := exec.Command("bash", filepath.Join(dir, "scripts", "run-local"))
			cmd.Env = append(os.Environ(),
				"SVIX_AUTH_TOKEN=", // the local test server, not Svix
				"HTTP_SERVER_PORT="+strconv.Itoa(gwookPort),
				"METRICS_PORT="+strconv.Itoa(metricsPort),
				"SVIX_TEST_SERVER_ADDR="+svixAddr,
				"DATA_DIR="+t.TempDir(),
			)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			})

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := proc.WaitHTTP(ctx, "http://"+gwookAddr+"/health", http.StatusOK, nil); err != nil {
				t.Fatalf("gwook did not come up: %v\n%s", err, out.String())
			}
			event, err := os.ReadFile(filepath.Join(root, "test", "events", "event-01.json"))
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+gwookAddr+"/notifications", bytes.NewReader(event))
			req.SetBasicAuth("admin", "admin")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("POST /notifications: %s\n%s", resp.Status, out.String())
			}

			if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("run-local after %v: %v, want exit status 0\n%s", sig, err, out.String())
				}
			case <-ctx.Done():
				t.Fatalf("run-local still running after %v\n%s", sig, out.String())
			}
			if !strings.Contains(out.String(), "shutdown complete") {
				t.Errorf("gwook did not drain:\n%s", out.String())
			}
			if c, err := net.DialTimeout("tcp", svixAddr, time.Second); err == nil {
				c.Close()
				t.Errorf("the Svix-compatible server on %s still answers after run-local exited", svixAddr)
			}
		})
	}
}
