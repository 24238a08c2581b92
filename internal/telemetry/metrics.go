// Package telemetry is what Gwook tells operators about itself: Prometheus
// metrics, OpenTelemetry traces and Sentry error reports.
package telemetry

import (
	"net/http"
	"runtime"
	"slices"
	"strings"
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
	svixUnauthorized  prometheus.Counter
	dedupClaims       *prometheus.CounterVec
	dedupErrors       *prometheus.CounterVec
	deadLetters       *prometheus.CounterVec
	authFailures      *prometheus.CounterVec
	recoveredPanics   prometheus.Counter
	deadLetterLatency prometheus.Histogram
	requestsShed      prometheus.Counter
	tokenRequests     *prometheus.CounterVec
	filterDrops       *prometheus.CounterVec
	statsFlushes      *prometheus.CounterVec
	statsFlushTime    prometheus.Histogram
	statsRows         prometheus.Counter
	statsPending      prometheus.Gauge
	statsDropped      prometheus.Counter
	topFiltered       *prometheus.GaugeVec
	deliveryAttempts  *prometheus.CounterVec
	deliveryDuration  prometheus.Histogram
	deliveryJobs      prometheus.Gauge
	deliveryOldestDue prometheus.Gauge
	deliveryBacklogOK prometheus.Gauge
	endpointsDisabled *prometheus.CounterVec
	firstAttempts     *prometheus.CounterVec
	pullFailures      prometheus.Counter
}

// latencyBuckets cover a fast local hop to a Svix call with every retry.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20}

// label is a label of a metric vector with the values it is known to take.
// A vector is created with every combination of its labels' values at 0,
// whatever the configuration, so that an alert's rate() or increase() sees
// the first event: a series that appears at 1 has no earlier sample to
// differ from. A new value is one more line in its list.
type label struct {
	name   string
	values []string
}

// Labels and the values the code gives them.
var (
	entryLabel = label{"entry", []string{
		"push",
		"pull",
		"direct",
		"replay",
		"firehose",
	}}
	// outcomeLabel holds the pipeline's outcomes, and dead_lettered, which
	// is counted instead of the outcome once the event is on the topic.
	outcomeLabel = label{"outcome", []string{
		"forwarded",
		"filtered",
		"duplicate",
		"invalid",
		"rejected",
		"rate_limited",
		"unavailable",
		"dedup_unavailable",
		"in_flight",
		"no_application",
		"dead_lettered",
	}}
	statusClassLabel = label{"status_class", []string{
		"2xx",
		"3xx",
		"4xx",
		"5xx",
		"error",
	}}
	dedupClaimResultLabel = label{"result", []string{
		"claimed",
		"own",
		"duplicate",
		"in_flight",
		"error",
	}}
	dedupOperationLabel = label{"operation", []string{
		"claim",
		"commit",
		"release",
	}}
	deadLetterReasonLabel = label{"reason", []string{
		"rate_limited",
		"unavailable",
		"invalid_event",
	}}
	publishResultLabel = label{"result", []string{
		"ok",
		"error",
	}}
	authMethodLabel = label{"method", []string{
		"basic",
		"oidc",
		"token",
		"api_token",
		"firehose_key",
		"none",
	}}
	// filterRuleLabel names the filter rule that dropped an event: an
	// archived event type, the global FILTER_* types, or a rule of the
	// application's filter (expression_error: the expression failed at
	// run time).
	filterRuleLabel = label{"rule", []string{
		"archived_type",
		"global_types",
		"include_types",
		"exclude_types",
		"expression",
		"expression_error",
		"invalid_filter",
	}}
	// deliveryResultLabel is what followed an attempt of direct delivery
	// (delivery.Verdict): delivered, retried later, the endpoint gone
	// (410) or the message failed for the endpoint (schedule exhausted).
	deliveryResultLabel = label{"result", []string{
		"delivered",
		"retry",
		"gone",
		"failed",
	}}
	// disabledReasonLabel is why direct delivery disabled an endpoint: it
	// answered 410 Gone, or it failed every attempt for
	// DELIVERY_DISABLE_AFTER.
	disabledReasonLabel = label{"reason", []string{
		"gone",
		"failing",
	}}
	// firstAttemptLabel is who makes a delivery's first attempt: the
	// replica that accepted the event, at once (immediate); the queue's
	// workers, because the replica had no room for it (queued) or handed
	// it over (handed_over: its endpoint busy or unknown, or the replica
	// stopping).
	firstAttemptLabel = label{"path", []string{
		"immediate",
		"queued",
		"handed_over",
	}}
	// The request duration is created for the route the latency alert
	// watches; other routes appear when first answered.
	routeLabel  = label{"route", []string{"/notifications"}}
	methodLabel = label{"method", []string{http.MethodPost}}
)

// NewMetrics registers Gwook's metrics, the Go runtime and process
// collectors, and gwook_build_info for version. Every metric is registered
// whether or not the feature it counts is configured.
func NewMetrics(version string) *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(r)
	buildInfo := f.NewGaugeVec(prometheus.GaugeOpts{Name: "gwook_build_info", Help: "Always 1; labels say which build is running."}, []string{"version", "go_version"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	return &Metrics{
		registry: r,
		httpRequests: f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_http_requests_total",
			Help: "HTTP requests by route, method and status code."}, []string{"route", "method", "code"}),
		httpDuration: histogramVec(f, prometheus.HistogramOpts{Name: "gwook_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route and method.", Buckets: latencyBuckets}, routeLabel, methodLabel),
		httpInFlight: f.NewGauge(prometheus.GaugeOpts{Name: "gwook_http_requests_in_flight", Help: "HTTP requests being served now."}),
		events: counterVec(f, prometheus.CounterOpts{Name: "gwook_events_total",
			Help: "Events by how they arrived (" + entryLabel.list() + ") and how they ended (" + outcomeLabel.list() + ")."},
			entryLabel, outcomeLabel),
		svixRequests: counterVec(f, prometheus.CounterOpts{Name: "gwook_svix_requests_total",
			Help: "Requests to Svix by status class (" + statusClassLabel.list() + "; error when no answer came)."}, statusClassLabel),
		svixDuration: f.NewHistogram(prometheus.HistogramOpts{Name: "gwook_svix_request_duration_seconds",
			Help: "Time of one request to Svix (one attempt).", Buckets: latencyBuckets}),
		svixRetries: f.NewCounter(prometheus.CounterOpts{Name: "gwook_svix_retries_total",
			Help: "Requests to Svix that were retries of an earlier attempt."}),
		svixUnauthorized: f.NewCounter(prometheus.CounterOpts{Name: "gwook_svix_unauthorized_total",
			Help: "Svix answers 401 or 403 (to a message or to the token check): SVIX_AUTH_TOKEN is wrong or lacks access."}),
		dedupClaims: counterVec(f, prometheus.CounterOpts{Name: "gwook_dedup_claims_total",
			Help: "Duplicate-suppression claims by result (" + dedupClaimResultLabel.list() + ")."}, dedupClaimResultLabel),
		dedupErrors: counterVec(f, prometheus.CounterOpts{Name: "gwook_dedup_errors_total",
			Help: "Failures of the duplicate-suppression store by operation (" + dedupOperationLabel.list() + ")."}, dedupOperationLabel),
		deadLetters: counterVec(f, prometheus.CounterOpts{Name: "gwook_dead_letter_publishes_total",
			Help: "Publishes to the dead-letter topic by reason (" + deadLetterReasonLabel.list() + ") and result (" + publishResultLabel.list() + ")."},
			deadLetterReasonLabel, publishResultLabel),
		deadLetterLatency: f.NewHistogram(prometheus.HistogramOpts{Name: "gwook_dead_letter_publish_duration_seconds",
			Help: "Time to publish one event to the dead-letter topic.", Buckets: latencyBuckets}),
		authFailures: counterVec(f, prometheus.CounterOpts{Name: "gwook_auth_failures_total",
			Help: "Requests refused for bad or missing credentials, by the method tried (" + authMethodLabel.list() + ")."}, authMethodLabel),
		recoveredPanics: f.NewCounter(prometheus.CounterOpts{Name: "gwook_panics_recovered_total",
			Help: "Handler panics turned into 500 answers."}),
		pullFailures: f.NewCounter(prometheus.CounterOpts{Name: "gwook_pull_failures_total",
			Help: "Streaming pulls of a subscription (PUBSUB_SUBSCRIPTIONS) that failed and are started again after a pause; the log line names the subscription."}),
		requestsShed: f.NewCounter(prometheus.CounterOpts{Name: "gwook_requests_shed_total",
			Help: "Requests to /notifications answered 503 unread because MAX_IN_FLIGHT were being processed."}),
		tokenRequests: f.NewCounterVec(prometheus.CounterOpts{Name: "gwook_api_token_requests_total",
			Help: "Requests authenticated by each API token, by the token's id."}, []string{"token_id"}),
		filterDrops: counterVec(f, prometheus.CounterOpts{Name: "gwook_filter_drops_total",
			Help: "Events dropped by a filter, by the rule that decided (" + filterRuleLabel.list() + ")."}, filterRuleLabel),
		statsFlushes: counterVec(f, prometheus.CounterOpts{Name: "gwook_stats_flushes_total",
			Help: "Writes of the per-application stats to the database, by result (" + publishResultLabel.list() + "); a failed write is kept and retried."},
			publishResultLabel),
		statsFlushTime: f.NewHistogram(prometheus.HistogramOpts{Name: "gwook_stats_flush_duration_seconds",
			Help: "Time of one write of the per-application stats.", Buckets: latencyBuckets}),
		statsRows: f.NewCounter(prometheus.CounterOpts{Name: "gwook_stats_rows_written_total",
			Help: "Per-application, per-minute stats rows written to the database."}),
		statsPending: f.NewGauge(prometheus.GaugeOpts{Name: "gwook_stats_pending_rows",
			Help: "Per-application, per-minute stats rows counted in memory and not yet written."}),
		statsDropped: f.NewCounter(prometheus.CounterOpts{Name: "gwook_stats_dropped_events_total",
			Help: "Events left out of the stats because too many rows were waiting for a database that failed."}),
		deliveryAttempts: counterVec(f, prometheus.CounterOpts{Name: "gwook_delivery_attempts_total",
			Help: "Attempts of direct delivery, by what followed (" + deliveryResultLabel.list() + ") and the response's status class (error: no response)."},
			deliveryResultLabel, statusClassLabel),
		deliveryDuration: f.NewHistogram(prometheus.HistogramOpts{Name: "gwook_delivery_attempt_duration_seconds",
			Help: "Duration of the attempts of direct delivery, to the end of the response read.", Buckets: latencyBuckets}),
		deliveryJobs: f.NewGauge(prometheus.GaugeOpts{Name: "gwook_delivery_queue_jobs",
			Help: "Deliveries waiting or in progress, in the database shared by every replica: jobs not finished (due, scheduled for a retry, or running) and first attempts without a job (in progress, or retried after their recovery time); read every 15 s."}),
		deliveryOldestDue: f.NewGauge(prometheus.GaugeOpts{Name: "gwook_delivery_oldest_due_job_age_seconds",
			Help: "How long the oldest delivery job that is due, or the oldest delivery whose recovery time has come, has waited for a worker; 0 when none waits."}),
		deliveryBacklogOK: f.NewGauge(prometheus.GaugeOpts{Name: "gwook_delivery_queue_read_ok",
			Help: "1 when the last read of the delivery queue's depth succeeded, 0 when it failed (the two gauges above are then stale)."}),
		endpointsDisabled: counterVec(f, prometheus.CounterOpts{Name: "gwook_delivery_endpoints_disabled_total",
			Help: "Endpoints disabled by direct delivery, by reason (" + disabledReasonLabel.list() + ")."},
			disabledReasonLabel),
		firstAttempts: counterVec(f, prometheus.CounterOpts{Name: "gwook_delivery_first_attempts_total",
			Help: "Deliveries of direct delivery by who makes their first attempt (" + firstAttemptLabel.list() + ")."},
			firstAttemptLabel),
		topFiltered: f.NewGaugeVec(prometheus.GaugeOpts{Name: "gwook_stats_top_filtered_events",
			Help: "Events filtered in the last hour for the 10 applications with the most, from the stats in the database; refreshed at most once a minute."},
			[]string{"application_id"}),
	}
}

// list is the label's values for a help text.
func (l label) list() string { return strings.Join(l.values, ", ") }

// counterVec registers a counter vector with labels, each combination of
// their values created at 0.
func counterVec(f promauto.Factory, opts prometheus.CounterOpts, labels ...label) *prometheus.CounterVec {
	v := f.NewCounterVec(opts, labelNames(labels))
	for _, values := range combinations(labels) {
		v.WithLabelValues(values...)
	}
	return v
}

// histogramVec registers a histogram vector with labels, each combination
// of their values created empty.
func histogramVec(f promauto.Factory, opts prometheus.HistogramOpts, labels ...label) *prometheus.HistogramVec {
	v := f.NewHistogramVec(opts, labelNames(labels))
	for _, values := range combinations(labels) {
		v.WithLabelValues(values...)
	}
	return v
}

func labelNames(labels []label) []string {
	names := make([]string, len(labels))
	for i, l := range labels {
		names[i] = l.name
	}
	return names
}

// combinations returns every tuple of values, one of each label's, in the
// order of labels.
func combinations(labels []label) [][]string {
	out := [][]string{{}}
	for _, l := range labels {
		var next [][]string
		for _, prefix := range out {
			for _, v := range l.values {
				next = append(next, append(slices.Clone(prefix), v))
			}
		}
		out = next
	}
	return out
}

// Handler serves the metrics in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Event counts one event's fate: how it arrived and its outcome, values of
// entryLabel and outcomeLabel.
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

// SvixUnauthorized counts one 401 or 403 answer from Svix.
func (m *Metrics) SvixUnauthorized() {
	if m != nil {
		m.svixUnauthorized.Inc()
	}
}

// DedupClaim counts one claim by result, a value of dedupClaimResultLabel;
// error also counts a claim failure of the store.
func (m *Metrics) DedupClaim(result string) {
	if m == nil {
		return
	}
	m.dedupClaims.WithLabelValues(result).Inc()
	if result == "error" {
		m.dedupErrors.WithLabelValues("claim").Inc()
	}
}

// DedupCommitError counts a failed commit.
func (m *Metrics) DedupCommitError() {
	if m != nil {
		m.dedupErrors.WithLabelValues("commit").Inc()
	}
}

// PullFailure counts a streaming pull that failed.
func (m *Metrics) PullFailure() {
	if m != nil {
		m.pullFailures.Inc()
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

// TokenRequest counts a request authenticated by the API token with the
// given id (tok_..., never its value). The label's values are as many as the
// tokens an administrator created.
func (m *Metrics) TokenRequest(tokenID string) {
	if m != nil {
		m.tokenRequests.WithLabelValues(tokenID).Inc()
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

// FilterDrop counts an event dropped by the filter rule rule, a value of
// filterRuleLabel.
func (m *Metrics) FilterDrop(rule string) {
	if m != nil {
		m.filterDrops.WithLabelValues(rule).Inc()
	}
}

// StatsFlush records one write of the stats: the rows it wrote (or tried
// to), how long it took, its error, and the rows still held after it.
func (m *Metrics) StatsFlush(rows int, took time.Duration, err error, pending int) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		m.statsRows.Add(float64(rows))
	}
	m.statsFlushes.WithLabelValues(result).Inc()
	m.statsFlushTime.Observe(took.Seconds())
	m.statsPending.Set(float64(pending))
}

// StatsDropped counts events left out of the stats.
func (m *Metrics) StatsDropped(events int) {
	if m != nil {
		m.statsDropped.Add(float64(events))
	}
}

// SetTopFiltered replaces the applications of gwook_stats_top_filtered_events
// with counts (at most ten: the label's values stay bounded).
func (m *Metrics) SetTopFiltered(counts map[string]int64) {
	if m == nil {
		return
	}
	m.topFiltered.Reset()
	for app, n := range counts {
		m.topFiltered.WithLabelValues(app).Set(float64(n))
	}
}

// DeliveryAttempt records one attempt of direct delivery: what followed
// (a value of deliveryResultLabel), the response status (0 for none) and
// how long it took.
func (m *Metrics) DeliveryAttempt(result string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.deliveryAttempts.WithLabelValues(result, statusClass(status)).Inc()
	m.deliveryDuration.Observe(took.Seconds())
}

// DeliveryQueue records a read of the delivery queue: the jobs not
// finished and the age of the oldest due one; err says the read failed,
// and leaves the two as they were.
func (m *Metrics) DeliveryQueue(jobs int64, oldestDue time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.deliveryBacklogOK.Set(0)
		return
	}
	m.deliveryBacklogOK.Set(1)
	m.deliveryJobs.Set(float64(jobs))
	m.deliveryOldestDue.Set(oldestDue.Seconds())
}

// FirstAttempts counts n deliveries whose first attempt takes path, a
// value of firstAttemptLabel.
func (m *Metrics) FirstAttempts(path string, n int) {
	if m != nil && n > 0 {
		m.firstAttempts.WithLabelValues(path).Add(float64(n))
	}
}

// EndpointDisabled counts one endpoint disabled by direct delivery, for
// reason, a value of disabledReasonLabel.
func (m *Metrics) EndpointDisabled(reason string) {
	if m != nil {
		m.endpointsDisabled.WithLabelValues(reason).Inc()
	}
}
