// Package httpapi is Gwook's HTTP surface: the chi router, its middleware
// (request id, panic recovery, one log line per request, authentication,
// body limits) and the handlers for /notifications, /health and /ready.
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/telemetry"
)

// Deps is what the router needs.
type Deps struct {
	Pipeline     *pipeline.Pipeline
	Auth         *Authenticator
	Health       *Health
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Metrics, when set, counts requests; MetricsRoute also serves them
	// at /metrics on this router (otherwise they have their own port).
	Metrics      *telemetry.Metrics
	MetricsRoute bool
	// Tracing starts a server span per request; nil traces nothing.
	Tracing trace.TracerProvider
	// Reporter reports recovered panics; nil reports nothing.
	Reporter *telemetry.Reporter
}

// NewRouter returns Gwook's HTTP handler.
func NewRouter(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(scopeRequests(d.Logger), d.Metrics.Middleware, recoverPanics(d.Logger, d.Metrics, d.Reporter))
	r.Get("/health", d.Health.live)
	r.Get("/ready", d.Health.ready)
	if d.MetricsRoute && d.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", d.Metrics.Handler())
	}
	r.With(d.Auth.requireAuth).Method(http.MethodPost, "/notifications",
		&notifications{pipeline: d.Pipeline, maxBodyBytes: d.MaxBodyBytes})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: problemTypeBase + "not_found", Status: http.StatusNotFound, Layer: LayerGwook})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: problemTypeBase + "method_not_allowed", Status: http.StatusMethodNotAllowed, Layer: LayerGwook})
	})
	tp := d.Tracing
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return telemetry.ServerHandler(r, tp)
}
