package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/config"
)

// libraryVariables are read by libraries gwook configures, not through
// config.Config; .env.example lists them too.
var libraryVariables = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "PUBSUB_EMULATOR_HOST"}

// envExampleLine is a variable line of .env.example: NAME=value, or
// "# NAME=default" for a variable left at its default.
var envExampleLine = regexp.MustCompile(`^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$`)

// TestEnvExample checks that .env.example lists every variable of
// config.Config once, with the default of its env tag and a comment line
// above it, and no variable gwook does not read.
func TestEnvExample(t *testing.T) {
	defaults := config.Variables()
	if len(defaults) == 0 {
		t.Fatal("config.Config has no env tags")
	}
	for _, name := range libraryVariables {
		defaults[name] = ""
	}

	b, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	listed := map[string]bool{}
	for i, line := range lines {
		m := envExampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, value := m[1], m[2]
		def, ok := defaults[name]
		switch {
		case listed[name]:
			t.Errorf(".env.example:%d: %s is listed twice", i+1, name)
		case !ok:
			t.Errorf(".env.example:%d: gwook does not read %s", i+1, name)
		case value != def:
			t.Errorf(".env.example:%d: %s=%s, but its default is %q", i+1, name, value, def)
		}
		listed[name] = true
		if i == 0 || !strings.HasPrefix(lines[i-1], "# ") || envExampleLine.MatchString(lines[i-1]) {
			t.Errorf(".env.example:%d: %s has no comment line above it", i+1, name)
		}
	}
	for name := range defaults {
		if !listed[name] {
			t.Errorf(".env.example does not list %s", name)
		}
	}

	gitignore, err := os.ReadFile("../../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(gitignore)), "/.env") {
		t.Error(".gitignore does not ignore /.env")
	}
}
