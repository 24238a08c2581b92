// Package runlocal_test checks scripts/run-local, what `make run` runs:
// without SVIX_AUTH_TOKEN, gwook delivering webhooks itself from its
// embedded SQLite database, with no Svix-compatible server; with it,
// gwook talking to Svix; and either way stopped by Ctrl-C or SIGTERM with
// exit status 0 and nothing left running.
package runlocal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/test/logbuf"
	"github.com/gwook/gwook/test/proc"
	"github.com/gwook/gwook/test/svixserver"
)

// root is the repository, relative to this package.
const root = "../.."

// install lays out a copy of the repository's scripts/run-local next to a
// freshly built bin/gwook, as `make run` has them. Nothing else is built:
// the script must need nothing else.
func install(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "gwook"), "./cmd/gwook")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gwook: %v\n%s", err, out)
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

// runLocal is scripts/run-local running in a process group of its own, as
// a terminal runs `make run`.
type runLocal struct {
	cmd  *exec.Cmd
	base string // gwook's URL
	addr string // gwook's address
	env  []string
	out  *logbuf.Buffer
	done chan struct{} // closed when the script has exited
	err  error         // its exit status, once done is closed
}

// startRunLocal starts scripts/run-local of the installation in dir on
// free ports, with env added to this process's environment and DATA_DIR a
// new temporary directory, and waits until gwook answers /health.
func startRunLocal(t *testing.T, dir string, env ...string) *runLocal {
	t.Helper()
	addr, port := freeAddr(t)
	_, metricsPort := freeAddr(t)
	r := &runLocal{
		base: "http://" + addr,
		addr: addr,
		env: append(append(os.Environ(),
			"HTTP_SERVER_PORT="+strconv.Itoa(port),
			"METRICS_PORT="+strconv.Itoa(metricsPort),
			"DATA_DIR="+t.TempDir(),
			// Settings of this environment that would change what
			// `make run` does.
			"DATABASE_URL=", "DELIVERY_BACKEND=", "SVIX_SERVER_URL=",
		), env...),
		out:  &logbuf.Buffer{},
		done: make(chan struct{}),
	}
	r.cmd = exec.Command("bash", filepath.Join(dir, "scripts", "run-local"))
	r.cmd.Env = r.env
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	})
	// Waiting ends early when the script exits.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-r.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := proc.WaitHTTP(ctx, r.base+"/health", http.StatusOK, nil); err != nil {
		select {
		case <-r.done:
			t.Fatalf("run-local exited (%v) before gwook answered /health:\n%s", r.err, r.out.String())
		default:
		}
		t.Fatalf("gwook did not come up: %v\n%s", err, r.out.String())
	}
	return r
}

// stop signals the whole process group as a terminal does, and checks
// that the script exits 0 after gwook drained, and that gwook no longer
// listens.
func (r *runLocal) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(-r.cmd.Process.Pid, sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("run-local after %v: %v, want exit status 0\n%s", sig, r.err, r.out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("run-local still running 2 minutes after %v\n%s", sig, r.out.String())
	}
	if !strings.Contains(r.out.String(), "shutdown complete") {
		t.Errorf("gwook did not drain:\n%s", r.out.String())
	}
	if c, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("gwook still answers on %s after run-local exited", r.addr)
	}
}

// readiness returns the checks /ready lists.
func (r *runLocal) readiness(t *testing.T) map[string]string {
	t.Helper()
	resp, err := http.Get(r.base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct{ Checks map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatalf("/ready: %v", err)
	}
	return ready.Checks
}

// sendEvent posts test/events/event-01.json with the script's Basic
// credentials and returns the answer's status and outcome.
func (r *runLocal) sendEvent(t *testing.T) (int, string) {
	t.Helper()
	event, err := os.ReadFile(filepath.Join(root, "test", "events", "event-01.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, r.base+"/notifications", bytes.NewReader(event))
	req.SetBasicAuth("admin", "admin")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer struct{ Outcome string }
	_ = json.Unmarshal(raw, &answer)
	return resp.StatusCode, answer.Outcome
}

// TestStopsQuietly runs scripts/run-local without SVIX_AUTH_TOKEN, checks
// that gwook delivers webhooks itself (no Svix among its dependencies),
// sends an event through it, signals the whole group as Ctrl-C does (or
// SIGTERM), and checks that the script exits 0 after gwook drained.
func TestStopsQuietly(t *testing.T) {
	dir := install(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			r := startRunLocal(t, dir, "SVIX_AUTH_TOKEN=")
			if !strings.Contains(r.out.String(), "DELIVERY_BACKEND=direct") {
				t.Errorf("run-local does not say that gwook delivers webhooks itself:\n%s", r.out.String())
			}
			checks := r.readiness(t)
			if _, ok := checks["svix"]; ok || checks["database"] != "ok" {
				t.Errorf("/ready checks %v, want the database and no Svix", checks)
			}
			// No application has this event's user_id yet: answered, and
			// not sent anywhere.
			if status, outcome := r.sendEvent(t); status != http.StatusOK || outcome != "no_application" {
				t.Errorf("POST /notifications: %d %q, want 200 no_application\n%s", status, outcome, r.out.String())
			}
			r.stop(t, sig)
		})
	}
}

// TestSvixWhenTokenSet runs scripts/run-local with SVIX_AUTH_TOKEN (and
// SVIX_SERVER_URL, here a Svix-compatible server in the test) and checks
// that gwook delivers through Svix, then stops quietly on Ctrl-C.
func TestSvixWhenTokenSet(t *testing.T) {
	dir := install(t)
	svix := svixserver.New(t)
	r := startRunLocal(t, dir, "SVIX_AUTH_TOKEN=testsk_runlocal", "SVIX_SERVER_URL="+svix.URL())
	if strings.Contains(r.out.String(), "DELIVERY_BACKEND=direct") {
		t.Errorf("run-local says gwook delivers webhooks itself with SVIX_AUTH_TOKEN set:\n%s", r.out.String())
	}
	if checks := r.readiness(t); checks["svix"] != "ok" {
		t.Errorf("/ready checks %v, want Svix ok", checks)
	}
	if status, outcome := r.sendEvent(t); status != http.StatusAccepted || outcome != "forwarded" {
		t.Errorf("POST /notifications: %d %q, want 202 forwarded\n%s", status, outcome, r.out.String())
	}
	if got := svix.MessagesFor("evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C"); len(got) != 1 {
		t.Errorf("Svix has %d messages of the event, want 1", len(got))
	}
	r.stop(t, syscall.SIGINT)
}
