package infra_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"sigs.k8s.io/yaml"
)

// workflowPath is the CI workflow, relative to this package.
var workflowPath = filepath.Join("..", ".github", "workflows", "ci.yml")

// workflow is the part of a GitHub Actions workflow the tests read.
type workflow struct {
	// On is the trigger. YAML 1.1 reads the key on as true, so it may
	// arrive under either name.
	On          map[string]any    `json:"on"`
	OnTrue      map[string]any    `json:"true"`
	Permissions map[string]string `json:"permissions"`
	Jobs        map[string]*job   `json:"jobs"`
	raw         string
}

type job struct {
	If          string            `json:"if"`
	Permissions map[string]string `json:"permissions"`
	Env         map[string]string `json:"env"`
	Steps       []step            `json:"steps"`
}

type step struct {
	ID   string            `json:"id"`
	Name string            `json:"name"`
	Uses string            `json:"uses"`
	Run  string            `json:"run"`
	With map[string]string `json:"with"`
	Env  map[string]string `json:"env"`
}

func loadWorkflow(t *testing.T) *workflow {
	t.Helper()
	data := readFile(t, workflowPath)
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatalf("%s: %v", workflowPath, err)
	}
	if w.On == nil {
		w.On = w.OnTrue
	}
	if w.On == nil || len(w.Jobs) == 0 {
		t.Fatalf("%s: no on: or no jobs", workflowPath)
	}
	w.raw = string(data)
	return &w
}

// publishJob returns the one job that pushes an image.
func (w *workflow) publishJob(t *testing.T) *job {
	t.Helper()
	var found []string
	for name, j := range w.Jobs {
		for _, s := range j.Steps {
			if action(s.Uses) == "docker/build-push-action" && s.With["push"] == "true" {
				found = append(found, name)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("jobs that push an image: %v, want one", found)
	}
	return w.Jobs[found[0]]
}

// step returns the job's step that uses the action, or fails.
func (j *job) step(t *testing.T, name string) (int, step) {
	t.Helper()
	for i, s := range j.Steps {
		if action(s.Uses) == name {
			return i, s
		}
	}
	t.Fatalf("the publish job does not use %s", name)
	return 0, step{}
}

// action is uses: without its version.
func action(uses string) string {
	name, _, _ := strings.Cut(uses, "@")
	return name
}

var varsRE = regexp.MustCompile(`\bvars\.([A-Za-z_][A-Za-z0-9_]*)`)

// repositoryVariables returns the names of the vars.X the workflow reads.
func (w *workflow) repositoryVariables() map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(w.raw, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range varsRE.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
	}
	return out
}

// TestWorkflowPublishesToArtifactRegistry checks the image job: it logs in
// to Artifact Registry with a token from Workload Identity Federation, no
// key, and pushes REGION-docker.pkg.dev/PROJECT/REPOSITORY/gwook.
func TestWorkflowPublishesToArtifactRegistry(t *testing.T) {
	w := loadWorkflow(t)
	if strings.Contains(w.raw, "credentials_json") {
		t.Error("the workflow uses credentials_json: a long-lived service account key; use workload_identity_provider")
	}
	if strings.Contains(strings.ToLower(w.raw), "ghcr.io") {
		t.Error("the workflow still names ghcr.io")
	}
	j := w.publishJob(t)

	const registry = "${{ vars.GAR_LOCATION }}-docker.pkg.dev"
	if image := j.Env["IMAGE"]; !strings.HasPrefix(image, registry+"/") || !strings.HasSuffix(image, "/gwook") {
		t.Errorf("publish job env IMAGE = %q, want %s/PROJECT/REPOSITORY/gwook", image, registry)
	}
	authAt, auth := j.step(t, "google-github-actions/auth")
	for _, key := range []string{"workload_identity_provider", "service_account"} {
		if v := auth.With[key]; !strings.HasPrefix(v, "${{ vars.") {
			t.Errorf("auth %s = %q, want a repository variable", key, v)
		}
	}
	for key, v := range auth.With {
		if strings.Contains(v, "secrets.") {
			t.Errorf("auth %s reads a secret: keyless federation needs none", key)
		}
	}
	if auth.ID == "" || auth.With["token_format"] != "access_token" {
		t.Error("the auth step has no id or does not ask for an access token for docker login")
	}
	loginAt, login := j.step(t, "docker/login-action")
	if login.With["registry"] != registry || login.With["username"] != "oauth2accesstoken" ||
		login.With["password"] != "${{ steps."+auth.ID+".outputs.access_token }}" {
		t.Errorf("docker login %v, want %s as oauth2accesstoken with the auth step's access token", login.With, registry)
	}
	_, meta := j.step(t, "docker/metadata-action")
	if meta.With["images"] != "${{ env.IMAGE }}" {
		t.Errorf("metadata-action images = %q, want ${{ env.IMAGE }}", meta.With["images"])
	}
	pushAt, push := j.step(t, "docker/build-push-action")
	if push.With["tags"] != "${{ steps."+meta.ID+".outputs.tags }}" {
		t.Errorf("build-push-action tags = %q, want the metadata step's tags", push.With["tags"])
	}
	if push.With["context"] != "." || !strings.HasPrefix(push.With["build-args"], "VERSION=") {
		t.Errorf("build-push-action builds %v, want the Dockerfile at the root with VERSION", push.With)
	}
	if authAt >= loginAt || loginAt >= pushAt {
		t.Error("the steps are not auth, then login, then build and push")
	}
}

// TestWorkflowPermissions checks that only the publish job may ask for an
// OIDC token and that nothing may write packages.
func TestWorkflowPermissions(t *testing.T) {
	w := loadWorkflow(t)
	if w.Permissions["id-token"] == "write" || w.Permissions["packages"] == "write" {
		t.Errorf("top-level permissions %v: id-token and packages must not be written by every job", w.Permissions)
	}
	publish := w.publishJob(t)
	if publish.Permissions["id-token"] != "write" {
		t.Errorf("publish job permissions %v, want id-token: write", publish.Permissions)
	}
	for name, j := range w.Jobs {
		if j != publish && j.Permissions["id-token"] == "write" {
			t.Errorf("job %s may ask for an OIDC token", name)
		}
	}
}

var pinnedRE = regexp.MustCompile(`^[^@\s]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$`)

// TestWorkflowActionsArePinned checks that every action is pinned to a
// release (vX.Y.Z) or a commit, not a moving major tag or branch.
func TestWorkflowActionsArePinned(t *testing.T) {
	w := loadWorkflow(t)
	for name, j := range w.Jobs {
		for _, s := range j.Steps {
			if s.Uses != "" && !pinnedRE.MatchString(s.Uses) {
				t.Errorf("job %s uses %s: pin a release (vX.Y.Z) or a commit", name, s.Uses)
			}
		}
	}
}

// TestWorkflowPublishesOnlyFromMainAndTags evaluates the publish job's if:
// for the events that run the workflow: a push to main or of a tag
// publishes; a pull request, a push to another branch, a manual run do not.
func TestWorkflowPublishesOnlyFromMainAndTags(t *testing.T) {
	w := loadWorkflow(t)
	push, ok := w.On["push"].(map[string]any)
	if !ok {
		t.Fatal("the workflow does not run on push")
	}
	if branches, _ := push["branches"].([]any); !slices.Equal(branches, []any{"main"}) {
		t.Errorf("on.push.branches = %v, want [main]", branches)
	}
	if _, ok := push["tags"]; !ok {
		t.Error("on.push has no tags: a version tag does not publish")
	}
	cond := w.publishJob(t).If
	if cond == "" {
		t.Fatal("the publish job has no if: it runs for pull requests too")
	}
	for _, c := range []struct {
		event, ref string
		want       bool
	}{
		{"push", "refs/heads/main", true},
		{"push", "refs/tags/v1.4.0", true},
		{"push", "refs/heads/feature", false},
		{"pull_request", "refs/pull/7/merge", false},
		{"pull_request", "refs/heads/main", false},
		{"workflow_dispatch", "refs/heads/main", false},
		{"schedule", "refs/heads/main", false},
	} {
		got, err := evalCondition(cond, map[string]string{"github.event_name": c.event, "github.ref": c.ref})
		if err != nil {
			t.Fatalf("if: %s: %v", cond, err)
		}
		if got != c.want {
			t.Errorf("%s of %s: publishes %v, want %v", c.event, c.ref, got, c.want)
		}
	}
	if _, err := evalCondition("github.event_name == 'push' && startsWith(github.ref, 'refs/tags/')", map[string]string{"github.event_name": "push"}); err == nil {
		t.Error("the evaluator accepts an unknown context value")
	}
}

// evalCondition evaluates a GitHub Actions if: expression made of context
// values, string literals, ==, !=, !, &&, ||, parentheses and
// startsWith(a, b), with the context values given. The result is its
// truthiness.
func evalCondition(expr string, ctx map[string]string) (bool, error) {
	expr = strings.TrimSpace(expr)
	expr = strings.TrimSuffix(strings.TrimPrefix(expr, "${{"), "}}")
	p := &condParser{ctx: ctx}
	if err := p.lex(expr); err != nil {
		return false, err
	}
	v, err := p.or()
	if err != nil {
		return false, err
	}
	if p.pos != len(p.toks) {
		return false, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return truthy(v), nil
}

type condParser struct {
	ctx  map[string]string
	toks []string
	pos  int
}

func (p *condParser) lex(s string) error {
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return fmt.Errorf("unterminated string")
			}
			p.toks = append(p.toks, s[i:i+j+2])
			i += j + 2
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			p.toks = append(p.toks, s[i:i+2])
			i += 2
		case strings.ContainsRune("()!,", c):
			p.toks = append(p.toks, string(c))
			i++
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || s[j] == '_' || s[j] == '.' || s[j] == '-') {
				j++
			}
			p.toks = append(p.toks, s[i:j])
			i = j
		default:
			return fmt.Errorf("unexpected %q", c)
		}
	}
	return nil
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) next() string { t := p.peek(); p.pos++; return t }

func (p *condParser) or() (any, error) {
	l, err := p.and()
	for err == nil && p.peek() == "||" {
		p.next()
		var r any
		if r, err = p.and(); err == nil {
			l = truthy(l) || truthy(r)
		}
	}
	return l, err
}

func (p *condParser) and() (any, error) {
	l, err := p.cmp()
	for err == nil && p.peek() == "&&" {
		p.next()
		var r any
		if r, err = p.cmp(); err == nil {
			l = truthy(l) && truthy(r)
		}
	}
	return l, err
}

func (p *condParser) cmp() (any, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	if op := p.peek(); op == "==" || op == "!=" {
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		eq := strings.EqualFold(fmt.Sprint(l), fmt.Sprint(r))
		return eq == (op == "=="), nil
	}
	return l, nil
}

func (p *condParser) unary() (any, error) {
	switch tok := p.next(); {
	case tok == "!":
		v, err := p.unary()
		return !truthy(v), err
	case tok == "(":
		v, err := p.or()
		if err == nil && p.next() != ")" {
			err = fmt.Errorf("missing )")
		}
		return v, err
	case strings.HasPrefix(tok, "'"):
		return strings.Trim(tok, "'"), nil
	case tok == "true" || tok == "false":
		return tok == "true", nil
	case strings.EqualFold(tok, "startsWith"):
		if p.next() != "(" {
			return nil, fmt.Errorf("startsWith without (")
		}
		a, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next() != "," {
			return nil, fmt.Errorf("startsWith needs two arguments")
		}
		b, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return strings.HasPrefix(strings.ToLower(fmt.Sprint(a)), strings.ToLower(fmt.Sprint(b))), nil
	case tok == "":
		return nil, fmt.Errorf("unexpected end")
	default:
		v, ok := p.ctx[tok]
		if !ok {
			return nil, fmt.Errorf("unknown context value %s", tok)
		}
		return v, nil
	}
}

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v != ""
	}
	return v != nil
}
