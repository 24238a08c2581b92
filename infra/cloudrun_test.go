package infra_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/httpapi"
)

// cloudRunGrace is how long Cloud Run lets an instance run after SIGTERM
// before it sends SIGKILL; it cannot be configured.
const cloudRunGrace = 10 * time.Second

// cloudRunSecretVars are the variables that hold credentials on Cloud Run:
// the Secret's, and the URLs that carry a password (Memorystore's AUTH
// string, the database user's).
var cloudRunSecretVars = append(slices.Clone(secretVars), "FIREHOSE_ACCESS_KEYS", "DATABASE_URL", "REDIS_URL")

// cloudRunDiffers are the ConfigMap settings Cloud Run sets otherwise, and why.
var cloudRunDiffers = map[string]string{
	"HTTP_SERVER_DRAIN_DELAY": "Cloud Run stops routing to an instance before SIGTERM: nothing to drain",
}

// notOnCloudRun are the ConfigMap settings the Cloud Run service leaves
// out of its plain environment, and why.
var notOnCloudRun = map[string]string{
	"REDIS_URL":                   "a secret on Cloud Run (Memorystore's AUTH string)",
	"OTEL_SERVICE_NAME":           "the collector is the cluster's; run_env adds tracing",
	"OTEL_EXPORTER_OTLP_ENDPOINT": "the collector is the cluster's; run_env adds tracing",
	"OTEL_TRACES_SAMPLER":         "the collector is the cluster's; run_env adds tracing",
	"OTEL_TRACES_SAMPLER_ARG":     "the collector is the cluster's; run_env adds tracing",
}

// objectItems returns the items of an object constructor by key.
func objectItems(t *testing.T, what string, expr hclsyntax.Expression) map[string]hclsyntax.ObjectConsItem {
	t.Helper()
	obj, ok := expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("%s is not an object", what)
	}
	out := map[string]hclsyntax.ObjectConsItem{}
	for _, item := range obj.Items {
		key := hcl.ExprAsKeyword(item.KeyExpr)
		if key == "" {
			t.Fatalf("%s: a key that is not a plain name", what)
		}
		out[key] = item
	}
	return out
}

// local returns the expression of local.name.
func (tf *terraform) local(t *testing.T, name string) hclsyntax.Expression {
	t.Helper()
	for _, b := range tf.blocks {
		if a, ok := b.Body.Attributes[name]; ok && b.Type == "locals" {
			return a.Expr
		}
	}
	t.Fatalf("no local.%s", name)
	return nil
}

// withVars returns an evaluation context with the variables at their
// defaults except for overrides, data.google_project.project.number set to
// projectNumber, the push service account's email and the dead-letter
// topic's name, and every local that can be evaluated from those.
func (tf *terraform) withVars(t *testing.T, overrides map[string]cty.Value) *hcl.EvalContext {
	t.Helper()
	vars := maps.Clone(tf.vars.Variables["var"].AsValueMap())
	for name := range tf.variables {
		if _, ok := vars[name]; !ok {
			vars[name] = cty.NullVal(cty.DynamicPseudoType)
		}
	}
	maps.Copy(vars, overrides)
	// The two resources Gwook's settings name, as they would be once made.
	resource := func(name, attr string, v cty.Value) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{name: cty.ObjectVal(map[string]cty.Value{attr: v})})
	}
	ctx := &hcl.EvalContext{Functions: terraformFunctions, Variables: map[string]cty.Value{
		"var":                    cty.ObjectVal(vars),
		"google_service_account": resource("push", "email", cty.StringVal("gwook-push@my-project.iam.gserviceaccount.com")),
		"google_pubsub_topic":    resource("dead_letter", "name", vars["dead_letter_topic_name"]),
		"data": cty.ObjectVal(map[string]cty.Value{"google_project": cty.ObjectVal(map[string]cty.Value{
			"project": cty.ObjectVal(map[string]cty.Value{"number": cty.StringVal(projectNumber)}),
		})}),
	}}
	locals := map[string]cty.Value{}
	for progress := true; progress; {
		progress = false
		ctx.Variables["local"] = cty.ObjectVal(locals)
		for _, b := range tf.blocks {
			if b.Type != "locals" {
				continue
			}
			for name, a := range b.Body.Attributes {
				if _, done := locals[name]; done {
					continue
				}
				if v, diags := a.Expr.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
					locals[name] = v
					progress = true
				}
			}
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx
}

const projectNumber = "123456789012"

// terraformFunctions are the Terraform functions the locals use that cty
// implements alike.
var terraformFunctions = map[string]function.Function{
	"coalesce": stdlib.CoalesceFunc,
	"lower":    stdlib.LowerFunc,
	"replace":  stdlib.ReplaceFunc,
	"merge":    stdlib.MergeFunc,
	"keys":     stdlib.KeysFunc,
	"lookup":   stdlib.LookupFunc,
	"contains": stdlib.ContainsFunc,
}

// runService returns the Cloud Run service and its one container.
func runService(t *testing.T, tf *terraform) (service, template, container *hclsyntax.Block) {
	t.Helper()
	service = tf.resource(t, "google_cloud_run_v2_service.gwook")
	template = child(t, service, "template")
	var containers []*hclsyntax.Block
	for _, b := range template.Body.Blocks {
		if b.Type == "containers" {
			containers = append(containers, b)
		}
	}
	if len(containers) != 1 {
		t.Fatalf("the Cloud Run service has %d containers, want 1", len(containers))
	}
	return service, template, containers[0]
}

// dynamicBlocks returns the dynamic blocks of b that generate blocks of type label.
func dynamicBlocks(b *hclsyntax.Block, label string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == "dynamic" && c.Labels[0] == label {
			out = append(out, c)
		}
	}
	return out
}

// cloudRunEnv returns the Cloud Run service's settings as Gwook would get
// them with the variables at their defaults (see withVars for what only
// the cloud knows), with a placeholder for each secret.
func cloudRunEnv(t *testing.T, tf *terraform) map[string]string {
	t.Helper()
	ctx := tf.withVars(t, map[string]cty.Value{"cloud_run": cty.True, "project_id": cty.StringVal("my-project")})
	env := map[string]string{}
	for key, item := range objectItems(t, "local.run_env_base", tf.local(t, "run_env_base")) {
		v, diags := item.ValueExpr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("local.run_env_base.%s: %s", key, diags.Error())
		}
		var s string
		if err := gocty.FromCtyValue(v, &s); err != nil {
			t.Fatalf("local.run_env_base.%s: %v", key, err)
		}
		env[key] = s
	}
	secrets := map[string]string{
		"AUTH_PASSWORD": "pw", "SVIX_AUTH_TOKEN": "sk_test", "SENTRY_DSN": "https://k@o0.ingest.sentry.io/0",
		"DATABASE_URL": "postgres://gwook:pw@/gwook?host=/cloudsql/p:europe-west1:gwook",
		"REDIS_URL":    "rediss://:auth@10.0.0.3:6378/0",
	}
	for name := range runSecretEnv(t, tf) {
		v, ok := secrets[name]
		if !ok {
			t.Fatalf("no placeholder for the secret %s", name)
		}
		env[name] = v
	}
	return env
}

// runSecretEnv returns the secrets the service gets with cloud_sql and
// memorystore on: run_secret_env's default and the ones Terraform makes.
func runSecretEnv(t *testing.T, tf *terraform) map[string]bool {
	t.Helper()
	defaults, diags := attr(t, tf.variables["run_secret_env"], "default").Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("variable run_secret_env: %s", diags.Error())
	}
	out := map[string]bool{}
	for name := range defaults.AsValueMap() {
		out[name] = true
	}
	ctx := tf.withVars(t, map[string]cty.Value{"cloud_run": cty.True, "cloud_sql": cty.True, "memorystore": cty.True})
	managed, ok := ctx.Variables["local"].AsValueMap()["managed_secrets"]
	if !ok {
		t.Fatal("local.managed_secrets cannot be evaluated from the variables")
	}
	for name := range managed.AsValueMap() {
		out[name] = true
	}
	return out
}

// TestCloudRunEnvIsGwookConfig checks the Cloud Run service's plain
// settings: each a variable Gwook reads, none a credential, and the same
// as the ConfigMap's except where Cloud Run needs otherwise.
func TestCloudRunEnvIsGwookConfig(t *testing.T) {
	tf := loadTerraform(t)
	m := loadManifests(t)
	vars := config.Variables()
	base := objectItems(t, "local.run_env_base", tf.local(t, "run_env_base"))
	for key := range base {
		if !readByBinary(vars, key) {
			t.Errorf("local.run_env_base: %s is not a variable Gwook reads", key)
		}
		if slices.Contains(cloudRunSecretVars, key) {
			t.Errorf("local.run_env_base: %s is a credential: it belongs in Secret Manager (run_secret_env)", key)
		}
	}
	if refs := references(tf.local(t, "run_env")); !slices.Contains(refs, "local.run_env_base") || !slices.Contains(refs, "var.run_env") {
		t.Errorf("local.run_env = %v, want run_env_base merged with var.run_env", refs)
	}

	env := cloudRunEnv(t, tf)
	for key, value := range m.configMap.Data {
		if why, ok := notOnCloudRun[key]; ok {
			if _, set := base[key]; set {
				t.Errorf("local.run_env_base sets %s, which is listed as left out (%s)", key, why)
			}
			continue
		}
		got, ok := env[key]
		switch {
		case !ok:
			t.Errorf("the ConfigMap sets %s, the Cloud Run service does not: add it to local.run_env_base or to notOnCloudRun with a reason", key)
		case cloudRunDiffers[key] != "":
			if got == value {
				t.Errorf("%s = %q on Cloud Run as in the ConfigMap; listed as differing (%s)", key, got, cloudRunDiffers[key])
			}
		case strings.Contains(value, "PROJECT_ID") || strings.Contains(value, "example.com"):
			// A placeholder in the ConfigMap; Terraform sets the real value.
		case got != value:
			t.Errorf("%s = %q on Cloud Run, %q in the ConfigMap", key, got, value)
		}
	}

	// What only the cloud knows comes from the resources that decide it.
	for key, want := range map[string]string{
		"PUBSUB_PUSH_AUDIENCE":        "local.push_audience",
		"PUBSUB_PUSH_SERVICE_ACCOUNT": "google_service_account.push",
		"DEAD_LETTER_TOPIC":           "google_pubsub_topic.dead_letter",
		"PUBSUB_PROJECT_ID":           "var.project_id",
	} {
		item, ok := base[key]
		if !ok {
			t.Errorf("local.run_env_base has no %s", key)
			continue
		}
		if refs := references(item.ValueExpr); !slices.Contains(refs, want) {
			t.Errorf("local.run_env_base.%s = %v, want it from %s", key, refs, want)
		}
	}
}

// TestCloudRunSecretsNeverPlain checks that every credential reaches the
// service from Secret Manager: the plain settings come from local.run_env
// only, the secrets from local.run_secret_env as secret_key_ref only, the
// variable for extra plain settings refuses credentials, and Gwook's
// service account may read each secret.
func TestCloudRunSecretsNeverPlain(t *testing.T) {
	tf := loadTerraform(t)
	vars := config.Variables()
	_, _, container := runService(t, tf)
	for _, b := range container.Body.Blocks {
		if b.Type == "env" {
			t.Error("the container has a static env block: settings come from local.run_env and local.run_secret_env")
		}
	}
	envs := dynamicBlocks(container, "env")
	if len(envs) != 2 {
		t.Fatalf("the container has %d dynamic env blocks, want 2 (plain, secret)", len(envs))
	}
	var plain, secret bool
	for _, d := range envs {
		content := child(t, d, "content")
		refs := references(attr(t, d, "for_each").Expr)
		switch {
		case slices.Contains(refs, "local.run_env"):
			plain = true
			if _, ok := content.Body.Attributes["value"]; !ok {
				t.Error("the plain env block sets no value")
			}
		case slices.Contains(refs, "local.run_secret_env"):
			secret = true
			if _, ok := content.Body.Attributes["value"]; ok {
				t.Error("the secret env block sets a plain value")
			}
			ref := child(t, child(t, content, "value_source"), "secret_key_ref")
			if refs := references(attr(t, ref, "secret").Expr); !slices.Contains(refs, "env.value") {
				t.Errorf("secret_key_ref.secret = %v, want the secret named in local.run_secret_env", refs)
			}
		default:
			t.Errorf("an env block over %v", refs)
		}
	}
	if !plain || !secret {
		t.Errorf("plain env block: %v, secret env block: %v; want both", plain, secret)
	}

	secrets := runSecretEnv(t, tf)
	for _, want := range []string{"SVIX_AUTH_TOKEN", "AUTH_PASSWORD", "DATABASE_URL", "REDIS_URL"} {
		if !secrets[want] {
			t.Errorf("%s is not among the service's secrets", want)
		}
	}
	for name := range secrets {
		if !readByBinary(vars, name) {
			t.Errorf("secret %s is not a variable Gwook reads", name)
		}
		if !slices.Contains(cloudRunSecretVars, name) {
			t.Errorf("secret %s is not a credential: a plain setting belongs in local.run_env_base", name)
		}
	}
	if refs := references(tf.local(t, "run_secret_env")); !slices.Contains(refs, "var.run_secret_env") || !slices.Contains(refs, "local.managed_secrets") {
		t.Errorf("local.run_secret_env = %v, want var.run_secret_env merged with local.managed_secrets", refs)
	}

	// var.run_env refuses every credential by name.
	var names []string
	validation := child(t, tf.variables["run_env"], "validation")
	hclsyntax.VisitAll(attr(t, validation, "condition").Expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if lit, ok := n.(*hclsyntax.TemplateExpr); ok && lit.IsStringLiteral() {
			v, _ := lit.Value(nil)
			names = append(names, v.AsString())
		}
		return nil
	})
	for _, name := range cloudRunSecretVars {
		if !slices.Contains(names, name) {
			t.Errorf("variable run_env's validation does not refuse %s", name)
		}
	}

	grant := tf.resource(t, "google_secret_manager_secret_iam_member.gwook_run_secrets")
	if refs := references(attr(t, grant, "for_each").Expr); !slices.Contains(refs, "local.run_secret_env") {
		t.Errorf("secret grants for_each = %v, want local.run_secret_env", refs)
	}
	var role string
	tf.eval(t, attr(t, grant, "role"), &role)
	if refs := references(attr(t, grant, "member").Expr); role != "roles/secretmanager.secretAccessor" || !slices.Contains(refs, "google_service_account.gwook") {
		t.Errorf("secret grant: %s to %v, want roles/secretmanager.secretAccessor to Gwook's service account", role, refs)
	}
	if refs := references(attr(t, grant, "secret_id").Expr); !slices.Contains(refs, "each.value") {
		t.Errorf("secret grant secret_id = %v, want each secret (each.value)", refs)
	}

	// The secrets Terraform makes hold the URLs Gwook expects.
	for name, prefix := range map[string]string{"redis_url": "rediss://", "database_url": "postgres://"} {
		version := tf.resource(t, "google_secret_manager_secret_version."+name)
		tmpl, ok := attr(t, version, "secret_data").Expr.(*hclsyntax.TemplateExpr)
		if !ok || len(tmpl.Parts) == 0 {
			t.Errorf("%s secret_data is not a template", name)
			continue
		}
		first, diags := tmpl.Parts[0].Value(nil)
		if diags.HasErrors() || !strings.HasPrefix(first.AsString(), prefix) {
			t.Errorf("%s secret_data does not start with %s", name, prefix)
		}
	}
	redisURL := tf.resource(t, "google_secret_manager_secret_version.redis_url")
	if refs := references(attr(t, redisURL, "secret_data").Expr); !slices.Contains(refs, "google_redis_instance.gwook") {
		t.Errorf("REDIS_URL = %v, want it from the Memorystore instance", refs)
	}
	redis := tf.resource(t, "google_redis_instance.gwook")
	var mode string
	var auth bool
	tf.eval(t, attr(t, redis, "transit_encryption_mode"), &mode)
	tf.eval(t, attr(t, redis, "auth_enabled"), &auth)
	if mode != "SERVER_AUTHENTICATION" || !auth {
		t.Errorf("Memorystore: transit_encryption_mode %s, auth_enabled %v; want SERVER_AUTHENTICATION (rediss://) and AUTH", mode, auth)
	}
	dbURL := tf.resource(t, "google_secret_manager_secret_version.database_url")
	if !strings.Contains(exprText(t, attr(t, dbURL, "secret_data").Expr), "host=/cloudsql/") {
		t.Error("DATABASE_URL does not name the Cloud SQL connector's socket directory (host=/cloudsql/...)")
	}
}

// exprText returns the literal parts of a template, joined.
func exprText(t *testing.T, expr hclsyntax.Expression) string {
	t.Helper()
	var b strings.Builder
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if lit, ok := n.(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type() == cty.String {
			b.WriteString(lit.Val.AsString())
		}
		return nil
	})
	return b.String()
}

// TestCloudRunConfigurationFitsCloudRun loads the service's settings with
// internal/config, as Gwook does at startup, and checks them against Cloud
// Run's limits: the port and probes, the request timeout, the concurrency,
// the push ack deadline and the 10 s after SIGTERM.
func TestCloudRunConfigurationFitsCloudRun(t *testing.T) {
	tf := loadTerraform(t)
	env := cloudRunEnv(t, tf)
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
	if err != nil {
		t.Fatalf("Gwook refuses the Cloud Run service's settings: %v", err)
	}
	service, template, container := runService(t, tf)

	var port int
	tf.eval(t, attr(t, child(t, container, "ports"), "container_port"), &port)
	if port != cfg.HTTPPort {
		t.Errorf("container_port %d, Gwook listens on HTTP_SERVER_PORT %d", port, cfg.HTTPPort)
	}
	for _, probe := range []string{"startup_probe", "liveness_probe"} {
		get := child(t, child(t, container, probe), "http_get")
		var path string
		var probePort int
		tf.eval(t, attr(t, get, "path"), &path)
		tf.eval(t, attr(t, get, "port"), &probePort)
		if path != "/health" || probePort != cfg.HTTPPort {
			t.Errorf("%s GET :%d%s, want :%d/health (liveness; /ready reports dependencies)", probe, probePort, path, cfg.HTTPPort)
		}
	}
	startup := child(t, container, "startup_probe")
	var period, failures int
	tf.eval(t, attr(t, startup, "period_seconds"), &period)
	tf.eval(t, attr(t, startup, "failure_threshold"), &failures)
	if time.Duration(period*failures)*time.Second < time.Minute {
		t.Errorf("the startup probe gives Gwook %ds to pass its startup checks, want a minute as on Kubernetes", period*failures)
	}

	var timeout string
	tf.eval(t, attr(t, tf.variables["run_timeout"], "default"), &timeout)
	if refs := references(attr(t, template, "timeout").Expr); !slices.Contains(refs, "var.run_timeout") {
		t.Errorf("template timeout = %v, want var.run_timeout", refs)
	}
	if d := parseSeconds(t, timeout); d <= cfg.WriteTimeout || d <= httpapi.FirehoseAnswerWithin {
		t.Errorf("run_timeout %s: want above HTTP_SERVER_WRITE_TIMEOUT (%s) and a Firehose batch's %s, so Gwook answers before Cloud Run cuts it off",
			d, cfg.WriteTimeout, httpapi.FirehoseAnswerWithin)
	}

	var concurrency, minInstances, maxInstances int
	tf.eval(t, attr(t, tf.variables["run_max_concurrency"], "default"), &concurrency)
	tf.eval(t, attr(t, tf.variables["run_min_instances"], "default"), &minInstances)
	tf.eval(t, attr(t, tf.variables["run_max_instances"], "default"), &maxInstances)
	if concurrency > cfg.SvixMaxConnsPerHost || concurrency > cfg.MaxInFlight {
		t.Errorf("run_max_concurrency %d: want at most SVIX_MAX_CONNS_PER_HOST (%d) and MAX_IN_FLIGHT (%d)", concurrency, cfg.SvixMaxConnsPerHost, cfg.MaxInFlight)
	}
	if minInstances < 1 || maxInstances < minInstances {
		t.Errorf("run_min_instances %d, run_max_instances %d: want 1 <= min <= max", minInstances, maxInstances)
	}
	scaling := child(t, template, "scaling")
	for a, v := range map[string]string{"min_instance_count": "var.run_min_instances", "max_instance_count": "var.run_max_instances"} {
		if refs := references(attr(t, scaling, a).Expr); !slices.Contains(refs, v) {
			t.Errorf("scaling.%s = %v, want %s", a, refs, v)
		}
	}
	if refs := references(attr(t, template, "max_instance_request_concurrency").Expr); !slices.Contains(refs, "var.run_max_concurrency") {
		t.Errorf("max_instance_request_concurrency = %v, want var.run_max_concurrency", refs)
	}

	var cpuIdle bool
	tf.eval(t, attr(t, child(t, container, "resources"), "cpu_idle"), &cpuIdle)
	if cpuIdle {
		t.Error("cpu_idle = true: Gwook works between requests (direct delivery, streaming pull, stats), so CPU must stay allocated")
	}
	var iamDisabled bool
	tf.eval(t, attr(t, service, "invoker_iam_disabled"), &iamDisabled)
	if !iamDisabled {
		t.Error("invoker_iam_disabled is not true: Cloud Run's invoker check strips the signature of the push tokens Gwook verifies")
	}

	var ack int
	tf.eval(t, attr(t, tf.resource(t, "google_pubsub_subscription.push"), "ack_deadline_seconds"), &ack)
	if time.Duration(ack)*time.Second <= cfg.RequestBudget() {
		t.Errorf("push ack_deadline_seconds %d, want above the request budget on Cloud Run (%s)", ack, cfg.RequestBudget())
	}

	// Cloud Run routes nothing to an instance it stops, so there is nothing
	// to drain; what Gwook then needs when no request is slow, the last
	// stats write, fits Cloud Run's 10 s. The worst case does not.
	if cfg.DrainDelay != 0 {
		t.Errorf("HTTP_SERVER_DRAIN_DELAY = %s on Cloud Run, want 0s", cfg.DrainDelay)
	}
	if cfg.DrainDelay+config.StatsFlushTimeout >= cloudRunGrace {
		t.Errorf("drain delay %s + the last stats write %s do not fit Cloud Run's %s after SIGTERM", cfg.DrainDelay, config.StatsFlushTimeout, cloudRunGrace)
	}
	t.Logf("shutdown budget on Cloud Run: %s (SIGKILL after %s)", cfg.DescribeShutdownBudget(), cloudRunGrace)
}

// TestCloudRunPushSubscription checks that the push subscription points at
// the Cloud Run service's /notifications and that its OIDC audience is the
// one the service's Gwook checks, computed the same way.
func TestCloudRunPushSubscription(t *testing.T) {
	tf := loadTerraform(t)
	push := tf.resource(t, "google_pubsub_subscription.push")
	pc := child(t, push, "push_config")
	if refs := references(attr(t, pc, "push_endpoint").Expr); !slices.Contains(refs, "local.push_endpoint") {
		t.Errorf("push_endpoint = %v, want local.push_endpoint", refs)
	}
	endpoint := tf.local(t, "push_endpoint")
	if refs := references(endpoint); !slices.Contains(refs, "google_cloud_run_v2_service.gwook") || !slices.Contains(refs, "var.push_endpoint") {
		t.Errorf("local.push_endpoint = %v, want var.push_endpoint or the Cloud Run service's uri", refs)
	}
	if !strings.Contains(exprText(t, endpoint), "/notifications") {
		t.Error("local.push_endpoint does not add /notifications to the Cloud Run service's uri")
	}

	ctx := tf.withVars(t, map[string]cty.Value{"cloud_run": cty.True})
	var region, service string
	tf.eval(t, attr(t, tf.variables["region"], "default"), &region)
	tf.eval(t, attr(t, tf.variables["run_service_name"], "default"), &service)
	want := "https://" + service + "-" + projectNumber + "." + region + ".run.app/notifications"
	audience := func(what string, expr hclsyntax.Expression) {
		t.Helper()
		v, diags := expr.Value(ctx)
		if diags.HasErrors() {
			t.Errorf("%s: %s", what, diags.Error())
			return
		}
		if v.IsNull() || v.AsString() != want {
			t.Errorf("%s = %#v with cloud_run, want %q", what, v, want)
		}
	}
	audience("the push subscription's OIDC audience", attr(t, child(t, pc, "oidc_token"), "audience").Expr)
	audience("the service's PUBSUB_PUSH_AUDIENCE", objectItems(t, "local.run_env_base", tf.local(t, "run_env_base"))["PUBSUB_PUSH_AUDIENCE"].ValueExpr)

	// An explicit audience wins on both sides.
	ctx = tf.withVars(t, map[string]cty.Value{"cloud_run": cty.True, "push_audience": cty.StringVal("https://gwook.example.com/notifications")})
	want = "https://gwook.example.com/notifications"
	audience("the push subscription's OIDC audience with push_audience", attr(t, child(t, pc, "oidc_token"), "audience").Expr)

	invoker := tf.resource(t, "google_cloud_run_v2_service_iam_member.push_invoker")
	var role string
	tf.eval(t, attr(t, invoker, "role"), &role)
	if role != "roles/run.invoker" || !slices.Contains(references(attr(t, invoker, "member").Expr), "google_service_account.push") ||
		!slices.Contains(references(attr(t, invoker, "name").Expr), "google_cloud_run_v2_service.gwook") {
		t.Error("no roles/run.invoker for the push service account on the Cloud Run service")
	}
	if refs := references(attr(t, invoker, "count").Expr); !slices.Contains(refs, "local.eventarc") {
		t.Errorf("push_invoker count = %v, want it left to the Eventarc trigger's grant when there is one", refs)
	}
}

// TestTerraformReferencesResolve checks that every resource, data source
// and local an expression names is declared.
func TestTerraformReferencesResolve(t *testing.T) {
	tf := loadTerraform(t)
	locals := map[string]bool{}
	data := map[string]bool{}
	for _, b := range tf.blocks {
		switch b.Type {
		case "locals":
			for name := range b.Body.Attributes {
				locals[name] = true
			}
		case "data":
			data[b.Labels[0]+"."+b.Labels[1]] = true
		}
	}
	for _, b := range tf.blocks {
		// Iterators of the dynamic blocks and for expressions inside b.
		iterators := map[string]bool{}
		hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
			switch n := n.(type) {
			case *hclsyntax.Block:
				if n.Type == "dynamic" {
					iterators[n.Labels[0]] = true
				}
			case *hclsyntax.ForExpr:
				iterators[n.KeyVar] = n.KeyVar != ""
				iterators[n.ValVar] = true
			}
			return nil
		})
		hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
			e, ok := n.(hclsyntax.Expression)
			if !ok {
				return nil
			}
			if typ, ok := b.Body.Attributes["type"]; ok && b.Type == "variable" && typ.SrcRange.ContainsOffset(e.Range().Start.Byte) {
				return nil // a type, not a reference
			}
			for _, tr := range e.Variables() {
				root := tr.RootName()
				switch {
				case root == "var" || root == "each" || root == "count" || root == "self" || iterators[root]:
				case root == "local":
					if name := ref(tr, 1); !locals[name] {
						t.Errorf("%s %s: local.%s is not declared", b.Type, strings.Join(b.Labels, "."), name)
					}
				case root == "data":
					if name := ref(tr, 1) + "." + ref(tr, 2); !data[name] {
						t.Errorf("%s %s: data.%s is not declared", b.Type, strings.Join(b.Labels, "."), name)
					}
				default:
					if name := root + "." + ref(tr, 1); tf.resources[name] == nil {
						t.Errorf("%s %s: %s is not declared", b.Type, strings.Join(b.Labels, "."), name)
					}
				}
			}
			return nil
		})
	}
}

// ref returns the name of the i-th step of a traversal, or "".
func ref(tr hcl.Traversal, i int) string {
	if len(tr) <= i {
		return ""
	}
	if a, ok := tr[i].(hcl.TraverseAttr); ok {
		return a.Name
	}
	return ""
}

// TestOptionalPartsAreOptional checks that Memorystore, Cloud SQL, the
// Cloud Run service and the Workload Identity pool are each made only when
// their variable asks, and that the Kubernetes path needs none of them.
func TestOptionalPartsAreOptional(t *testing.T) {
	tf := loadTerraform(t)
	for name, want := range map[string]string{
		"google_cloud_run_v2_service.gwook":                          "local.cloud_run",
		"google_redis_instance.gwook":                                "var.memorystore",
		"google_secret_manager_secret.redis_url":                     "var.memorystore",
		"google_secret_manager_secret_version.redis_url":             "var.memorystore",
		"google_secret_manager_secret.redis_ca":                      "var.memorystore",
		"google_secret_manager_secret_version.redis_ca":              "var.memorystore",
		"google_secret_manager_secret_iam_member.gwook_run_redis_ca": "var.memorystore",
		"google_sql_database_instance.gwook":                         "var.cloud_sql",
		"google_sql_database.gwook":                                  "var.cloud_sql",
		"google_sql_user.gwook":                                      "var.cloud_sql",
		"google_secret_manager_secret.database_url":                  "var.cloud_sql",
		"google_secret_manager_secret_version.database_url":          "var.cloud_sql",
		"google_project_iam_member.gwook_cloudsql_client":            "var.cloud_sql",
		"random_password.database":                                   "var.cloud_sql",
		"google_iam_workload_identity_pool.github":                   "local.github",
		"google_iam_workload_identity_pool_provider.github":          "local.github",
		"google_service_account_iam_member.ci_workload_identity":     "local.github",
		"google_artifact_registry_repository.gwook":                  "var.artifact_registry",
	} {
		b := tf.resource(t, name)
		if refs := references(attr(t, b, "count").Expr); !slices.Contains(refs, want) {
			t.Errorf("%s count = %v, want it decided by %s", name, refs, want)
		}
	}
	for name, want := range map[string]bool{"cloud_run": false, "memorystore": false, "cloud_sql": false} {
		var got bool
		tf.eval(t, attr(t, tf.variables[name], "default"), &got)
		if got != want {
			t.Errorf("variable %s defaults to %v, want %v: the Kubernetes deployment needs none of it", name, got, want)
		}
	}
	if refs := references(tf.local(t, "cloud_run")); !slices.Contains(refs, "var.cloud_run") {
		t.Errorf("local.cloud_run = %v, want var.cloud_run", refs)
	}
}

// TestArtifactRegistry checks the image repository and who may push to it:
// the CI service account, through a Workload Identity Federation provider
// that trusts only GitHub's tokens for this repository's main and tags.
func TestArtifactRegistry(t *testing.T) {
	tf := loadTerraform(t)
	repo := tf.resource(t, "google_artifact_registry_repository.gwook")
	var format string
	tf.eval(t, attr(t, repo, "format"), &format)
	if format != "DOCKER" {
		t.Errorf("repository format %s, want DOCKER", format)
	}
	writer := tf.resource(t, "google_artifact_registry_repository_iam_member.ci_writer")
	var role string
	tf.eval(t, attr(t, writer, "role"), &role)
	if role != "roles/artifactregistry.writer" ||
		!slices.Contains(references(attr(t, writer, "repository").Expr), "google_artifact_registry_repository.gwook") ||
		!slices.Contains(references(attr(t, writer, "member").Expr), "google_service_account.ci") {
		t.Error("the CI service account may not push to the repository (roles/artifactregistry.writer)")
	}

	provider := tf.resource(t, "google_iam_workload_identity_pool_provider.github")
	var issuer string
	tf.eval(t, attr(t, child(t, provider, "oidc"), "issuer_uri"), &issuer)
	if issuer != "https://token.actions.githubusercontent.com" {
		t.Errorf("issuer_uri %q, want GitHub Actions' token issuer", issuer)
	}
	ctx := tf.withVars(t, map[string]cty.Value{"github_repository": cty.StringVal("gwook/gwook")})
	cond, diags := attr(t, provider, "attribute_condition").Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("attribute_condition: %s", diags.Error())
	}
	for _, want := range []string{"assertion.repository == 'gwook/gwook'", "assertion.ref == 'refs/heads/main'", "assertion.ref.startsWith('refs/tags/')"} {
		if !strings.Contains(cond.AsString(), want) {
			t.Errorf("attribute_condition %q does not require %s", cond.AsString(), want)
		}
	}
	binding := tf.resource(t, "google_service_account_iam_member.ci_workload_identity")
	tf.eval(t, attr(t, binding, "role"), &role)
	if role != "roles/iam.workloadIdentityUser" || !slices.Contains(references(attr(t, binding, "service_account_id").Expr), "google_service_account.ci") {
		t.Error("the pool's identities may not act as the CI service account")
	}
	if !strings.Contains(exprText(t, attr(t, binding, "member").Expr), "/attribute.repository/") {
		t.Error("the Workload Identity binding is not limited to the repository (principalSet .../attribute.repository/OWNER/NAME)")
	}
}

// TestWorkflowMatchesTerraform checks that the repository variables the
// workflow reads are the ones output github_variables lists, and that the
// image it pushes is output image_repository.
func TestWorkflowMatchesTerraform(t *testing.T) {
	tf := loadTerraform(t)
	w := loadWorkflow(t)
	out := objectItems(t, "output github_variables", attr(t, tf.outputs["github_variables"], "value").Expr)
	used := w.repositoryVariables()
	for name := range used {
		if _, ok := out[name]; !ok {
			t.Errorf("the workflow reads vars.%s, which output github_variables does not give", name)
		}
	}
	for name := range out {
		if !used[name] {
			t.Errorf("output github_variables gives %s, which the workflow does not read", name)
		}
	}

	ctx := tf.withVars(t, map[string]cty.Value{
		"project_id": cty.StringVal("my-project"), "region": cty.StringVal("us-east4"), "artifact_registry_repository": cty.StringVal("images"),
	})
	image := w.publishJob(t).Env["IMAGE"]
	for name, item := range out {
		v, diags := item.ValueExpr.Value(ctx)
		if diags.HasErrors() || v.IsNull() || !v.IsKnown() {
			continue // known only once applied
		}
		image = strings.ReplaceAll(image, "${{ vars."+name+" }}", v.AsString())
	}
	v, diags := attr(t, tf.outputs["image_repository"], "value").Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("output image_repository: %s", diags.Error())
	}
	if want := v.AsString(); image != want {
		t.Errorf("the workflow pushes %s, output image_repository is %s", image, want)
	}
}

// TestCloudRunRefusesWhatCannotWork evaluates the Cloud Run service's
// preconditions: Terraform refuses to plan a service without an image,
// without PostgreSQL, with several instances and no shared dedup store, or
// with Memorystore and no way to reach it; and accepts a complete one.
func TestCloudRunRefusesWhatCannotWork(t *testing.T) {
	tf := loadTerraform(t)
	service, _, _ := runService(t, tf)
	var conditions []*hclsyntax.Attribute
	for _, b := range child(t, service, "lifecycle").Body.Blocks {
		if b.Type == "precondition" {
			conditions = append(conditions, attr(t, b, "condition"))
		}
	}
	complete := map[string]cty.Value{
		"cloud_run":      cty.True,
		"run_image":      cty.StringVal("europe-west1-docker.pkg.dev/p/gwook/gwook:0123abc"),
		"cloud_sql":      cty.True,
		"memorystore":    cty.True,
		"vpc_network":    cty.StringVal("default"),
		"vpc_subnetwork": cty.StringVal("gwook-run"),
	}
	with := func(changes map[string]cty.Value) map[string]cty.Value {
		out := maps.Clone(complete)
		maps.Copy(out, changes)
		return out
	}
	oneSecret := func(name, secret string) cty.Value {
		return cty.MapVal(map[string]cty.Value{name: cty.StringVal(secret), "SVIX_AUTH_TOKEN": cty.StringVal("gwook-svix-auth-token")})
	}
	for _, c := range []struct {
		name string
		vars map[string]cty.Value
		ok   bool
	}{
		{"complete", complete, true},
		{"own database and Redis secrets", with(map[string]cty.Value{
			"cloud_sql": cty.False, "memorystore": cty.False, "vpc_subnetwork": cty.NullVal(cty.String),
			"run_secret_env": cty.MapVal(map[string]cty.Value{"DATABASE_URL": cty.StringVal("db"), "REDIS_URL": cty.StringVal("redis")}),
		}), true},
		{"one instance, no Redis", with(map[string]cty.Value{"memorystore": cty.False, "run_max_instances": cty.NumberIntVal(1)}), true},
		{"dedup off, no Redis", with(map[string]cty.Value{
			"memorystore": cty.False, "run_env": cty.MapVal(map[string]cty.Value{"DEDUP_TTL": cty.StringVal("0")}),
		}), true},
		{"no image", with(map[string]cty.Value{"run_image": cty.NullVal(cty.String)}), false},
		{"no database (SQLite in memory)", with(map[string]cty.Value{"cloud_sql": cty.False}), false},
		{"own Redis, no database", with(map[string]cty.Value{"cloud_sql": cty.False, "memorystore": cty.False, "run_secret_env": oneSecret("REDIS_URL", "r")}), false},
		{"several instances, no Redis", with(map[string]cty.Value{"memorystore": cty.False}), false},
		{"Memorystore, no VPC egress", with(map[string]cty.Value{"vpc_subnetwork": cty.NullVal(cty.String)}), false},
	} {
		ctx := tf.withVars(t, c.vars)
		ok := true
		for _, cond := range conditions {
			v, diags := cond.Expr.Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("%s: precondition at %s: %s", c.name, cond.SrcRange, diags.Error())
			}
			ok = ok && v.True()
		}
		if ok != c.ok {
			t.Errorf("%s: the service's preconditions pass: %v, want %v", c.name, ok, c.ok)
		}
	}
}

// TestCloudRunTrustsMemorystoreCA checks that with Memorystore the service
// gets the instance's CA as a file, and REDIS_TLS_CA_FILE names that file:
// Memorystore's certificate is signed by a CA of its own, which the
// system's roots do not hold.
func TestCloudRunTrustsMemorystoreCA(t *testing.T) {
	tf := loadTerraform(t)
	for _, memorystore := range []bool{true, false} {
		ctx := tf.withVars(t, map[string]cty.Value{"cloud_run": cty.True, "memorystore": cty.BoolVal(memorystore)})
		locals := ctx.Variables["local"].AsValueMap()
		env, ok := locals["run_env"]
		if !ok {
			t.Fatal("local.run_env cannot be evaluated from the variables")
		}
		caFile, set := env.AsValueMap()["REDIS_TLS_CA_FILE"]
		if set != memorystore {
			t.Errorf("memorystore = %v: REDIS_TLS_CA_FILE set = %v", memorystore, set)
			continue
		}
		if memorystore && caFile.AsString() != locals["redis_ca_dir"].AsString()+"/ca.pem" {
			t.Errorf("REDIS_TLS_CA_FILE = %s, want ca.pem in local.redis_ca_dir", caFile.AsString())
		}
	}
	// The file: the volume of the CA's secret, mounted at redis_ca_dir.
	var mounted bool
	walkBlocks(tf.resource(t, "google_cloud_run_v2_service.gwook"), func(b *hclsyntax.Block) {
		if b.Type != "content" {
			return
		}
		if a, ok := b.Body.Attributes["mount_path"]; ok && slices.Contains(references(a.Expr), "local.redis_ca_dir") {
			mounted = true
		}
	})
	if !mounted {
		t.Error("no volume mount at local.redis_ca_dir")
	}
}

// walkBlocks calls visit on every block nested in b, at any depth.
func walkBlocks(b *hclsyntax.Block, visit func(*hclsyntax.Block)) {
	for _, c := range b.Body.Blocks {
		visit(c)
		walkBlocks(c, visit)
	}
}
