package infra_test

import (
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/googletoken"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/redistest"
	"github.com/gwook/gwook/test/svixserver"
)

// exposition is what a running Gwook serves at /metrics.
type exposition map[string]*dto.MetricFamily

// scrapeGwook runs Gwook in-process and drives it down every path that
// creates a metric series: an event dropped by its application's filter
// (counted, written and read back as a top filtered application), an event
// forwarded, an event dead-lettered after Svix answered 503, a request
// without credentials, and a Redis that does not answer (so duplicate
// suppression fails open and counts errors). The dead-letter topic lives on
// the Pub/Sub emulator.
func scrapeGwook(t *testing.T) exposition {
	t.Helper()
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "dead-letter"))

	// The application and its filter, which drops everything, are in the
	// database before Gwook starts, so its first event is filtered and the
	// first stats write holds it.
	dataDir := t.TempDir()
	appID := "usr_metrics_filtered"
	st, err := store.Open(t.Context(), "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateApplication(t.Context(), store.Application{ID: appID, Name: appID}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutFilter(t.Context(), store.Filter{ApplicationID: appID, Expression: "false"}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	g := gwooktest.Start(t, map[string]string{
		"PUBSUB_PROJECT_ID": emu.Project,
		"DEAD_LETTER_TOPIC": topic,
		// Nothing listens on port 1.
		"REDIS_URL":            "redis://127.0.0.1:1/0",
		"REDIS_TIMEOUT":        "100ms",
		"STATS_FLUSH_INTERVAL": "100ms",
		"DATA_DIR":             dataDir,
	}, app.Options{Version: "test"})

	filtered := []byte(`{"id":"evt_metrics_filtered","type":"user.signed_up","source":"metrics","project":"p","user_id":"` + appID +
		`","time":"2026-12-01T10:00:00Z","data":{}}`)
	if r := g.Direct(t, filtered); !strings.Contains(string(r.Body), `"outcome":"filtered"`) {
		t.Fatalf("an event of an application whose filter drops everything: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, ok := exposition(g.MetricFamilies(t))["gwook_stats_top_filtered_events"]
		if ok && len(f.GetMetric()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gwook_stats_top_filtered_events did not appear within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if r := g.Direct(t, readFile(t, filepath.Join("..", "test", "events", "event-01.json"))); r.Status != http.StatusAccepted {
		t.Fatalf("forwarding an event: %d %s", r.Status, r.Body)
	}
	g.Svix.SetDefault(svixserver.Response{Status: http.StatusServiceUnavailable})
	if r := g.Direct(t, readFile(t, filepath.Join("..", "test", "events", "event-02.json"))); !strings.Contains(string(r.Body), `"dead_lettered":true`) {
		t.Fatalf("dead-lettering an event: %d %s", r.Status, r.Body)
	}
	g.Svix.SetDefault(svixserver.Response{})
	if r := g.Post(t, "/notifications", http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)); r.Status != http.StatusUnauthorized {
		t.Fatalf("a request without credentials: %d", r.Status)
	}
	return g.MetricFamilies(t)
}

// family returns the family a sample name belongs to: the name itself, or
// a histogram's or summary's _bucket, _sum or _count series.
func (e exposition) family(name string) (*dto.MetricFamily, bool) {
	if f, ok := e[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := e[base]
		if !ok {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return f, true
		case dto.MetricType_SUMMARY:
			return f, suffix != "_bucket"
		}
	}
	return nil, false
}

// labelValues returns the values a label of the family has in the scrape.
func labelValues(f *dto.MetricFamily, label string) []string {
	var out []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && !slices.Contains(out, l.GetValue()) {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// codeLabelValues are the values the code gives the labels that alerts and
// dashboards select on, by metric: from the packages' own constants where
// they exist, else the literals of internal/telemetry/metrics.go. A label
// not listed is checked against the values seen in the scrape.
func codeLabelValues() map[string]map[string][]string {
	var outcomes []string
	for _, o := range []pipeline.Outcome{
		pipeline.Forwarded, pipeline.Filtered, pipeline.Duplicate, pipeline.Invalid, pipeline.Rejected,
		pipeline.RateLimited, pipeline.Unavailable, pipeline.DedupUnavailable, pipeline.InFlight,
	} {
		outcomes = append(outcomes, string(o))
	}
	// A dead-lettered event is counted under this outcome instead.
	outcomes = append(outcomes, "dead_lettered")
	var entries []string
	for _, e := range []pipeline.Entry{pipeline.EntryDirect, pipeline.EntryPush, pipeline.EntryReplay} {
		entries = append(entries, string(e))
	}
	var reasons []string
	for _, r := range []deadletter.Reason{deadletter.ReasonRateLimited, deadletter.ReasonUnavailable, deadletter.ReasonInvalidEvent} {
		reasons = append(reasons, string(r))
	}
	rules := []string{string(pipeline.RuleGlobalTypes)}
	for _, r := range []filter.Rule{filter.RuleIncludeTypes, filter.RuleExcludeTypes, filter.RuleExpression,
		filter.RuleExpressionError, filter.RuleInvalidFilter} {
		rules = append(rules, string(r))
	}
	return map[string]map[string][]string{
		"gwook_filter_drops_total":          {"rule": rules},
		"gwook_events_total":                {"outcome": outcomes, "entry": entries},
		"gwook_dead_letter_publishes_total": {"reason": reasons, "result": {"ok", "error"}},
		"gwook_dedup_claims_total":          {"result": {"claimed", "own", "duplicate", "in_flight", "error"}},
		"gwook_dedup_errors_total":          {"operation": {"claim", "commit", "release"}},
		"gwook_svix_requests_total":         {"status_class": {"2xx", "3xx", "4xx", "5xx", "error"}},
	}
}

// plainAlternation matches a regexp matcher that is only literal values
// separated by |, which can be checked value by value.
var plainAlternation = regexp.MustCompile(`^[\w/.:-]+(\|[\w/.:-]+)*$`)

// checkSelectors checks that each selector of expr names a metric Gwook
// exposes (or Prometheus's own up), with labels it has and values it can
// take. where says which query it is.
func checkSelectors(t *testing.T, e exposition, where, expr string) {
	t.Helper()
	sels, groups, err := parseQuery(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	for _, g := range groups {
		checkGrouping(t, e, where, g)
	}
	known := codeLabelValues()
	for _, s := range sels {
		if s.name == "" {
			t.Errorf("%s: a selector without a metric name", where)
			continue
		}
		if s.name == "up" || strings.HasPrefix(s.name, exporterMetricPrefix) {
			continue // Prometheus's own, or the stackdriver exporter's
		}
		f, ok := e.family(s.name)
		if !ok {
			t.Errorf("%s: Gwook exposes no metric %s", where, s.name)
			continue
		}
		for _, m := range s.matchers {
			checkMatcher(t, where, s.name, f, m, known[f.GetName()][m.Name])
		}
	}
}

func checkMatcher(t *testing.T, where, metric string, f *dto.MetricFamily, m *labels.Matcher, codeValues []string) {
	t.Helper()
	switch {
	case m.Name == "job" || m.Name == "instance":
		return // target labels Prometheus adds
	case m.Name == "le" && strings.HasSuffix(metric, "_bucket"):
		return
	}
	seen := labelValues(f, m.Name)
	if len(seen) == 0 && codeValues == nil {
		t.Errorf("%s: %s has no label %s", where, f.GetName(), m.Name)
		return
	}
	if m.Type == labels.MatchNotEqual || m.Type == labels.MatchNotRegexp {
		return
	}
	values := []string{m.Value}
	if m.Type == labels.MatchRegexp {
		if !plainAlternation.MatchString(m.Value) {
			return
		}
		values = strings.Split(m.Value, "|")
	}
	allowed := codeValues
	if allowed == nil {
		allowed = seen
	}
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			t.Errorf("%s: %s{%s=%q}: Gwook never sets that value (it sets %v)", where, f.GetName(), m.Name, v, allowed)
		}
	}
}

// checkGrouping checks that an aggregation groups by labels its series
// have: their own, Prometheus's target labels, le of histogram buckets, or
// the subscription labels of the stackdriver exporter's Pub/Sub series.
func checkGrouping(t *testing.T, e exposition, where string, g grouping) {
	t.Helper()
	have := map[string]bool{"job": true, "instance": true}
	for _, name := range g.metrics {
		if strings.HasSuffix(name, "_bucket") {
			have["le"] = true
		}
		if strings.HasPrefix(name, exporterMetricPrefix) {
			// The monitored resource's labels.
			have["project_id"], have["subscription_id"] = true, true
		}
		if f, ok := e.family(name); ok {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					have[l.GetName()] = true
				}
			}
		}
	}
	for _, l := range g.labels {
		if !have[l] {
			t.Errorf("%s: groups by %s, which none of %v has", where, l, g.metrics)
		}
	}
}

// TestObservabilityUsesWhatGwookExposes checks every metric, label and
// label value the alerts and the dashboard select against a scrape of a
// running Gwook, and that the dashboard shows every gwook_ metric.
func TestObservabilityUsesWhatGwookExposes(t *testing.T) {
	e := scrapeGwook(t)

	t.Run("alerts", func(t *testing.T) {
		for _, a := range loadAlerts(t) {
			checkSelectors(t, e, "alert "+a.Alert, a.Expr)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		d := loadDashboard(t)
		vars := map[string]string{"job": serviceMonitorJob(t)}
		shown := map[string]bool{}
		for where, raw := range d.queries() {
			expr, err := expandGrafana(raw, vars)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			checkSelectors(t, e, where, expr)
			sels, _ := selectors(expr)
			for _, s := range sels {
				if f, ok := e.family(s.name); ok {
					shown[f.GetName()] = true
				}
			}
		}
		for _, v := range d.Templating.List {
			if m := labelValuesQuery.FindStringSubmatch(string(v.Query)); m != nil {
				if _, ok := e.family(m[1]); !ok {
					t.Errorf("variable %s: Gwook exposes no metric %s", v.Name, m[1])
				}
			}
		}
		for name := range e {
			if strings.HasPrefix(name, "gwook_") && !shown[name] {
				t.Errorf("no dashboard panel shows %s", name)
			}
		}
	})
}

// labelValuesQuery matches a Grafana label_values(metric, label) query.
var labelValuesQuery = regexp.MustCompile(`label_values\(\s*([A-Za-z_:][\w:]*)`)

// TestAlertSeriesExistFromStart starts Gwook in several configurations, the
// smallest included, and checks before any traffic that every series an
// alert selects is on /metrics: each metric, with a series for every value
// its matchers name, carrying the labels the alert groups by. rate() and
// increase() see nothing of a series that appears with its first event.
func TestAlertSeriesExistFromStart(t *testing.T) {
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "dead-letter"))
	alerts := loadAlerts(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		opts app.Options
	}{
		{
			name: "smallest: Redis and a dead-letter topic, push token only",
			env: map[string]string{
				"AUTH_USERNAME": "", "AUTH_PASSWORD": "",
				"REDIS_URL":         redistest.SharedURL(),
				"PUBSUB_PROJECT_ID": emu.Project, "DEAD_LETTER_TOPIC": topic,
			},
		},
		{
			name: "no Redis, no dead-letter topic, OIDC",
			env: map[string]string{
				"PUBSUB_VERIFICATION_TOKEN":   "",
				"PUBSUB_PUSH_AUDIENCE":        "https://gwook.example.com/notifications",
				"PUBSUB_PUSH_SERVICE_ACCOUNT": "gwook-push@p.iam.gserviceaccount.com",
			},
			opts: app.Options{PushKeys: googletoken.NewIssuer(t).KeySet()},
		},
		{
			name: "no duplicate suppression, producers only",
			env:  map[string]string{"DEDUP_TTL": "0", "PUBSUB_VERIFICATION_TOKEN": ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Version = "test"
			e := exposition(gwooktest.Start(t, tc.env, tc.opts).MetricFamilies(t))
			for _, a := range alerts {
				sels, groups, err := parseQuery(a.Expr)
				if err != nil {
					t.Fatalf("alert %s: %v", a.Alert, err)
				}
				for _, s := range sels {
					checkSeriesExist(t, e, "alert "+a.Alert, s)
				}
				for _, g := range groups {
					checkGrouping(t, e, "alert "+a.Alert, g)
				}
			}
		})
	}
}

// checkSeriesExist checks that e has a series of the selector's metric for
// each combination of the values its matchers name (a plain alternation
// value by value). Prometheus's target labels are left out, and so are
// Prometheus's and the stackdriver exporter's own metrics.
func checkSeriesExist(t *testing.T, e exposition, where string, s selector) {
	t.Helper()
	if s.name == "up" || strings.HasPrefix(s.name, exporterMetricPrefix) {
		return
	}
	f, ok := e.family(s.name)
	if !ok {
		t.Errorf("%s: no metric %s on /metrics at startup", where, s.name)
		return
	}
	alternatives := [][]*labels.Matcher{{}}
	for _, m := range s.matchers {
		if m.Name == "job" || m.Name == "instance" || (m.Name == "le" && strings.HasSuffix(s.name, "_bucket")) {
			continue
		}
		options := []*labels.Matcher{m}
		if m.Type == labels.MatchRegexp && plainAlternation.MatchString(m.Value) {
			options = nil
			for _, v := range strings.Split(m.Value, "|") {
				options = append(options, labels.MustNewMatcher(labels.MatchEqual, m.Name, v))
			}
		}
		var next [][]*labels.Matcher
		for _, prefix := range alternatives {
			for _, o := range options {
				next = append(next, append(slices.Clone(prefix), o))
			}
		}
		alternatives = next
	}
	for _, ms := range alternatives {
		if !slices.ContainsFunc(f.GetMetric(), func(m *dto.Metric) bool { return matchesAll(m, ms) }) {
			t.Errorf("%s: no series %s%v on /metrics at startup", where, f.GetName(), ms)
		}
	}
}

// matchesAll reports whether the labels of m satisfy every matcher; a
// missing label is the empty value, as in PromQL.
func matchesAll(m *dto.Metric, matchers []*labels.Matcher) bool {
	values := map[string]string{}
	for _, l := range m.GetLabel() {
		values[l.GetName()] = l.GetValue()
	}
	for _, mt := range matchers {
		if !mt.Matches(values[mt.Name]) {
			return false
		}
	}
	return true
}
