package runlocal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/test/proc"
)

// TestWalkthrough follows the README's walk through the management API
// against `make run`: the first token from `gwook token create` while the
// server runs, an application, its endpoint, an ingest token, an event sent
// with it, then the filter and stats examples.
func TestWalkthrough(t *testing.T) {
	dir := install(t)
	dataDir := t.TempDir()
	gwookAddr, gwookPort := freeAddr(t)
	_, metricsPort := freeAddr(t)
	svixAddr, _ := freeAddr(t)
	env := append(os.Environ(), "SVIX_AUTH_TOKEN=", "HTTP_SERVER_PORT="+strconv.Itoa(gwookPort),
		"METRICS_PORT="+strconv.Itoa(metricsPort), "SVIX_TEST_SERVER_ADDR="+svixAddr, "DATA_DIR="+dataDir)
	cmd := exec.Command("bash", filepath.Join(dir, "scripts", "run-local"))
	cmd.Env = env
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := "http://" + gwookAddr
	if err := proc.WaitHTTP(ctx, base+"/health", http.StatusOK, nil); err != nil {
		t.Fatalf("gwook did not come up: %v\n%s", err, out.String())
	}

	// 1. The first admin token, from the command line, beside the server.
	create := exec.Command(filepath.Join(dir, "bin", "gwook"), "token", "create", "--name", "bootstrap", "--scope", "admin", "--expires", "720h")
	create.Env = env
	var stderr bytes.Buffer
	create.Stderr = &stderr
	raw, err := create.Output()
	if err != nil {
		t.Fatalf("gwook token create: %v\n%s", err, stderr.String())
	}
	admin := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(admin, "gwk_") || strings.Contains(admin, "\n") {
		t.Fatalf("gwook token create printed %q, want one gwk_ token", raw)
	}
	// The server learns of it from the database within 5 seconds.
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _ := call(t, admin, http.MethodGet, base+"/api/v1/applications", "")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still answers %d to the new token after 5 s", status)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 2.–4. An application, its endpoint, an ingest token.
	mustCall(t, http.StatusCreated, admin, http.MethodPost, base+"/api/v1/applications", `{"id": "usr_2xK9mQ4vL7pR", "name": "Acme"}`)
	mustCall(t, http.StatusCreated, admin, http.MethodPost, base+"/api/v1/applications/usr_2xK9mQ4vL7pR/endpoints",
		`{"url": "http://localhost:9000/webhooks", "event_types": ["user.signed_up"]}`)
	var tok struct{ Token string }
	if err := json.Unmarshal(mustCall(t, http.StatusCreated, admin, http.MethodPost, base+"/api/v1/tokens",
		`{"name": "billing-service", "scopes": ["ingest"]}`), &tok); err != nil {
		t.Fatal(err)
	}

	// 5. The event, sent with the ingest token.
	event, err := os.ReadFile(filepath.Join(root, "test", "events", "event-01.json"))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct{ Outcome, Application string }
	if err := json.Unmarshal(mustCall(t, http.StatusAccepted, tok.Token, http.MethodPost, base+"/notifications", string(event)), &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Outcome != "forwarded" || answer.Application != "usr_2xK9mQ4vL7pR" {
		t.Errorf("the event was answered %+v, want forwarded to usr_2xK9mQ4vL7pR", answer)
	}
	// The filter of "Filters", and the test of an event against it.
	mustCall(t, http.StatusOK, admin, http.MethodPut, base+"/api/v1/applications/usr_2xK9mQ4vL7pR/filter",
		`{"include_types": ["invoice.*"], "exclude_types": ["invoice.draft"],
		  "expression": "event.data.amount > 100 && event.source == \"billing\""}`)
	tested := mustCall(t, http.StatusOK, admin, http.MethodPost, base+"/api/v1/applications/usr_2xK9mQ4vL7pR/filter/test",
		`{"event": `+string(event)+`}`)
	if want := `{"allowed":false,"reason":"event type \"user.signed_up\" matches no include_types pattern","rule":"include_types"}`; strings.TrimSpace(string(tested)) != want {
		t.Errorf("filter/test answered %s, want %s", tested, want)
	}

	// The stats of "Stats": the event forwarded above, within
	// STATS_FLUSH_INTERVAL (10 s).
	deadline = time.Now().Add(15 * time.Second)
	for {
		var stats struct {
			Totals struct{ Forwarded int }
		}
		if err := json.Unmarshal(mustCall(t, http.StatusOK, admin, http.MethodGet,
			base+"/api/v1/applications/usr_2xK9mQ4vL7pR/stats?granularity=hour", ""), &stats); err != nil {
			t.Fatal(err)
		}
		if stats.Totals.Forwarded == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stats count %d forwarded events after 15 s, want 1", stats.Totals.Forwarded)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The ingest token manages nothing.
	mustCall(t, http.StatusForbidden, tok.Token, http.MethodGet, base+"/api/v1/applications", "")
	if strings.Contains(out.String(), admin) || strings.Contains(out.String(), tok.Token) {
		t.Error("a token's value reached gwook's output")
	}
}

func call(t *testing.T, token, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func mustCall(t *testing.T, want int, token, method, url, body string) []byte {
	t.Helper()
	status, raw := call(t, token, method, url, body)
	if status != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, status, want, raw)
	}
	return raw
}
