package infra_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

var (
	alertsFile    = filepath.Join(observabilityDir, "alerts.yaml")
	dashboardFile = filepath.Join(observabilityDir, "dashboard.json")
)

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Alert         string            `json:"alert,omitempty"`
	Record        string            `json:"record,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// loadAlerts decodes alerts.yaml strictly and returns its alerting rules.
func loadAlerts(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	if err := yaml.UnmarshalStrict(readFile(t, alertsFile), &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var alerts []rule
	for _, g := range f.Groups {
		if g.Name == "" {
			t.Errorf("%s: a group without a name", alertsFile)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("%s: a rule that is not an alert (%q)", alertsFile, r.Record)
				continue
			}
			alerts = append(alerts, r)
		}
	}
	if len(alerts) == 0 {
		t.Fatalf("%s: no alerts", alertsFile)
	}
	return alerts
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource,omitempty"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource,omitempty"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *datasource `json:"datasource,omitempty"`
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// prometheusDatasource is what every panel and query variable must use: the
// dashboard's ${datasource} variable, so it imports into any Grafana.
var prometheusDatasource = datasource{Type: "prometheus", UID: "${datasource}"}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// panels returns every panel, those inside collapsed rows included.
func (d *dashboard) panels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// queries returns every PromQL query of the dashboard, by where it is.
func (d *dashboard) queries() map[string]string {
	out := map[string]string{}
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	return out
}

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// expandGrafana replaces Grafana's variables in a query with values PromQL
// accepts: intervals with 5m, the dashboard's own variables with vars[name].
func expandGrafana(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		switch name {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		}
		if v, ok := vars[name]; ok {
			return v
		}
		unknown = append(unknown, name)
		return m
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown dashboard variables %v", unknown)
	}
	return out, nil
}

// selector is one series selector of a PromQL expression.
type selector struct {
	name     string
	matchers []*labels.Matcher // without __name__
}

// grouping is the by (...) clause of an aggregation, with the metric names
// of the selectors it aggregates.
type grouping struct {
	labels  []string
	metrics []string
}

// selectors parses expr as PromQL and returns its series selectors.
func selectors(expr string) ([]selector, error) {
	sels, _, err := parseQuery(expr)
	return sels, err
}

// parseQuery parses expr as PromQL and returns its series selectors and
// the groupings of its aggregations.
func parseQuery(expr string) ([]selector, []grouping, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, nil, err
	}
	var sels []selector
	var groups []grouping
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			sels = append(sels, newSelector(n))
		case *parser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				return nil
			}
			g := grouping{labels: n.Grouping}
			parser.Inspect(n.Expr, func(c parser.Node, _ []parser.Node) error {
				if vs, ok := c.(*parser.VectorSelector); ok {
					g.metrics = append(g.metrics, newSelector(vs).name)
				}
				return nil
			})
			groups = append(groups, g)
		}
		return nil
	})
	return sels, groups, nil
}

func newSelector(vs *parser.VectorSelector) selector {
	s := selector{name: vs.Name}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			if m.Type == labels.MatchEqual {
				s.name = m.Value
			}
			continue
		}
		s.matchers = append(s.matchers, m)
	}
	return s
}

// serviceMonitorJob is the job label Prometheus gives Gwook's series when
// it scrapes them through the ServiceMonitor.
func serviceMonitorJob(t *testing.T) string {
	t.Helper()
	m := loadManifests(t)
	job := m.service.Name
	if l := m.serviceMonitor.Spec.JobLabel; l != "" {
		job = m.service.Labels[l]
	}
	return job
}

func TestAlertRules(t *testing.T) {
	alerts := loadAlerts(t)
	job := serviceMonitorJob(t)
	subscriptions := slices.Collect(maps.Values(peopleSubscriptions(t)))
	docs := map[string]map[string]bool{
		"/README.md":       anchors(t, filepath.Join("..", "README.md")),
		"/infra/README.md": anchors(t, "README.md"),
	}
	seen := map[string]bool{}
	for _, a := range alerts {
		if seen[a.Alert] {
			t.Errorf("alert %s is defined twice", a.Alert)
		}
		seen[a.Alert] = true
		sels, err := selectors(a.Expr)
		if err != nil {
			t.Errorf("alert %s: expr: %v", a.Alert, err)
		}
		// Every selector names the job, so another service's metrics (up,
		// process_*) never fire Gwook's alerts; the exporter's Pub/Sub
		// series name Gwook's subscriptions instead.
		for _, s := range sels {
			if strings.HasPrefix(s.name, exporterMetricPrefix) {
				checkSubscriptionSelector(t, a.Alert, s, subscriptions)
				continue
			}
			i := slices.IndexFunc(s.matchers, func(m *labels.Matcher) bool { return m.Name == "job" })
			if i < 0 || s.matchers[i].Type != labels.MatchEqual || s.matchers[i].Value != job {
				t.Errorf("alert %s: selector of %s does not match job=%q (the ServiceMonitor's job)", a.Alert, s.name, job)
			}
		}
		if a.For == "" {
			t.Errorf("alert %s: no for", a.Alert)
		} else if _, err := model.ParseDuration(a.For); err != nil {
			t.Errorf("alert %s: for: %v", a.Alert, err)
		}
		if s := a.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("alert %s: severity %q, want critical or warning", a.Alert, s)
		}
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("alert %s: no %s annotation", a.Alert, k)
			}
		}
		if u := a.Annotations["runbook_url"]; u != "" {
			checkRunbook(t, a.Alert, u, docs)
		}
	}
}

// exporterMetricPrefix begins the names the Prometheus stackdriver exporter
// gives Cloud Monitoring's Pub/Sub subscription metrics. Those series carry
// the exporter's job and the subscription in subscription_id.
const exporterMetricPrefix = "stackdriver_pubsub_subscription_"

// The exporter's metrics the alerts use.
const (
	backlogMetric   = exporterMetricPrefix + "pubsub_googleapis_com_subscription_num_undelivered_messages"
	oldestAgeMetric = exporterMetricPrefix + "pubsub_googleapis_com_subscription_oldest_unacked_message_age"
)

// peopleSubscriptions returns the Terraform default names of the pull
// subscriptions only people (and gwook replay) read, by variable: Gwook's
// dead-letter topic's and the push subscription's undeliverable topic's.
func peopleSubscriptions(t *testing.T) map[string]string {
	t.Helper()
	tf := loadTerraform(t)
	out := map[string]string{}
	for _, v := range []string{"replay_subscription_name", "undeliverable_subscription_name"} {
		var name string
		tf.eval(t, attr(t, tf.variables[v], "default"), &name)
		out[v] = name
	}
	return out
}

// subscriptionIDs returns the subscriptions a selector's subscription_id
// matcher names: its value, or the values of a plain alternation.
func subscriptionIDs(s selector) []string {
	for _, m := range s.matchers {
		if m.Name != "subscription_id" {
			continue
		}
		switch {
		case m.Type == labels.MatchEqual:
			return []string{m.Value}
		case m.Type == labels.MatchRegexp && plainAlternation.MatchString(m.Value):
			return strings.Split(m.Value, "|")
		}
	}
	return nil
}

// checkSubscriptionSelector checks that an exporter selector names its
// subscriptions exactly, and only ones Terraform creates for people.
func checkSubscriptionSelector(t *testing.T, alert string, s selector, subscriptions []string) {
	t.Helper()
	ids := subscriptionIDs(s)
	if len(ids) == 0 {
		t.Errorf("alert %s: selector of %s names no subscription_id (= or a plain alternation)", alert, s.name)
	}
	for _, id := range ids {
		if !slices.Contains(subscriptions, id) {
			t.Errorf("alert %s: %s{subscription_id=%q} is none of Terraform's subscriptions %v", alert, s.name, id, subscriptions)
		}
	}
}

// TestDeadLetterAlerts checks that the backlog of each subscription left to
// people has an alert, and that the age alert covers both and fires before
// Pub/Sub deletes their messages at the end of Terraform's retention.
func TestDeadLetterAlerts(t *testing.T) {
	tf := loadTerraform(t)
	var retentionText string
	tf.eval(t, attr(t, tf.variables["dead_letter_retention_duration"], "default"), &retentionText)
	retention := parseSeconds(t, retentionText)

	backlog := map[string]bool{}
	age := map[string]bool{}
	for _, a := range loadAlerts(t) {
		e, err := parser.NewParser(parser.Options{}).ParseExpr(a.Expr)
		if err != nil {
			t.Fatalf("alert %s: %v", a.Alert, err)
		}
		sels, _ := selectors(a.Expr)
		for _, s := range sels {
			switch s.name {
			case backlogMetric:
				for _, id := range subscriptionIDs(s) {
					backlog[id] = true
				}
			case oldestAgeMetric:
				threshold, ok := comparedWith(e)
				if !ok {
					t.Errorf("alert %s: no comparison of %s with a number", a.Alert, s.name)
					continue
				}
				if held := time.Duration(threshold*float64(time.Second)) + mustDuration(t, a.For); held >= retention {
					t.Errorf("alert %s fires once a message is %s old (threshold and for), not before the %s retention deletes it", a.Alert, held, retention)
				}
				for _, id := range subscriptionIDs(s) {
					age[id] = true
				}
			}
		}
	}
	for variable, sub := range peopleSubscriptions(t) {
		if !backlog[sub] {
			t.Errorf("no alert on the backlog of %s (Terraform %s)", sub, variable)
		}
		if !age[sub] {
			t.Errorf("no alert on the oldest unacked message of %s (Terraform %s)", sub, variable)
		}
	}
}

// comparedWith returns the number the outermost comparison of e compares
// with, a literal or arithmetic of literals.
func comparedWith(e parser.Expr) (float64, bool) {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			break
		}
		e = p.Expr
	}
	b, ok := e.(*parser.BinaryExpr)
	if !ok || !b.Op.IsComparisonOperator() {
		return 0, false
	}
	return constant(b.RHS)
}

// constant evaluates number literals and + - * / between them.
func constant(e parser.Expr) (float64, bool) {
	switch e := e.(type) {
	case *parser.NumberLiteral:
		return e.Val, true
	case *parser.ParenExpr:
		return constant(e.Expr)
	case *parser.BinaryExpr:
		l, lok := constant(e.LHS)
		r, rok := constant(e.RHS)
		if !lok || !rok {
			return 0, false
		}
		switch e.Op {
		case parser.ADD:
			return l + r, true
		case parser.SUB:
			return l - r, true
		case parser.MUL:
			return l * r, true
		case parser.DIV:
			return l / r, true
		}
	}
	return 0, false
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := model.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return time.Duration(d)
}

// checkRunbook checks that a runbook URL points at a heading of the main
// README or infra/README.md.
func checkRunbook(t *testing.T, alert, raw string, docs map[string]map[string]bool) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("alert %s: runbook_url: %v", alert, err)
		return
	}
	for path, anchors := range docs {
		if strings.HasSuffix(u.Path, "/blob/main"+path) {
			if !anchors[u.Fragment] {
				t.Errorf("alert %s: runbook_url %s: %s has no heading #%s", alert, raw, strings.TrimPrefix(path, "/"), u.Fragment)
			}
			return
		}
	}
	t.Errorf("alert %s: runbook_url %s is not a section of README.md or infra/README.md", alert, raw)
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Error("the dashboard needs a title and a uid")
	}
	// Grafana 9 and later read schema 36 and up.
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want 36 or later", d.SchemaVersion)
	}
	var hasDatasource bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" {
			hasDatasource = v.Type == "datasource" && string(v.Query) == `"prometheus"`
		}
		if v.Type == "query" && (v.Datasource == nil || *v.Datasource != prometheusDatasource) {
			t.Errorf("variable %s: datasource %v, want %v", v.Name, v.Datasource, prometheusDatasource)
		}
	}
	if !hasDatasource {
		t.Error(`no variable "datasource" of type datasource for Prometheus`)
	}

	ids := map[int]bool{}
	var cells [][4]int // x, y, w, h of each panel
	for _, p := range d.panels() {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, g)
		}
		for _, c := range cells {
			if g.X < c[0]+c[2] && c[0] < g.X+g.W && g.Y < c[1]+c[3] && c[1] < g.Y+g.H {
				t.Errorf("panel %q overlaps another panel", p.Title)
			}
		}
		cells = append(cells, [4]int{g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d: want a title and at least one query", p.ID)
		}
		if p.Datasource == nil || *p.Datasource != prometheusDatasource {
			t.Errorf("panel %q: datasource %v, want %v", p.Title, p.Datasource, prometheusDatasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != nil && *tg.Datasource != prometheusDatasource {
				t.Errorf("panel %q query %s: datasource %v, want %v", p.Title, tg.RefID, tg.Datasource, prometheusDatasource)
			}
		}
	}

	// Each stage of an event's way has a panel an operator reads it on.
	queries := d.queries()
	for _, stage := range []struct{ what, metric string }{
		{"the outcome of events", "gwook_events_total"},
		{"filter drops by rule", "gwook_filter_drops_total"},
		{"filter drops by application (top 10)", "gwook_stats_top_filtered_events"},
		{"stats writes by result", "gwook_stats_flushes_total"},
		{"stats rows waiting to be written", "gwook_stats_pending_rows"},
		{"events left out of the stats", "gwook_stats_dropped_events_total"},
		{"Svix requests", "gwook_svix_requests_total"},
		{"dead-letter publishes", "gwook_dead_letter_publishes_total"},
		{"dedup claims", "gwook_dedup_claims_total"},
		{"direct delivery attempts", "gwook_delivery_attempts_total"},
		{"direct delivery latency", "gwook_delivery_attempt_duration_seconds"},
		{"the delivery queue's oldest due job", "gwook_delivery_oldest_due_job_age_seconds"},
		{"endpoints disabled", "gwook_delivery_endpoints_disabled_total"},
		{"who makes first attempts", "gwook_delivery_first_attempts_total"},
	} {
		found := false
		for _, q := range queries {
			if strings.Contains(q, stage.metric+"{") || strings.Contains(q, stage.metric+"_bucket{") {
				found = true
			}
		}
		if !found {
			t.Errorf("no dashboard panel shows %s (%s)", stage.what, stage.metric)
		}
	}
}

// TestPromtool runs Prometheus's own check of the rule file, and its rule
// unit tests on the cases in alertCases, when promtool is installed.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH: `promtool check rules` and `promtool test rules` were not run")
	}
	if out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// promtool compares annotations exactly; the cases check which alerts
	// fire with which labels, so they run against a copy without them.
	var f ruleFile
	if err := yaml.UnmarshalStrict(readFile(t, alertsFile), &f); err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for i := range g.Rules {
			g.Rules[i].Annotations = nil
		}
	}
	dir := t.TempDir()
	writeYAML(t, filepath.Join(dir, "alerts.yaml"), f)
	writeYAML(t, filepath.Join(dir, "tests.yaml"), map[string]any{
		"rule_files":          []string{"alerts.yaml"},
		"evaluation_interval": "1m",
		"tests":               alertCases,
	})
	if out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "tests.yaml")).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// promtoolTest is one test group of a promtool rule test file.
type promtoolTest struct {
	Name     string        `json:"name"`
	Interval string        `json:"interval"`
	Series   []inputSeries `json:"input_series"`
	Alerts   []alertTest   `json:"alert_rule_test"`
}

type inputSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type alertTest struct {
	EvalTime  string                `json:"eval_time"`
	AlertName string                `json:"alertname"`
	ExpAlerts []map[string]labelSet `json:"exp_alerts"`
}

type labelSet map[string]string

// fires expects one alert with labels; noAlert expects none.
func fires(l labelSet) []map[string]labelSet { return []map[string]labelSet{{"exp_labels": l}} }

var noAlert = []map[string]labelSet{}

// alertCases feed each alert the series it is for, and check that it fires
// (or, for healthy traffic, does not) with the expected labels.
var alertCases = []promtoolTest{
	{
		Name: "forward errors above 5%", Interval: "1m",
		Series: []inputSeries{
			{`gwook_events_total{job="gwook", instance="a", entry="push", outcome="forwarded"}`, "0+90x30"},
			{`gwook_events_total{job="gwook", instance="a", entry="push", outcome="dead_lettered"}`, "0+10x30"},
		},
		Alerts: []alertTest{{"25m", "GwookForwardErrorRateHigh", fires(labelSet{"severity": "critical"})}},
	},
	{
		Name: "healthy traffic", Interval: "1m",
		Series: []inputSeries{
			{`gwook_events_total{job="gwook", instance="a", entry="push", outcome="forwarded"}`, "0+100x30"},
			{`gwook_events_total{job="gwook", instance="a", entry="push", outcome="unavailable"}`, "0+1x30"},
			// The series Gwook creates at 0 when it starts.
			{`gwook_events_total{job="gwook", instance="a", entry="push", outcome="rate_limited"}`, "0x30"},
			{`gwook_dead_letter_publishes_total{job="gwook", instance="a", reason="rate_limited", result="ok"}`, "0x30"},
			{`gwook_dead_letter_publishes_total{job="gwook", instance="a", reason="unavailable", result="error"}`, "0x30"},
			{`gwook_dedup_errors_total{job="gwook", instance="a", operation="claim"}`, "0x30"},
			{`gwook_panics_recovered_total{job="gwook", instance="a"}`, "0x30"},
			{`gwook_pull_failures_total{job="gwook", instance="a"}`, "0x30"},
			{`up{job="gwook", instance="a"}`, "1x30"},
		},
		Alerts: []alertTest{
			{"25m", "GwookForwardErrorRateHigh", noAlert},
			{"25m", "GwookEventsDeadLettered", noAlert},
			{"25m", "GwookDeadLetterPublishFailing", noAlert},
			{"25m", "GwookNoEvents", noAlert},
			{"25m", "GwookTargetDown", noAlert},
			{"25m", "GwookAbsent", noAlert},
			{"25m", "GwookSvixRateLimited", noAlert},
			{"25m", "GwookDedupErrors", noAlert},
			{"25m", "GwookPanics", noAlert},
			{"25m", "GwookPullFailing", noAlert},
		},
	},
	{
		Name: "events dead-lettered", Interval: "1m",
		Series: []inputSeries{
			{`gwook_dead_letter_publishes_total{job="gwook", instance="a", reason="unavailable", result="ok"}`, "0 0 3 3 3 3 3 3 3 3 3"},
		},
		Alerts: []alertTest{{"8m", "GwookEventsDeadLettered", fires(labelSet{"severity": "warning", "reason": "unavailable"})}},
	},
	{
		Name: "dead-letter publishes failing", Interval: "1m",
		Series: []inputSeries{
			{`gwook_dead_letter_publishes_total{job="gwook", instance="a", reason="rate_limited", result="error"}`, "0 1 2 3 4 5"},
		},
		Alerts: []alertTest{{"4m", "GwookDeadLetterPublishFailing", fires(labelSet{"severity": "critical", "reason": "rate_limited"})}},
	},
	{
		Name: "slow notifications", Interval: "1m",
		Series: []inputSeries{
			{`gwook_http_request_duration_seconds_bucket{job="gwook", instance="a", route="/notifications", method="POST", le="5"}`, "0+50x30"},
			{`gwook_http_request_duration_seconds_bucket{job="gwook", instance="a", route="/notifications", method="POST", le="10"}`, "0+100x30"},
			{`gwook_http_request_duration_seconds_bucket{job="gwook", instance="a", route="/notifications", method="POST", le="+Inf"}`, "0+100x30"},
		},
		Alerts: []alertTest{{"20m", "GwookNotificationsLatencyHigh", fires(labelSet{"severity": "warning"})}},
	},
	{
		// No dead-letter topic, so nothing was published: that counter
		// stays at 0.
		Name: "Svix rate limiting", Interval: "1m",
		Series: []inputSeries{
			{`gwook_events_total{job="gwook", instance="a", entry="direct", outcome="rate_limited"}`, "0+1x20"},
			{`gwook_dead_letter_publishes_total{job="gwook", instance="a", reason="rate_limited", result="ok"}`, "0x20"},
		},
		Alerts: []alertTest{{"10m", "GwookSvixRateLimited", fires(labelSet{"severity": "warning"})}},
	},
	{
		Name: "dedup errors", Interval: "1m",
		Series: []inputSeries{
			{`gwook_dedup_errors_total{job="gwook", instance="a", operation="claim"}`, "0+1x20"},
		},
		Alerts: []alertTest{{"10m", "GwookDedupErrors", fires(labelSet{"severity": "warning", "operation": "claim"})}},
	},
	{
		Name: "pull failing", Interval: "1m",
		Series: []inputSeries{
			// One failure, then quiet; then a failure a minute.
			{`gwook_pull_failures_total{job="gwook", instance="a"}`, "0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1+1x20"},
		},
		Alerts: []alertTest{
			{"15m", "GwookPullFailing", noAlert},
			{"35m", "GwookPullFailing", fires(labelSet{"severity": "warning", "instance": "a"})},
		},
	},
	{
		Name: "stats writes failing", Interval: "1m",
		Series: []inputSeries{
			// Writes work for 5 minutes, then fail every 10 seconds.
			{`gwook_stats_flushes_total{job="gwook", instance="a", result="ok"}`, "0+6x5 30x30"},
			{`gwook_stats_flushes_total{job="gwook", instance="a", result="error"}`, "0x5 0+6x30"},
		},
		Alerts: []alertTest{
			{"5m", "GwookStatsWritesFailing", noAlert},
			{"25m", "GwookStatsWritesFailing", fires(labelSet{"severity": "warning", "instance": "a"})},
		},
	},
	{
		Name: "delivery backlog", Interval: "1m",
		Series: []inputSeries{
			// Two replicas read the same queue; the oldest due job waits
			// 10 s until 10m, then ever longer.
			{`gwook_delivery_oldest_due_job_age_seconds{job="gwook", instance="a"}`, "10x10 60+60x30"},
			{`gwook_delivery_oldest_due_job_age_seconds{job="gwook", instance="b"}`, "10x10 60+60x30"},
		},
		Alerts: []alertTest{
			{"10m", "GwookDeliveryBacklog", noAlert},
			{"30m", "GwookDeliveryBacklog", fires(labelSet{"severity": "warning"})},
		},
	},
	{
		Name: "no events", Interval: "1m",
		Series: []inputSeries{
			// The last event arrives at 10m.
			{`gwook_events_total{job="gwook", instance="a", entry="push", outcome="forwarded"}`, "0+1x10 10x60"},
		},
		Alerts: []alertTest{
			{"35m", "GwookNoEvents", noAlert},
			{"45m", "GwookNoEvents", fires(labelSet{"severity": "warning"})},
		},
	},
	{
		Name: "no event since start", Interval: "1m",
		Series: []inputSeries{
			{`up{job="gwook", instance="a"}`, "1x40"},
			{`gwook_events_total{job="gwook", instance="a", entry="push", outcome="forwarded"}`, "0x40"},
			{`gwook_events_total{job="gwook", instance="a", entry="direct", outcome="forwarded"}`, "0x40"},
		},
		Alerts: []alertTest{{"20m", "GwookNoEvents", fires(labelSet{"severity": "warning"})}},
	},
	{
		Name: "target down", Interval: "1m",
		Series: []inputSeries{
			{`up{job="gwook", instance="a"}`, "1 1 0 0 0 0 0 0 0 0 0"},
		},
		Alerts: []alertTest{{"9m", "GwookTargetDown", fires(labelSet{"severity": "critical", "job": "gwook", "instance": "a"})}},
	},
	{
		Name: "no target", Interval: "1m",
		Series: []inputSeries{
			{`up{job="other", instance="b"}`, "1x20"},
		},
		Alerts: []alertTest{{"15m", "GwookAbsent", fires(labelSet{"severity": "critical", "job": "gwook"})}},
	},
	{
		Name: "dead letters waiting for a replay", Interval: "1m",
		Series: []inputSeries{
			{backlogMetric + `{job="stackdriver-exporter", project_id="p", subscription_id="gwook-dead-letter-replay", unit=""}`, "0 0 3x60"},
			// Backlog elsewhere is not Gwook's to report.
			{backlogMetric + `{job="stackdriver-exporter", project_id="p", subscription_id="gwook-push", unit=""}`, "50x60"},
		},
		Alerts: []alertTest{
			{"20m", "GwookDeadLetterBacklog", noAlert},
			{"40m", "GwookDeadLetterBacklog", fires(labelSet{"severity": "warning", "subscription_id": "gwook-dead-letter-replay"})},
			{"40m", "GwookUndeliverableEvents", noAlert},
		},
	},
	{
		Name: "undeliverable events", Interval: "1m",
		Series: []inputSeries{
			{backlogMetric + `{job="stackdriver-exporter", project_id="p", subscription_id="events-undeliverable-inspect", unit=""}`, "0 0 1x20"},
		},
		Alerts: []alertTest{
			{"4m", "GwookUndeliverableEvents", noAlert},
			{"10m", "GwookUndeliverableEvents", fires(labelSet{"severity": "warning", "subscription_id": "events-undeliverable-inspect"})},
			{"10m", "GwookDeadLetterBacklog", noAlert},
		},
	},
	{
		// The oldest message passes 5 days (432000 s) at 34m.
		Name: "dead letters near expiry", Interval: "1m",
		Series: []inputSeries{
			{oldestAgeMetric + `{job="stackdriver-exporter", project_id="p", subscription_id="events-undeliverable-inspect", unit="s"}`, "430000+60x60"},
			{oldestAgeMetric + `{job="stackdriver-exporter", project_id="p", subscription_id="gwook-dead-letter-replay", unit="s"}`, "3600+60x60"},
		},
		Alerts: []alertTest{
			{"40m", "GwookDeadLettersNearExpiry", noAlert},
			{"50m", "GwookDeadLettersNearExpiry", fires(labelSet{"severity": "critical", "subscription_id": "events-undeliverable-inspect"})},
		},
	},
	{
		Name: "panics", Interval: "1m",
		Series: []inputSeries{
			{`gwook_panics_recovered_total{job="gwook", instance="a"}`, "0 0 1 1 1 1"},
		},
		Alerts: []alertTest{{"4m", "GwookPanics", fires(labelSet{"severity": "warning"})}},
	},
}
