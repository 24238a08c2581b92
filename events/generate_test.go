package events_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// generateCommand returns the command of doc.go's go:generate line.
func generateCommand(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(doc)) {
		if rest, ok := strings.CutPrefix(line, "//go:generate "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("doc.go has no go:generate line")
	return nil
}

// TestGeneratedIsCurrent runs the generator as go generate does, into a
// temporary directory, and compares its output with events.gen.go byte for
// byte. It needs the go command and the module proxy, or oapi-codegen in
// the module cache.
func TestGeneratedIsCurrent(t *testing.T) {
	args := generateCommand(t)
	if len(args) < 3 || args[0] != "go" || args[1] != "run" || !strings.Contains(args[2], "@v") {
		t.Fatalf("go:generate line %q: want go run pkg@version", args)
	}
	// The command names the spec relative to this directory: make it
	// absolute, and run it where the config's output lands in the
	// temporary directory.
	spec, err := filepath.Abs(args[len(args)-1])
	if err != nil {
		t.Fatal(err)
	}
	args[len(args)-1] = spec
	dir := t.TempDir()
	config, err := os.ReadFile("oapi-codegen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oapi-codegen.yaml"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "events.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("events.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("events.gen.go is not what the generator makes of %s: run go generate ./events", spec)
	}
}
