package infra_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/gwook/gwook/internal/config"
)

// terraform is the parsed configuration in infra/terraform.
type terraform struct {
	blocks    []*hclsyntax.Block // top-level blocks of every file
	variables map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
	resources map[string]*hclsyntax.Block // by "type.name"
	// vars evaluates expressions that use only literals and variables,
	// with every variable at its default.
	vars *hcl.EvalContext
}

// loadTerraform parses every .tf file with HCL's native syntax parser and
// fails on any diagnostic.
func loadTerraform(t *testing.T) *terraform {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(terraformDir, "*.tf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"main.tf", "variables.tf", "outputs.tf", "versions.tf"} {
		if !slices.Contains(paths, filepath.Join(terraformDir, want)) {
			t.Errorf("no %s in %s", want, terraformDir)
		}
	}
	p := hclparse.NewParser()
	tf := &terraform{variables: map[string]*hclsyntax.Block{}, outputs: map[string]*hclsyntax.Block{}, resources: map[string]*hclsyntax.Block{}}
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if len(diags) > 0 {
			t.Errorf("%s: %s", path, diags.Error())
			continue
		}
		tf.blocks = append(tf.blocks, f.Body.(*hclsyntax.Body).Blocks...)
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, b := range tf.blocks {
		switch b.Type {
		case "variable":
			tf.variables[b.Labels[0]] = b
		case "output":
			tf.outputs[b.Labels[0]] = b
		case "resource":
			tf.resources[b.Labels[0]+"."+b.Labels[1]] = b
		}
	}
	defaults := map[string]cty.Value{}
	for name, b := range tf.variables {
		if a, ok := b.Body.Attributes["default"]; ok {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("variable %s: default: %s", name, diags.Error())
			}
			defaults[name] = v
		}
	}
	tf.vars = &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(defaults)}}
	return tf
}

// resource returns the resource block named "type.name".
func (tf *terraform) resource(t *testing.T, name string) *hclsyntax.Block {
	t.Helper()
	b, ok := tf.resources[name]
	if !ok {
		t.Fatalf("no resource %s", name)
	}
	return b
}

// references returns the "root.attr" references (var.x, local.y,
// google_pubsub_topic.dead_letter) that the expression makes.
func references(expr hcl.Expression) []string {
	var out []string
	for _, tr := range expr.Variables() {
		ref := tr.RootName()
		if len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				ref += "." + a.Name
			}
		}
		out = append(out, ref)
	}
	return out
}

// attr returns the attribute name of b, or fails.
func attr(t *testing.T, b *hclsyntax.Block, name string) *hclsyntax.Attribute {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("%s %s has no %s", b.Type, strings.Join(b.Labels, "."), name)
	}
	return a
}

// child returns the nested block of the given type, or fails.
func child(t *testing.T, b *hclsyntax.Block, blockType string) *hclsyntax.Block {
	t.Helper()
	for _, c := range b.Body.Blocks {
		if c.Type == blockType {
			return c
		}
	}
	t.Fatalf("%s %s has no %s block", b.Type, strings.Join(b.Labels, "."), blockType)
	return nil
}

// eval evaluates an expression of literals and variables at their defaults
// into a Go value.
func (tf *terraform) eval(t *testing.T, a *hclsyntax.Attribute, into any) {
	t.Helper()
	v, diags := a.Expr.Value(tf.vars)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", a.Name, diags.Error())
	}
	if err := gocty.FromCtyValue(v, into); err != nil {
		t.Fatalf("%s: %v", a.Name, err)
	}
}

func TestTerraformParses(t *testing.T) {
	tf := loadTerraform(t)
	if len(tf.resources) == 0 {
		t.Fatal("no resources")
	}
	var project bool
	for _, b := range tf.blocks {
		project = project || (b.Type == "data" && b.Labels[0] == "google_project")
	}
	if !project {
		t.Error(`no data "google_project": the Pub/Sub service agent's address needs the project number`)
	}
}

func TestTerraformVariablesAndOutputsAreDocumented(t *testing.T) {
	tf := loadTerraform(t)
	readme := string(readFile(t, "README.md"))
	for name, b := range tf.variables {
		if d := describe(t, b); d == "" {
			t.Errorf("variable %s has no description", name)
		}
		if _, ok := b.Body.Attributes["type"]; !ok {
			t.Errorf("variable %s has no type", name)
		}
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("variable %s is not in infra/README.md", name)
		}
	}
	for name, b := range tf.outputs {
		if d := describe(t, b); d == "" {
			t.Errorf("output %s has no description", name)
		}
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("output %s is not in infra/README.md", name)
		}
	}
}

// describe returns the block's description attribute, a literal string.
func describe(t *testing.T, b *hclsyntax.Block) string {
	t.Helper()
	a, ok := b.Body.Attributes["description"]
	if !ok {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String {
		t.Errorf("%s %s: description is not a literal string", b.Type, b.Labels[0])
		return ""
	}
	return strings.TrimSpace(v.AsString())
}

// TestTerraformVariablesAreUsed checks that every var.x is declared and
// every declared variable is used.
func TestTerraformVariablesAreUsed(t *testing.T) {
	tf := loadTerraform(t)
	used := map[string]bool{}
	for _, b := range tf.blocks {
		hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
			if e, ok := n.(hclsyntax.Expression); ok {
				for _, ref := range references(e) {
					if name, ok := strings.CutPrefix(ref, "var."); ok {
						used[name] = true
					}
				}
			}
			return nil
		})
	}
	for name := range used {
		if _, ok := tf.variables[name]; !ok {
			t.Errorf("var.%s is used but not declared", name)
		}
	}
	for name := range tf.variables {
		if !used[name] {
			t.Errorf("variable %s is declared but never used", name)
		}
	}
}

// TestTerraformGrants checks the IAM each part needs: Gwook to publish to
// and read its dead-letter topic and to replay; Pub/Sub's service agent to
// sign the push OIDC tokens and to carry out the push subscription's
// dead-letter policy.
func TestTerraformGrants(t *testing.T) {
	tf := loadTerraform(t)
	const agent = "local.pubsub_service_agent"
	want := []struct {
		resourceType, role, target, member string
	}{
		{"google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.dead_letter", "google_service_account.gwook"},
		{"google_pubsub_topic_iam_member", "roles/pubsub.viewer", "google_pubsub_topic.dead_letter", "google_service_account.gwook"},
		{"google_pubsub_subscription_iam_member", "roles/pubsub.subscriber", "google_pubsub_subscription.replay", "google_service_account.gwook"},
		{"google_service_account_iam_member", "roles/iam.serviceAccountTokenCreator", "google_service_account.push", agent},
		{"google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.undeliverable", agent},
		{"google_pubsub_subscription_iam_member", "roles/pubsub.subscriber", "google_pubsub_subscription.push", agent},
	}
	targetAttr := map[string]string{
		"google_pubsub_topic_iam_member":        "topic",
		"google_pubsub_subscription_iam_member": "subscription",
		"google_service_account_iam_member":     "service_account_id",
	}
	type grant struct{ resourceType, role, target, member string }
	var have []grant
	for _, b := range tf.blocks {
		if b.Type != "resource" || targetAttr[b.Labels[0]] == "" {
			continue
		}
		var role string
		tf.eval(t, attr(t, b, "role"), &role)
		for _, target := range references(attr(t, b, targetAttr[b.Labels[0]]).Expr) {
			for _, member := range references(attr(t, b, "member").Expr) {
				have = append(have, grant{b.Labels[0], role, target, member})
			}
		}
	}
	for _, w := range want {
		if !slices.Contains(have, grant(w)) {
			t.Errorf("no %s granting %s on %s to %s", w.resourceType, w.role, w.target, w.member)
		}
	}
	agentLocal := false
	for _, b := range tf.blocks {
		if a, ok := b.Body.Attributes["pubsub_service_agent"]; ok && b.Type == "locals" {
			agentLocal = slices.Contains(references(a.Expr), "data.google_project")
		}
	}
	if !agentLocal {
		t.Error("local.pubsub_service_agent is not built from data.google_project's number")
	}
}

// TestPushSubscription checks the push subscription against what Gwook
// needs: OIDC tokens, an ack deadline above Gwook's longest answer, backoff
// and a dead-letter policy of its own.
func TestPushSubscription(t *testing.T) {
	tf := loadTerraform(t)
	m := loadManifests(t)
	push := tf.resource(t, "google_pubsub_subscription.push")

	// Gwook's request budget as the pods run it (ConfigMap and Secret), and
	// with its own defaults in the largest configuration (Redis and a
	// dead-letter topic), both computed by internal/config.
	var ack int
	tf.eval(t, attr(t, push, "ack_deadline_seconds"), &ack)
	for name, env := range map[string]map[string]string{
		"the ConfigMap and Secret": m.env(),
		"Gwook's defaults with Redis and a dead-letter topic": {
			"SVIX_AUTH_TOKEN": "sk", "PUBSUB_VERIFICATION_TOKEN": "t",
			"REDIS_URL": "redis://redis:6379/0", "DEAD_LETTER_TOPIC": "projects/p/topics/d",
		},
	} {
		cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if budget := cfg.RequestBudget(); time.Duration(ack)*time.Second <= budget {
			t.Errorf("push ack_deadline_seconds = %d, want above Gwook's request budget with %s (%s)", ack, name, budget)
		}
	}

	pc := child(t, push, "push_config")
	oidc := child(t, pc, "oidc_token")
	if refs := references(attr(t, oidc, "service_account_email").Expr); !slices.Contains(refs, "google_service_account.push") {
		t.Errorf("oidc_token.service_account_email = %v, want the push service account", refs)
	}
	if refs := references(attr(t, oidc, "audience").Expr); !slices.Contains(refs, "local.push_audience") {
		t.Errorf("oidc_token.audience = %v, want local.push_audience (output push_audience)", refs)
	}

	rp := child(t, push, "retry_policy")
	var lo, hi string
	tf.eval(t, attr(t, rp, "minimum_backoff"), &lo)
	tf.eval(t, attr(t, rp, "maximum_backoff"), &hi)
	if parseSeconds(t, lo) >= parseSeconds(t, hi) {
		t.Errorf("retry_policy: minimum_backoff %s not below maximum_backoff %s", lo, hi)
	}

	dl := child(t, push, "dead_letter_policy")
	if refs := references(attr(t, dl, "dead_letter_topic").Expr); !slices.Contains(refs, "google_pubsub_topic.undeliverable") {
		t.Errorf("dead_letter_policy.dead_letter_topic = %v, want the undeliverable topic", refs)
	}
	var attempts int
	tf.eval(t, attr(t, dl, "max_delivery_attempts"), &attempts)
	if attempts < 5 || attempts > 100 {
		t.Errorf("max_delivery_attempts = %d, Pub/Sub allows 5 to 100", attempts)
	}
}

// TestEventarcTrigger checks the optional Eventarc trigger: Pub/Sub
// messages of the source topic to Gwook's /notifications on Cloud Run, as
// the push account that Gwook's PUBSUB_PUSH_SERVICE_ACCOUNT names, which may
// invoke the service; and that the trigger and the push subscription
// exclude each other, so no event arrives twice.
func TestEventarcTrigger(t *testing.T) {
	tf := loadTerraform(t)
	trigger := tf.resource(t, "google_eventarc_trigger.gwook")
	push := tf.resource(t, "google_pubsub_subscription.push")
	invoker := tf.resource(t, "google_cloud_run_v2_service_iam_member.eventarc_invoker")
	for _, b := range []*hclsyntax.Block{trigger, push, invoker} {
		if refs := references(attr(t, b, "count").Expr); !slices.Contains(refs, "local.eventarc") {
			t.Errorf("%s count = %v, want it decided by local.eventarc", strings.Join(b.Labels, "."), refs)
		}
	}
	var eventarcLocal bool
	for _, b := range tf.blocks {
		if a, ok := b.Body.Attributes["eventarc"]; ok && b.Type == "locals" {
			eventarcLocal = slices.Contains(references(a.Expr), "var.eventarc_run_service")
		}
	}
	if !eventarcLocal {
		t.Error("local.eventarc is not decided by var.eventarc_run_service")
	}
	var withEventarc, withoutEventarc bool
	for _, a := range []struct {
		expr *hclsyntax.Attribute
		into *bool
	}{{attr(t, trigger, "count"), &withEventarc}, {attr(t, push, "count"), &withoutEventarc}} {
		// Both counts are conditionals on local.eventarc: one is 1 when the
		// other is 0.
		cond, ok := a.expr.Expr.(*hclsyntax.ConditionalExpr)
		if !ok {
			t.Fatalf("%s is not a conditional", a.expr.Name)
		}
		var n int
		v, diags := cond.TrueResult.Value(nil)
		if diags.HasErrors() || gocty.FromCtyValue(v, &n) != nil {
			t.Fatalf("%s: %s", a.expr.Name, diags.Error())
		}
		*a.into = n == 1
	}
	if withEventarc == withoutEventarc {
		t.Error("the trigger and the push subscription are not exclusive")
	}

	var attribute, eventType, path string
	criteria := child(t, trigger, "matching_criteria")
	tf.eval(t, attr(t, criteria, "attribute"), &attribute)
	tf.eval(t, attr(t, criteria, "value"), &eventType)
	if attribute != "type" || eventType != "google.cloud.pubsub.topic.v1.messagePublished" {
		t.Errorf("matching_criteria %s = %s, want type = google.cloud.pubsub.topic.v1.messagePublished", attribute, eventType)
	}
	run := child(t, child(t, trigger, "destination"), "cloud_run_service")
	tf.eval(t, attr(t, run, "path"), &path)
	if path != "/notifications" {
		t.Errorf("destination path %q, want /notifications", path)
	}
	if refs := references(attr(t, run, "service").Expr); !slices.Contains(refs, "var.eventarc_run_service") {
		t.Errorf("destination service = %v, want var.eventarc_run_service", refs)
	}
	if refs := references(attr(t, child(t, child(t, trigger, "transport"), "pubsub"), "topic").Expr); !slices.Contains(refs, "google_pubsub_topic.source") {
		t.Errorf("transport topic = %v, want the source topic", refs)
	}
	if refs := references(attr(t, trigger, "service_account").Expr); !slices.Contains(refs, "google_service_account.push") {
		t.Errorf("service_account = %v, want the push service account (PUBSUB_PUSH_SERVICE_ACCOUNT)", refs)
	}
	var role string
	tf.eval(t, attr(t, invoker, "role"), &role)
	if refs := references(attr(t, invoker, "member").Expr); role != "roles/run.invoker" || !slices.Contains(refs, "google_service_account.push") {
		t.Errorf("invoker grants %s to %v, want roles/run.invoker to the push service account", role, refs)
	}
}

// TestReplaySubscription checks the dead-letter pull subscription gwook
// replay reads, and that Gwook's topic is not the push subscription's.
func TestReplaySubscription(t *testing.T) {
	tf := loadTerraform(t)
	replay := tf.resource(t, "google_pubsub_subscription.replay")
	if refs := references(attr(t, replay, "topic").Expr); !slices.Contains(refs, "google_pubsub_topic.dead_letter") {
		t.Errorf("the replay subscription reads %v, want Gwook's dead-letter topic", refs)
	}
	var ack int
	tf.eval(t, attr(t, replay, "ack_deadline_seconds"), &ack)
	if ack != 60 {
		t.Errorf("replay ack_deadline_seconds = %d, want 60", ack)
	}
	var retention string
	tf.eval(t, attr(t, replay, "message_retention_duration"), &retention)
	if got := parseSeconds(t, retention); got != 7*24*time.Hour {
		t.Errorf("replay message_retention_duration = %s, want 7 days", got)
	}
	var ttl string
	tf.eval(t, attr(t, child(t, replay, "expiration_policy"), "ttl"), &ttl)
	if ttl != "" {
		t.Errorf("replay expiration_policy.ttl = %q, want \"\" (never expire)", ttl)
	}

	var deadLetter, undeliverable string
	tf.eval(t, attr(t, tf.resource(t, "google_pubsub_topic.dead_letter"), "name"), &deadLetter)
	tf.eval(t, attr(t, tf.resource(t, "google_pubsub_topic.undeliverable"), "name"), &undeliverable)
	if deadLetter == undeliverable {
		t.Errorf("Gwook's dead-letter topic and the push subscription's are both %q", deadLetter)
	}
}

// TestTerraformMatchesManifests checks the names the two halves share:
// Gwook's settings in output gwook_env, its Google service account in the
// Workload Identity annotation, and the Kubernetes service account.
func TestTerraformMatchesManifests(t *testing.T) {
	tf := loadTerraform(t)
	m := loadManifests(t)
	vars := config.Variables()

	out, ok := tf.outputs["gwook_env"]
	if !ok {
		t.Fatal("no output gwook_env")
	}
	obj, ok := attr(t, out, "value").Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("output gwook_env is not an object")
	}
	for _, item := range obj.Items {
		key := hcl.ExprAsKeyword(item.KeyExpr)
		if _, ok := vars[key]; !ok {
			t.Errorf("output gwook_env: %s is not a variable of config.Config", key)
		}
		if _, ok := m.configMap.Data[key]; !ok {
			t.Errorf("output gwook_env: %s is not in the ConfigMap", key)
		}
	}

	var account, namespaceSA string
	tf.eval(t, attr(t, tf.variables["gwook_service_account_id"], "default"), &account)
	tf.eval(t, attr(t, tf.variables["kubernetes_service_account"], "default"), &namespaceSA)
	email := m.serviceAccount.Annotations["iam.gke.io/gcp-service-account"]
	if !strings.HasPrefix(email, account+"@") || !strings.HasSuffix(email, ".iam.gserviceaccount.com") {
		t.Errorf("ServiceAccount annotation iam.gke.io/gcp-service-account = %q, want %s@PROJECT_ID.iam.gserviceaccount.com", email, account)
	}
	if namespaceSA != m.serviceAccount.Name {
		t.Errorf("variable kubernetes_service_account defaults to %q, the ServiceAccount is %q", namespaceSA, m.serviceAccount.Name)
	}

	var pushAccount string
	tf.eval(t, attr(t, tf.variables["push_service_account_id"], "default"), &pushAccount)
	if got := m.configMap.Data["PUBSUB_PUSH_SERVICE_ACCOUNT"]; !strings.HasPrefix(got, pushAccount+"@") {
		t.Errorf("PUBSUB_PUSH_SERVICE_ACCOUNT = %q, want the push service account %s@...", got, pushAccount)
	}
	var topic string
	tf.eval(t, attr(t, tf.variables["dead_letter_topic_name"], "default"), &topic)
	if got := m.configMap.Data["DEAD_LETTER_TOPIC"]; got != topic {
		t.Errorf("DEAD_LETTER_TOPIC = %q, want the dead-letter topic %q", got, topic)
	}
}

// parseSeconds parses a Google API duration such as "604800s".
func parseSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	if !strings.HasSuffix(s, "s") {
		t.Fatalf("duration %q: want seconds, such as \"600s\"", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
