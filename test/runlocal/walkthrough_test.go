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

	"github.com/gwook/gwook/test/logbuf"
	"github.com/gwook/gwook/test/proc"
)

// TestWalkthrough follows the README's walk through the management API
// against `make run` (without SVIX_AUTH_TOKEN, so gwook delivers webhooks
// itself): the first token from `gwook token create` while the server
// runs, an application, its endpoint at a `gwook receive` started with the
// endpoint's secret, an ingest token, an event sent with it, the signed
// webhook the receiver verified and printed, the message and its attempt
// in the messages API, then the filter and stats examples.
func TestWalkthrough(t *testing.T) {
	dir := install(t)
	r := startRunLocal(t, dir, "SVIX_AUTH_TOKEN=")
	base := r.base
	const app = "usr_2xK9mQ4vL7pR"
	appURL := base + "/api/v1/applications/" + app

	// 1. The first admin token, from the command line, beside the server.
	create := exec.Command(filepath.Join(dir, "bin", "gwook"), "token", "create", "--name", "bootstrap", "--scope", "admin", "--expires", "720h")
	create.Env = r.env
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

	// 2. An application.
	mustCall(t, http.StatusCreated, admin, http.MethodPost, base+"/api/v1/applications", `{"id": "usr_2xK9mQ4vL7pR", "name": "Acme"}`)

	// 3. Its endpoint, at the receiver's address (port 9000 in the
	// README, a free one here).
	receiverAddr, receiverPort := freeAddr(t)
	var endpoint struct{ ID string }
	if err := json.Unmarshal(mustCall(t, http.StatusCreated, admin, http.MethodPost, appURL+"/endpoints",
		`{"url": "http://`+receiverAddr+`/webhooks", "event_types": ["user.signed_up"]}`), &endpoint); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(endpoint.ID, "ep_") {
		t.Fatalf("the endpoint's id is %q, want ep_...", endpoint.ID)
	}

	// 4. Its secret, and a receiver verifying with it.
	var secret struct{ Secret string }
	if err := json.Unmarshal(mustCall(t, http.StatusOK, admin, http.MethodGet, appURL+"/endpoints/"+endpoint.ID+"/secret", ""), &secret); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret.Secret, "whsec_") {
		t.Fatalf("the endpoint's secret does not start with whsec_")
	}
	received := startReceive(t, dir, secret.Secret, receiverAddr, receiverPort)

	// 5. An ingest token.
	var tok struct{ Token string }
	if err := json.Unmarshal(mustCall(t, http.StatusCreated, admin, http.MethodPost, base+"/api/v1/tokens",
		`{"name": "billing-service", "scopes": ["ingest"]}`), &tok); err != nil {
		t.Fatal(err)
	}

	// 6. The event, sent with the ingest token.
	event, err := os.ReadFile(filepath.Join(root, "test", "events", "event-01.json"))
	if err != nil {
		t.Fatal(err)
	}
	const eventID = "evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C"
	var answer struct {
		Outcome, Application string
		MessageID            string `json:"message_id"`
	}
	if err := json.Unmarshal(mustCall(t, http.StatusAccepted, tok.Token, http.MethodPost, base+"/notifications", string(event)), &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Outcome != "forwarded" || answer.Application != app || !strings.HasPrefix(answer.MessageID, "msg_") {
		t.Fatalf("the event was answered %+v, want forwarded to %s with a msg_ id", answer, app)
	}

	// The receiver verified its signature and timestamp, and printed it.
	want := "webhook-id=" + answer.MessageID + " verified type=user.signed_up id=" + eventID + " "
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(received.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver did not print %q within 30 s; it printed:\n%s\ngwook:\n%s", want, received.String(), r.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lines := strings.Split(strings.TrimSpace(received.String()), "\n"); len(lines) != 1 || !strings.HasSuffix(lines[0], " answered=204") {
		t.Errorf("the receiver printed %q, want one webhook answered 204", lines)
	}

	// 7. The message and its attempt, in the messages API. The attempt is
	// recorded just after the receiver answered.
	deadline = time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Data []struct {
				ID        string `json:"id"`
				EventID   string `json:"event_id"`
				EventType string `json:"event_type"`
				Status    string `json:"status"`
			}
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(mustCall(t, http.StatusOK, admin, http.MethodGet, appURL+"/messages", ""), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Data) != 1 || list.NextCursor != nil {
			t.Fatalf("the messages are %+v, want one", list)
		}
		if m := list.Data[0]; m.ID != answer.MessageID || m.EventID != eventID || m.EventType != "user.signed_up" {
			t.Fatalf("the message is %+v, want %s of %s (user.signed_up)", m, answer.MessageID, eventID)
		}
		if list.Data[0].Status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message is %q 10 s after the receiver got it, want delivered", list.Data[0].Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var msg struct {
		ID       string `json:"id"`
		EventID  string `json:"event_id"`
		Status   string `json:"status"`
		Attempts []struct {
			EndpointID     string  `json:"endpoint_id"`
			ResponseStatus *int    `json:"response_status"`
			Error          *string `json:"error"`
		} `json:"attempts"`
	}
	if err := json.Unmarshal(mustCall(t, http.StatusOK, admin, http.MethodGet, appURL+"/messages/"+answer.MessageID, ""), &msg); err != nil {
		t.Fatal(err)
	}
	if msg.EventID != eventID || msg.Status != "delivered" || len(msg.Attempts) != 1 {
		t.Fatalf("the message is %+v, want %s delivered with one attempt", msg, eventID)
	}
	if a := msg.Attempts[0]; a.EndpointID != endpoint.ID || a.ResponseStatus == nil || *a.ResponseStatus != http.StatusNoContent || a.Error != nil {
		t.Errorf("the attempt is %+v, want to %s, answered 204, without error", a, endpoint.ID)
	}

	// The same event again is a duplicate: the application has it.
	mustCall(t, http.StatusConflict, tok.Token, http.MethodPost, base+"/notifications", string(event))

	// The filter of "Filters", and the test of an event against it.
	mustCall(t, http.StatusOK, admin, http.MethodPut, appURL+"/filter",
		`{"include_types": ["invoice.*"], "exclude_types": ["invoice.draft"],
		  "expression": "event.data.amount > 100 && event.source == \"billing\""}`)
	tested := mustCall(t, http.StatusOK, admin, http.MethodPost, appURL+"/filter/test",
		`{"event": `+string(event)+`}`)
	if want := `{"allowed":false,"reason":"event type \"user.signed_up\" matches no include_types pattern","rule":"include_types"}`; strings.TrimSpace(string(tested)) != want {
		t.Errorf("filter/test answered %s, want %s", tested, want)
	}

	// The stats of "Stats": the event forwarded above, within
	// STATS_FLUSH_INTERVAL (10 s).
	deadline = time.Now().Add(15 * time.Second)
	for {
		var stats struct {
			Totals struct{ Forwarded, Duplicate int }
		}
		if err := json.Unmarshal(mustCall(t, http.StatusOK, admin, http.MethodGet,
			appURL+"/stats?granularity=hour", ""), &stats); err != nil {
			t.Fatal(err)
		}
		if stats.Totals.Forwarded == 1 && stats.Totals.Duplicate == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stats count %+v after 15 s, want 1 forwarded and 1 duplicate", stats.Totals)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The ingest token manages nothing.
	mustCall(t, http.StatusForbidden, tok.Token, http.MethodGet, base+"/api/v1/applications", "")
	for _, v := range []string{admin, tok.Token, secret.Secret} {
		if strings.Contains(r.out.String(), v) || strings.Contains(received.String(), v) {
			t.Error("a token's or secret's value reached gwook's or the receiver's output")
		}
	}
}

// startReceive runs `gwook receive --secret secret --port port` from the
// installation in dir, as the README does, and waits until it listens on
// addr. It returns the receiver's standard output, and stops it with
// SIGINT when the test ends.
func startReceive(t *testing.T, dir, secret, addr string, port int) *logbuf.Buffer {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "bin", "gwook"), "receive", "--secret", secret, "--port", strconv.Itoa(port))
	var out, errOut logbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := proc.WaitTCP(ctx, addr, nil); err != nil {
		t.Fatalf("gwook receive does not listen on %s: %v\n%s", addr, err, errOut.String())
	}
	return &out
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
