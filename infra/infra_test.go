package infra_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/config"
)

// Directories of the files under test, relative to this package.
const (
	k8sDir           = "k8s"
	terraformDir     = "terraform"
	observabilityDir = "observability"
)

// readByBinary reports whether Gwook reads the environment variable name:
// an env tag of config.Config, or one read by a library it configures
// (OpenTelemetry, Sentry, Google's Pub/Sub client).
func readByBinary(vars map[string]string, name string) bool {
	if _, ok := vars[name]; ok {
		return true
	}
	return strings.HasPrefix(name, "OTEL_") || strings.HasPrefix(name, "SENTRY_") || name == "PUBSUB_EMULATOR_HOST"
}

// setting returns the value Gwook runs with for name: the ConfigMap's, or
// else the default in config.Config.
func setting(t *testing.T, configMap map[string]string, name string) string {
	t.Helper()
	if v, ok := configMap[name]; ok {
		return v
	}
	def, ok := config.Variables()[name]
	if !ok {
		t.Fatalf("%s is not a variable of config.Config", name)
	}
	return def
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var headingRE = regexp.MustCompile(`^#{1,6}\s+(.+?)\s*$`)

// anchors returns the GitHub anchors of the Markdown headings in path,
// outside fenced code blocks.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	fenced := false
	for line := range strings.Lines(string(readFile(t, path))) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil && !fenced {
			out[slug(m[1])] = true
		}
	}
	return out
}

// slug is GitHub's anchor for a heading: lower case, spaces to hyphens,
// punctuation other than hyphens and underscores dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.ReplaceAll(heading, "`", "")) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}
