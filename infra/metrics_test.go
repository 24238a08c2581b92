package infra_test

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/svixserver"
)

// exposition is what a running Gwook serves at /metrics.
type exposition map[string]*dto.MetricFamily

// scrapeGwook runs Gwook in-process and drives it down every path that
// creates a metric series: an event forwarded, an event dead-lettered after
// Svix answered 503, a request without credentials, and a Redis that does
// not answer (so duplicate suppression fails open and counts errors). The
// dead-letter topic lives on an in-process Pub/Sub fake.
func scrapeGwook(t *testing.T) exposition {
	t.Helper()
	ctx := context.Background()
	const project, topic = "infra-test", "dead-letter"

	fake := pstest.NewServer()
	t.Cleanup(func() { _ = fake.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", fake.Addr)
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic}); err != nil {
		t.Fatal(err)
	}

	g := gwooktest.Start(t, map[string]string{
		"PUBSUB_PROJECT_ID": project,
		"DEAD_LETTER_TOPIC": topic,
		// Nothing listens on port 1.
		"REDIS_URL":     "redis://127.0.0.1:1/0",
		"REDIS_TIMEOUT": "100ms",
	}, app.Options{Version: "test"})

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
	for _, e := range []ingest.Entry{ingest.EntryDirect, ingest.EntryPush, ingest.EntryReplay} {
		entries = append(entries, string(e))
	}
	var reasons []string
	for _, r := range []deadletter.Reason{deadletter.ReasonRateLimited, deadletter.ReasonUnavailable, deadletter.ReasonInvalidEvent} {
		reasons = append(reasons, string(r))
	}
	return map[string]map[string][]string{
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
		if s.name == "up" {
			continue // a target label of every scrape, not exposed by Gwook
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
// have: their own, Prometheus's target labels, or le of histogram buckets.
func checkGrouping(t *testing.T, e exposition, where string, g grouping) {
	t.Helper()
	have := map[string]bool{"job": true, "instance": true}
	for _, name := range g.metrics {
		if strings.HasSuffix(name, "_bucket") {
			have["le"] = true
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
