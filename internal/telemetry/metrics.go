// Package telemetry is what Gwook tells operators about itself: Prometheus
// metrics, OpenTelemetry traces and Sentry error reports.
package telemetry

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds Gwook's Prometheus metrics, in a registry of their own. Every
// label has a bounded set of values: no event ids, user ids or event types.
// A nil *Metrics records nothing, so callers need no checks.
type Metrics struct {
	registry *prometheus.Registry

	httpRequests      *prometheus.CounterVec
	httpDuration      *prometheus.HistogramVec
	httpInFlight      prometheus.Gauge
	events            *prometheus.CounterVec
	svixRequests      *prometheus.CounterVec
	svixDuration      prometheus.Histogram
	svixRetries       prometheus.Counter
	dedupClaims       *prometheus.CounterVec
	dedupErrors       *prometheus.CounterVec
	deadLetters       *prometheus.CounterVec
	authFailures      *prometheus.CounterVec
	recoveredPanics   prometheus.Counter
	deadLetterLatency prometheus.Histogram
	requestsShed      prometheus.Counter
}

// latencyBuckets cover a fast local hop to a Svix call with every retry.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20}

// NewMetrics registers Gwook's metrics, the Go runtime and process
// collectors, and gwook_build_info for version.
func NewMetrics(version string) *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(r)
	buildInfo := f.NewGaugeVec(prometheus.GaugeOpts{Name: "gwook_build_info", Help: "Always 1; labels say which build is running."}, []string{"version", "go_version"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	return &Metrics{
		registry:          r,
		httpRequests:      f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_http_requests_total", Help: "HTTP requests by route, method and status code."}, []string{"route", "method", "code"}),
		httpDuration:      f.NewHistogramVec(prometheus.HistogramOpts{Name: "gwook_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route and method.", Buckets: latencyBuckets}, []string{"route", "method"}),
		httpInFlight:      f.NewGauge(prometheus.GaugeOpts{Name: "gwook_http_requests_in_flight", Help: "HTTP requests being served now."}),
		events:            f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_events_total", Help: "Events by how they arrived (push, direct, replay) and how they ended (forwarded, filtered, duplicate, invalid, rejected, rate_limited, unavailable, dead_lettered, dedup_unavailable)."}, []string{"entry", "outcome"}),
		svixRequests:      f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_svix_requests_total", Help: "Requests to Svix by status class (2xx, 4xx, 5xx, or error when no answer came)."}, []string{"status_class"}),
		svixDuration:      f.NewHistogram(prometheus.HistogramOpts{Name: "gwook_svix_request_duration_seconds", Help: "Time of one request to Svix (one attempt).", Buckets: latencyBuckets}),
		svixRetries:       f.NewCounter(prometheus.CounterOpts{Name: "gwook_svix_retries_total", Help: "Requests to Svix that were retries of an earlier attempt."}),
		dedupClaims:       f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_dedup_claims_total", Help: "Duplicate-suppression claims by result (claimed, duplicate, error)."}, []string{"result"}),
		dedupErrors:       f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_dedup_errors_total", Help: "Failures of the duplicate-suppression store by operation (claim, release)."}, []string{"operation"}),
		deadLetters:       f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_dead_letter_publishes_total", Help: "Publishes to the dead-letter topic by reason and result (ok, error)."}, []string{"reason", "result"}),
		deadLetterLatency: f.NewHistogram(prometheus.HistogramOpts{Name: "gwook_dead_letter_publish_duration_seconds", Help: "Time to publish one event to the dead-letter topic.", Buckets: latencyBuckets}),
		authFailures:      f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_auth_failures_total", Help: "Requests refused for bad or missing credentials, by the method tried (basic, oidc, token, none)."}, []string{"method"}),
		recoveredPanics:   f.NewCounter(prometheus.CounterOpts{Name: "gwook_panics_recovered_total", Help: "Handler panics turned into 500 answers."}),
		requestsShed:      f.NewCounter(prometheus.CounterOpts{Name: "gwook_requests_shed_total", Help: "Requests to /notifications answered 503 unread because MAX_IN_FLIGHT were being processed."}),
	}
}

// Handler serves the metrics in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Event counts one event's fate.
func (m *Metrics) Event(entry, outcome string) {
	if m != nil {
		m.events.WithLabelValues(entry, outcome).Inc()
	}
}

// SvixRequest records one request to Svix: its status (0 when no answer
// came), how long it took, and whether it was a retry.
func (m *Metrics) SvixRequest(status int, took time.Duration, retry bool) {
	if m == nil {
		return
	}
	m.svixRequests.WithLabelValues(statusClass(status)).Inc()
	m.svixDuration.Observe(took.Seconds())
	if retry {
		m.svixRetries.Inc()
	}
}

func statusClass(status int) string {
	switch {
	case status >= 200 && status < 300:
		return "2xx"
	case status >= 300 && status < 400:
		return "3xx"
	case status >= 400 && status < 500:
		return "4xx"
	case status >= 500 && status < 600:
		return "5xx"
	}
	return "error"
}

// DedupClaim counts one claim by result: claimed, duplicate or error.
func (m *Metrics) DedupClaim(result string) {
	if m == nil {
		return
	}
	m.dedupClaims.WithLabelValues(result).Inc()
	if result == "error" {
		m.dedupErrors.WithLabelValues("claim").Inc()
	}
}

// DedupReleaseError counts a failed release.
func (m *Metrics) DedupReleaseError() {
	if m != nil {
		m.dedupErrors.WithLabelValues("release").Inc()
	}
}

// DeadLetterPublish counts one publish to the dead-letter topic.
func (m *Metrics) DeadLetterPublish(reason string, took time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.deadLetters.WithLabelValues(reason, result).Inc()
	m.deadLetterLatency.Observe(took.Seconds())
}

// AuthFailure counts a refused request by the method it tried.
func (m *Metrics) AuthFailure(method string) {
	if m != nil {
		m.authFailures.WithLabelValues(method).Inc()
	}
}

// RequestShed counts a request turned away by the in-flight limit.
func (m *Metrics) RequestShed() {
	if m != nil {
		m.requestsShed.Inc()
	}
}

// PanicRecovered counts a handler panic.
func (m *Metrics) PanicRecovered() {
	if m != nil {
		m.recoveredPanics.Inc()
	}
}
