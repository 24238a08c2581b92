package telemetry

import (
	"net/http"
	"strconv"
	"time"
)

// HTTPRequestStarted counts a request being served in
// gwook_http_requests_in_flight; call HTTPRequestDone when it ends.
func (m *Metrics) HTTPRequestStarted() {
	if m != nil {
		m.httpInFlight.Inc()
	}
}

// HTTPRequestDone records an answered request by its chi route pattern
// (never the raw path, whose values are unbounded; "unmatched" when no
// route matched), method and status code, and how long it took.
func (m *Metrics) HTTPRequestDone(route, method string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.httpInFlight.Dec()
	if route == "" {
		route = "unmatched"
	}
	method = boundedMethod(method)
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(took.Seconds())
}

// boundedMethod keeps the method label to the standard methods.
func boundedMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// Milliseconds is d in milliseconds, to the microsecond: how log lines give
// a duration, with the unit in the key (duration_ms).
func Milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
