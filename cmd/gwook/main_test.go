package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runMainEnv, set in a child's environment, makes the test binary run main
// instead of the tests, so that a test sees gwook's real exit status.
const runMainEnv = "GWOOK_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// gwook runs main in a child process with args and only the environment
// env, and returns what it wrote and its exit status.
func gwook(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	// A command that should exit but serves instead is killed after a
	// minute, and writes no database into the source tree meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append([]string{runMainEnv + "=1", "DATA_DIR=" + t.TempDir()}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running gwook %q: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"-help"}, {"serve", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := gwook(t, nil, args...)
			if code != 0 || stdout != usage || stderr != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 with the usage on stdout only", code, stdout, stderr)
			}
		})
	}
}

func TestReplayHelp(t *testing.T) {
	for _, args := range [][]string{{"replay", "--help"}, {"replay", "-h"}, {"replay", "--limit", "3", "-help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := gwook(t, nil, args...)
			if code != 0 || stderr != "" {
				t.Errorf("exit %d, stderr %q; want exit 0 and nothing on stderr", code, stderr)
			}
			for _, want := range []string{"usage: gwook replay", "-subscription", "-dry-run"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout %q does not contain %q", stdout, want)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `gwook: unknown command "frobnicate"`},
		{[]string{"--port", "4000"}, `gwook: unknown command "--port"`},
		{[]string{"serve", "now"}, `gwook: serve takes no arguments, got ["now"]`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := gwook(t, nil, tc.args...)
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want exit 2 and nothing on stdout", code, stdout)
			}
			if want := tc.want + "\n\n" + usage; stderr != want {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        []string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"version", nil, []string{"version"}, 0, "gwook dev\n", ""},
		{"--version", nil, []string{"--version"}, 0, "gwook dev\n", ""},
		{"serve with Svix but no token", []string{"DELIVERY_BACKEND=svix"}, nil, 1, "", "SVIX_AUTH_TOKEN is required with DELIVERY_BACKEND=svix"},
		{"serve with a bad port", []string{"SVIX_AUTH_TOKEN=sk", "PUBSUB_VERIFICATION_TOKEN=t", "HTTP_SERVER_PORT=0"}, []string{"serve"}, 1, "", "HTTP_SERVER_PORT"},
		{"replay without a subscription", nil, []string{"replay"}, 1, "", "--subscription is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := gwook(t, tc.env, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if stdout != tc.wantStdout {
				t.Errorf("stdout %q, want %q", stdout, tc.wantStdout)
			}
			if tc.wantStderr == "" && stderr != "" || !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc.wantStderr)
			}
			if strings.Contains(stderr, usage) {
				t.Errorf("stderr holds gwook's usage after a failure that is not a usage error: %q", stderr)
			}
		})
	}
}

// TestUsageNamesWhatExists checks that what the usage points a reader at is
// there: every command it lists answers --help, and README.md has the
// Configuration section (.env.example is checked by TestEnvExample).
func TestUsageNamesWhatExists(t *testing.T) {
	for _, m := range regexp.MustCompile(`(?m)^  gwook \[?(\w+)`).FindAllStringSubmatch(usage, -1) {
		stdout, stderr, code := gwook(t, nil, m[1], "--help")
		if code != 0 || stdout == "" || stderr != "" {
			t.Errorf("gwook %s --help: exit %d, stdout %q, stderr %q", m[1], code, stdout, stderr)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^## Configuration$`).Match(readme) {
		t.Error("README.md has no Configuration section")
	}
}
