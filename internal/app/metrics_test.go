package app_test

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/svixserver"
)

// scrape reads /metrics and returns each sample as "name{labels}" -> value,
// labels sorted as Prometheus prints them.
func scrape(t *testing.T, g *gwooktest.Gwook) map[string]float64 {
	t.Helper()
	families := g.MetricFamilies(t)
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			out[sampleName(name, m.GetLabel())] = sampleValue(m)
		}
	}
	return out
}

func sampleName(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = l.GetName() + "=" + l.GetValue()
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func TestMetricsAfterAKnownSequence(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"SVIX_RETRY_MAX_ATTEMPTS": "3"}, app.Options{Version: "v-test"})
	tag := uniqueTag(t)

	g.Direct(t, eventWithKey(tag+"-1", "evt_m1"))              // forwarded
	g.Svix.Script(svixserver.Response{Status: 503})            // one retry, then accepted
	g.Direct(t, eventWithKey(tag+"-2", "evt_m2"))              // forwarded after a retry
	g.Direct(t, eventWithKey(tag+"-1", "evt_m3"))              // duplicate inside the window
	g.Push(t, eventWithKey(tag+"-3", "evt_m4"))                // forwarded, push
	g.Direct(t, []byte(`{"id":"x"}`))                          // invalid
	g.Post(t, "/notifications?token=wrong", nil, []byte(`{}`)) // bad credentials
	g.Svix.SetDefault(svixserver.Response{Status: 500})        // unavailable after 3 attempts
	g.Direct(t, eventWithKey(tag+"-4", "evt_m5"))
	g.Svix.SetDefault(svixserver.Response{})

	got := scrape(t, g)
	want := map[string]float64{
		`gwook_events_total{entry=direct,outcome=forwarded}`:                    2,
		`gwook_events_total{entry=direct,outcome=duplicate}`:                    1,
		`gwook_events_total{entry=direct,outcome=invalid}`:                      1,
		`gwook_events_total{entry=direct,outcome=unavailable}`:                  1,
		`gwook_events_total{entry=push,outcome=forwarded}`:                      1,
		`gwook_svix_requests_total{status_class=2xx}`:                           3,
		`gwook_svix_requests_total{status_class=5xx}`:                           4,
		`gwook_svix_retries_total`:                                              3,
		`gwook_svix_request_duration_seconds`:                                   7,
		`gwook_dedup_claims_total{result=claimed}`:                              4,
		`gwook_dedup_claims_total{result=duplicate}`:                            1,
		`gwook_auth_failures_total{method=token}`:                               1,
		`gwook_http_requests_total{code=202,method=POST,route=/notifications}`:  2,
		`gwook_http_requests_total{code=200,method=POST,route=/notifications}`:  1,
		`gwook_http_requests_total{code=409,method=POST,route=/notifications}`:  1,
		`gwook_http_requests_total{code=400,method=POST,route=/notifications}`:  1,
		`gwook_http_requests_total{code=401,method=POST,route=/notifications}`:  1,
		`gwook_http_requests_total{code=500,method=POST,route=/notifications}`:  1,
		`gwook_http_request_duration_seconds{method=POST,route=/notifications}`: 7,
		`gwook_http_requests_in_flight`:                                         1, // the scrape itself
		`gwook_build_info{go_version=` + goVersion(got) + `,version=v-test}`:    1,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	for name := range got {
		for _, unbounded := range []string{"evt_", "usr_", "user.signed_up", tag} {
			if strings.Contains(name, unbounded) {
				t.Errorf("metric %s has an unbounded label value", name)
			}
		}
	}
	for _, runtime := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[runtime]; !ok {
			t.Errorf("%s missing: the runtime and process collectors must be on", runtime)
		}
	}
}

// goVersion finds the go_version label of gwook_build_info.
func goVersion(samples map[string]float64) string {
	for name := range samples {
		if rest, ok := strings.CutPrefix(name, "gwook_build_info{go_version="); ok {
			v, _, _ := strings.Cut(rest, ",")
			return v
		}
	}
	return "missing"
}
