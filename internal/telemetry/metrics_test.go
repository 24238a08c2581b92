package telemetry_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gwook/gwook/internal/telemetry"
)

// scrape serves m's /metrics and returns each counter and histogram
// gauge sample as "name{label=value,...}" (labels sorted) -> value or count.
func scrape(t *testing.T, m *telemetry.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(labels)
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// series returns the samples of metric in samples.
func series(samples map[string]float64, metric string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range samples {
		if strings.HasPrefix(k, metric+"{") {
			out[k] = v
		}
	}
	return out
}

// TestKnownSeriesExistFromTheStart checks that a fresh Metrics exposes every
// known label combination of its vectors at 0, before anything happened.
func TestKnownSeriesExistFromTheStart(t *testing.T) {
	got := scrape(t, telemetry.NewMetrics("test"))
	for metric, want := range map[string]int{
		"gwook_events_total":                  5 * 11, // entries x outcomes
		"gwook_svix_requests_total":           5,
		"gwook_dedup_claims_total":            5,
		"gwook_dedup_errors_total":            3,
		"gwook_dead_letter_publishes_total":   3 * 2, // reasons x results
		"gwook_auth_failures_total":           6,
		"gwook_http_request_duration_seconds": 1,
		"gwook_filter_drops_total":            7,
		"gwook_stats_flushes_total":           2,
	} {
		s := series(got, metric)
		if len(s) != want {
			t.Errorf("%s: %d series at start, want %d: %v", metric, len(s), want, s)
		}
		for k, v := range s {
			if v != 0 {
				t.Errorf("%s = %v at start, want 0", k, v)
			}
		}
	}
	for _, k := range []string{
		"gwook_events_total{entry=push,outcome=forwarded}",
		"gwook_events_total{entry=direct,outcome=dead_lettered}",
		"gwook_events_total{entry=replay,outcome=in_flight}",
		"gwook_events_total{entry=push,outcome=dedup_unavailable}",
		"gwook_dedup_claims_total{result=own}",
		"gwook_dedup_claims_total{result=in_flight}",
		"gwook_dedup_errors_total{operation=release}",
		"gwook_dedup_errors_total{operation=commit}",
		"gwook_dead_letter_publishes_total{reason=invalid_event,result=error}",
		"gwook_svix_requests_total{status_class=error}",
		"gwook_auth_failures_total{method=oidc}",
		"gwook_http_request_duration_seconds{method=POST,route=/notifications}",
		"gwook_svix_retries_total{}",
		"gwook_panics_recovered_total{}",
	} {
		if v, ok := got[k]; !ok || v != 0 {
			t.Errorf("%s: present %v, value %v; want present at 0", k, ok, v)
		}
	}
}

// TestRecordingMovesOnlyItsSeries checks that counting moves the series of
// the recorded values and no other of the ones created at start.
func TestRecordingMovesOnlyItsSeries(t *testing.T) {
	m := telemetry.NewMetrics("test")
	m.Event("push", "dead_lettered")
	m.DedupClaim("error")
	m.DeadLetterPublish("unavailable", time.Millisecond, nil)
	got := scrape(t, m)
	moved := map[string]float64{}
	for k, v := range got {
		if v != 0 && strings.HasPrefix(k, "gwook_") && !strings.HasPrefix(k, "gwook_build_info") {
			moved[k] = v
		}
	}
	want := map[string]float64{
		"gwook_events_total{entry=push,outcome=dead_lettered}":            1,
		"gwook_dedup_claims_total{result=error}":                          1,
		"gwook_dedup_errors_total{operation=claim}":                       1,
		"gwook_dead_letter_publishes_total{reason=unavailable,result=ok}": 1,
		"gwook_dead_letter_publish_duration_seconds{}":                    1,
	}
	if len(moved) != len(want) {
		t.Errorf("moved %v, want %v", moved, want)
	}
	for k, v := range want {
		if moved[k] != v {
			t.Errorf("%s = %v, want %v", k, moved[k], v)
		}
	}
}

// TestTopFilteredKeepsOnlyTheLatestApplications checks that a refresh of
// the top filtered applications replaces the earlier ones, so the label's
// values stay as few as one refresh gives.
func TestTopFilteredKeepsOnlyTheLatestApplications(t *testing.T) {
	m := telemetry.NewMetrics("test")
	m.SetTopFiltered(map[string]int64{"app_a": 5, "app_b": 2})
	m.SetTopFiltered(map[string]int64{"app_c": 7})
	got := series(scrape(t, m), "gwook_stats_top_filtered_events")
	if len(got) != 1 || got["gwook_stats_top_filtered_events{application_id=app_c}"] != 7 {
		t.Errorf("after two refreshes: %v, want only app_c at 7", got)
	}
}
