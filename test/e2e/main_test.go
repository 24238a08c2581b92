package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// gwookBin is the gwook command, built once for the package by TestMain, so
// that replay is tested as operators run it.
var gwookBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gwook-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gwookBin = filepath.Join(dir, "gwook")
	build := exec.Command("go", "build", "-o", gwookBin, "github.com/gwook/gwook/cmd/gwook")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the gwook command: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
