// Package httpapi is Gwook's HTTP surface: the chi router, its middleware
// (request id, one log line and the HTTP metrics per request, panic
// recovery, authentication, and the limits on headers, bodies and requests
// in flight) and the handlers for /notifications, /firehose, /health and
// /ready.
package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/telemetry"
)

// Deps is what the router needs.
type Deps struct {
	Pipeline *pipeline.Pipeline
	Auth     *Authenticator
	Health   *Health
	// MaxBodyBytes bounds a request body (413 above it), MaxEventBytes the
	// event in it (413 to a producer, dead-lettered for a push), and
	// MaxHeaderBytes the request line and headers (431 above it).
	MaxBodyBytes   int64
	MaxEventBytes  int
	MaxHeaderBytes int
	// InFlight bounds what /notifications and /firehose process at once,
	// together; the requests past it are answered 503 unread.
	InFlight InFlightLimit
	Logger   *slog.Logger
	// Metrics, when set, counts requests; MetricsRoute also serves them
	// at /metrics on this router (otherwise they have their own port).
	Metrics      *telemetry.Metrics
	MetricsRoute bool
	// Tracing starts a server span per request; nil traces nothing.
	Tracing trace.TracerProvider
	// Reporter reports recovered panics; nil reports nothing.
	Reporter *telemetry.Reporter
	// API, when set, adds the management API's routes, behind the same
	// request ids, log lines, metrics and panic recovery.
	API func(chi.Router)
	// FirehoseStartWithin, when positive, is how long after a /firehose
	// request's arrival its records may still start: FirehoseAnswerWithin
	// less the longest one record takes (the request budget).
	FirehoseStartWithin time.Duration
}

// NewRouter returns Gwook's HTTP handler.
func NewRouter(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(scopeRequests(d.Logger, d.Metrics), limitHeaders(d.MaxHeaderBytes), recoverPanics(d.Logger, d.Metrics, d.Reporter))
	r.Get("/health", d.Health.live)
	r.Head("/health", d.Health.live)
	r.Get("/ready", d.Health.ready)
	r.Head("/ready", d.Health.ready)
	if d.MetricsRoute && d.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", d.Metrics.Handler())
	}
	// Authentication comes first: an unauthenticated flood, answered 401
	// without its body being read, takes no slot from the callers Gwook
	// serves.
	inFlight := newInFlight(d.InFlight, d.Metrics)
	r.With(d.Auth.requireAuth, inFlight.bound(refuseOverloaded)).Method(http.MethodPost, "/notifications",
		&notifications{pipeline: d.Pipeline, maxBodyBytes: d.MaxBodyBytes, maxEventBytes: d.MaxEventBytes})
	r.With(identifyFirehose, d.Auth.requireFirehose, inFlight.bound(refuseFirehoseOverloaded)).Method(http.MethodPost, "/firehose",
		&firehose{pipeline: d.Pipeline, maxBodyBytes: d.MaxBodyBytes, maxEventBytes: d.MaxEventBytes,
			startWithin: d.FirehoseStartWithin, health: d.Health, logger: d.Logger, metrics: d.Metrics})
	if d.API != nil {
		d.API(r)
	}
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		writeProblem(w, req, Problem{Type: problemTypeBase + "not_found", Status: http.StatusNotFound, Layer: LayerGwook})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", allowedMethods(r, req.URL.Path))
		writeProblem(w, req, Problem{Type: problemTypeBase + "method_not_allowed", Status: http.StatusMethodNotAllowed, Layer: LayerGwook})
	})
	tp := d.Tracing
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return telemetry.ServerHandler(r, tp)
}

// allowedMethods lists the methods routes serves at path, for a 405's Allow
// header.
func allowedMethods(routes chi.Routes, path string) string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions} {
		if routes.Match(chi.NewRouteContext(), m, path) {
			allowed = append(allowed, m)
		}
	}
	return strings.Join(allowed, ", ")
}
