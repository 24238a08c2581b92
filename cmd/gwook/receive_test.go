package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/webhook"
)

// receiveSecrets are two endpoint secrets, as during a rotation.
var receiveSecrets = []string{
	"whsec_" + base64.StdEncoding.EncodeToString([]byte("receive-test-secret-one-0123456")),
	"whsec_" + base64.StdEncoding.EncodeToString([]byte("receive-test-secret-two-0123456789abcdef")),
}

// startReceive runs gwook receive in a child process on a free loopback
// port with args, and returns the URL it listens on and a function that
// stops it with SIGINT and returns its stdout, stderr and exit status.
func startReceive(t *testing.T, args ...string) (url string, stop func() (stdout, stderr string, code int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"receive", "--port", "0", "--addr", "127.0.0.1"}, args...)...)
	cmd.Env = []string{runMainEnv + "=1"}
	var out bytes.Buffer
	cmd.Stdout = &out
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderr := bufio.NewReader(errPipe)
	banner, err := stderr.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("reading gwook receive's first line: %v (read %q)", err, banner)
	}
	m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+)/webhooks`).FindStringSubmatch(banner)
	if m == nil {
		cmd.Process.Kill()
		t.Fatalf("gwook receive's first line %q does not say where it listens", banner)
	}
	return m[1], func() (string, string, int) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(stderr)
		if err != nil {
			t.Fatal(err)
		}
		code := 0
		if err := cmd.Wait(); err != nil {
			exit, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatal(err)
			}
			code = exit.ExitCode()
		}
		return out.String(), banner + string(rest), code
	}
}

// postSigned posts body to url, signed with secrets unless there are
// none, and returns the answer's status.
func postSigned(t *testing.T, url string, secrets []string, msgID string, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) > 0 {
		if err := webhook.Headers(req.Header, webhook.UserAgent("test"), secrets, msgID, time.Now(), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestReceive(t *testing.T) {
	args := []string{"--secret", receiveSecrets[0], "--secret", receiveSecrets[1]}
	url, stop := startReceive(t, args...)
	event := `{"id":"evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C","type":"user.signed_up","data":{"plan":"pro"}}`
	// Signed with the second secret only, as after a rotation.
	if status := postSigned(t, url+"/webhooks", receiveSecrets[1:], "msg_2mP8a1QxL9vR7tY3nB5cD0eF", event); status != http.StatusNoContent {
		t.Errorf("a signed webhook answered %d, want 204", status)
	}
	other := []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-0123456789"))}
	if status := postSigned(t, url+"/other/path", other, "msg_other", "not json"); status != http.StatusUnauthorized {
		t.Errorf("a webhook signed with another secret answered %d, want 401", status)
	}
	if status := postSigned(t, url+"/webhooks", nil, "", `{"type":"a type"}`); status != http.StatusUnauthorized {
		t.Errorf("an unsigned request answered %d, want 401", status)
	}
	stdout, stderr, code := stop()
	if code != 0 {
		t.Errorf("exit %d after SIGINT, want 0 (stderr %q)", code, stderr)
	}

	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* webhook-id=msg_2mP8a1QxL9vR7tY3nB5cD0eF verified type=user\.signed_up id=evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C bytes=` + strconv.Itoa(len(event)) + ` answered=204$`),
		regexp.MustCompile(`^\S+ webhook-id=msg_other rejected="no matching signature: 1 v1 entries checked against 2 secrets" bytes=8 answered=401$`),
		regexp.MustCompile(`^\S+ webhook-id="" rejected="missing header: webhook-id, webhook-timestamp, webhook-signature" type="a type" bytes=17 answered=401$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("stdout has %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d:\n%s\ndoes not match\n%s", i+1, lines[i], re)
		}
	}
	checkNoSecrets(t, stdout+stderr)
}

func TestReceiveStatusAndVerbose(t *testing.T) {
	url, stop := startReceive(t, "--secret", receiveSecrets[0], "--status", "500", "--verbose")
	if status := postSigned(t, url+"/webhooks", receiveSecrets[:1], "msg_1", `{"id":"evt_1","type":"t"}`); status != http.StatusInternalServerError {
		t.Errorf("a signed webhook answered %d, want the --status 500", status)
	}
	stdout, stderr, code := stop()
	if code != 0 {
		t.Errorf("exit %d after SIGINT, want 0 (stderr %q)", code, stderr)
	}
	if !regexp.MustCompile(`^\S+ webhook-id=msg_1 verified type=t id=evt_1 bytes=25 answered=500
  \{
    "id": "evt_1",
    "type": "t"
  \}
$`).MatchString(stdout) {
		t.Errorf("stdout:\n%s", stdout)
	}
	checkNoSecrets(t, stdout+stderr)
}

// checkNoSecrets fails t when output holds one of receiveSecrets, whole
// or after its prefix.
func checkNoSecrets(t *testing.T, output string) {
	t.Helper()
	for _, secret := range receiveSecrets {
		if strings.Contains(output, strings.TrimPrefix(secret, "whsec_")) {
			t.Errorf("the output holds a secret:\n%s", output)
		}
	}
}

func TestReceiveCommandLineErrors(t *testing.T) {
	malformed := "whsec_" + base64.StdEncoding.EncodeToString([]byte("too-short"))
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"no secret", []string{"receive"}, 1, "receive: --secret is required"},
		{"malformed secret", []string{"receive", "--secret", receiveSecrets[0], "--secret", malformed}, 1, "malformed webhook secret: secret 2 of 2 holds 9 bytes"},
		{"bad status", []string{"receive", "--secret", receiveSecrets[0], "--status", "99"}, 1, "status 99"},
		{"bad port", []string{"receive", "--secret", receiveSecrets[0], "--port", "70000"}, 1, "--port 70000 is not a port"},
		{"an argument", []string{"receive", "--secret", receiveSecrets[0], "now"}, 2, `receive takes no arguments, got ["now"]`},
		{"unknown flag", []string{"receive", "--secrets", receiveSecrets[0]}, 1, "flag provided but not defined: -secrets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := gwook(t, nil, tc.args...)
			if code != tc.wantCode || stdout != "" || !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q on stderr", code, stdout, stderr, tc.wantCode, tc.wantStderr)
			}
			if strings.Contains(stderr, strings.TrimPrefix(malformed, "whsec_")) {
				t.Errorf("stderr holds the secret: %q", stderr)
			}
			checkNoSecrets(t, stderr)
		})
	}
}
