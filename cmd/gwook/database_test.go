package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/pgtest"
)

func TestMigrateCommand(t *testing.T) {
	for _, env := range [][]string{{"DATA_DIR=" + t.TempDir()}, {"DATABASE_URL=" + pgtest.NewDatabase(t)}} {
		stdout, stderr, code := gwook(t, env, "migrate")
		if code != 0 || !strings.HasPrefix(stdout, "applied ") {
			t.Errorf("%s: first migrate: exit %d, stdout %q, stderr %q", env, code, stdout, stderr)
		}
		stdout, stderr, code = gwook(t, env, "migrate")
		if code != 0 || !strings.HasPrefix(stdout, "the schema is current") {
			t.Errorf("%s: second migrate: exit %d, stdout %q, stderr %q", env, code, stdout, stderr)
		}
	}
	if _, stderr, code := gwook(t, []string{"DATABASE_URL=mysql://x"}, "migrate"); code != 1 || !strings.Contains(stderr, "DATABASE_URL") {
		t.Errorf("a bad DATABASE_URL: exit %d, stderr %q", code, stderr)
	}
}

var tokenLine = regexp.MustCompile(`^gwk_[A-Za-z0-9]{43}\n$`)

func TestTokenCreate(t *testing.T) {
	dir := t.TempDir()
	env := []string{"DATA_DIR=" + dir}
	stdout, stderr, code := gwook(t, env, "token", "create", "--name", "bootstrap", "--scope", "admin", "--expires", "720h")
	if code != 0 || !tokenLine.MatchString(stdout) || !strings.Contains(stderr, "tok_") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want one token on stdout and its id on stderr", code, stdout, stderr)
	}
	st, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok, err := st.TokenByHash(context.Background(), store.HashToken(strings.TrimSpace(stdout)), time.Now())
	if err != nil || tok.Name != "bootstrap" || !slices.Equal(tok.Scopes, []string{"admin"}) || tok.ExpiresAt == nil ||
		time.Until(*tok.ExpiresAt) < 719*time.Hour {
		t.Errorf("stored %+v, %v; want the admin token expiring in 720h", tok, err)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token"}, 2, "create"},
		{[]string{"token", "create", "--scope", "admin"}, 1, "--name"},
		{[]string{"token", "create", "--name", "x"}, 1, "--scope"},
		{[]string{"token", "create", "--name", "x", "--scope", "root"}, 1, "unknown scope"},
		{[]string{"token", "create", "--name", "x", "--scope", "manage"}, 1, "--application"},
		{[]string{"token", "create", "--name", "x", "--scope", "read,manage", "--application", "nobody"}, 1, "no application"},
		{[]string{"token", "create", "--name", "x", "--scope", "admin", "--expires", "-1h"}, 1, "--expires"},
	} {
		stdout, stderr, code := gwook(t, env, c.args...)
		if code != c.code || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("gwook %q: exit %d, stdout %q, stderr %q; want exit %d naming %s", c.args, code, stdout, stderr, c.code, c.want)
		}
	}
}
