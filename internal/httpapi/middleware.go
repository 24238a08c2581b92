package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/trace"

	"github.com/gwook/gwook/internal/telemetry"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// validRequestID accepts a caller's request id only when it is short and
// plain, so a hostile header cannot forge log fields or flood them.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestScope is what Gwook learns about one request as it passes through:
// its id, who called, and its log line. It travels in the request's context
// as a single value, so the middleware copies the request once, not once per
// thing it learns.
type requestScope struct {
	id     string
	caller Caller
	log    RequestLog
	// application, when set, is the one application whose events the
	// caller (an API token restricted to it) may send.
	application string
}

type requestScopeKey struct{}

// requestAttrs is how many attributes every request's log line starts
// with, and handlerAttrs room for those a handler adds (a push's result
// takes about 13), so that a line is built in one allocation.
const (
	requestAttrs = 6
	handlerAttrs = 18
)

func scopeFrom(ctx context.Context) *requestScope {
	s, _ := ctx.Value(requestScopeKey{}).(*requestScope)
	return s
}

// RequestID returns the id of the request whose context ctx is, or "".
func RequestID(ctx context.Context) string { return requestIDFrom(ctx) }

func requestIDFrom(ctx context.Context) string {
	if s := scopeFrom(ctx); s != nil {
		return s.id
	}
	return ""
}

// RequestLog is the one log line written for each request. Handlers fill it
// in as they learn things; the logging middleware writes it at the end.
type RequestLog struct {
	attrs   []slog.Attr
	traceID string
	// debug writes the line at debug level: a routine answer that would
	// flood the info level.
	debug bool
}

// SetTraceID names the trace the request's work ran in, when it differs
// from the request's own (a push continuing its producer's trace).
func (l *RequestLog) SetTraceID(id string) {
	if l != nil {
		l.traceID = id
	}
}

// Add records attributes for the request's log line.
func (l *RequestLog) Add(attrs ...slog.Attr) {
	if l == nil {
		return
	}
	if l.attrs == nil {
		l.attrs = make([]slog.Attr, requestAttrs, requestAttrs+handlerAttrs)
	}
	l.attrs = append(l.attrs, attrs...)
}

func requestLogFrom(ctx context.Context) *RequestLog {
	if s := scopeFrom(ctx); s != nil {
		return &s.log
	}
	return nil
}

// scopeRequests gives each request its id (the caller's X-Request-Id when it
// is plain, or a new one, returned on the response), counts it in the HTTP
// metrics and writes its one log line when it ends. Probes of /health and
// /ready are logged at debug level so they do not drown the rest.
func scopeRequests(logger *slog.Logger, metrics *telemetry.Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started := time.Now()
			scope := &requestScope{id: r.Header.Get(HeaderRequestID)}
			if !validRequestID.MatchString(scope.id) {
				var b [12]byte
				_, _ = rand.Read(b[:])
				scope.id = hex.EncodeToString(b[:])
			}
			w.Header().Set(HeaderRequestID, scope.id)
			// The one wrapper that records the status, for the metrics and
			// the log line.
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			metrics.HTTPRequestStarted()
			defer func() {
				took := time.Since(started)
				status := statusOf(ww)
				metrics.HTTPRequestDone(routePattern(r), r.Method, status, took)
				logRequest(logger, r, scope, status, took)
			}()
			next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), requestScopeKey{}, scope)))
		})
	}
}

// statusOf is the status ww sent: 200 when the handler wrote nothing, as
// net/http then answers.
func statusOf(ww middleware.WrapResponseWriter) int {
	if s := ww.Status(); s != 0 {
		return s
	}
	return http.StatusOK
}

// routePattern is the chi route r matched, or "" when none did.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		return rc.RoutePattern()
	}
	return ""
}

// logRequest writes the request's one log line. Durations are logged as
// float milliseconds, with the unit in the key.
func logRequest(logger *slog.Logger, r *http.Request, scope *requestScope, status int, took time.Duration) {
	level := slog.LevelInfo
	if r.URL.Path == "/health" || r.URL.Path == "/ready" || scope.log.debug {
		level = slog.LevelDebug
	}
	if !logger.Enabled(r.Context(), level) {
		return
	}
	traceID := scope.log.traceID
	if traceID == "" {
		if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
			traceID = sc.TraceID().String()
		}
	}
	// The line's first attributes are filled in now, in the room Add left
	// before the handler's; a request that added none (a probe) allocates
	// nothing unless it is logged.
	attrs := scope.log.attrs
	if attrs == nil {
		attrs = make([]slog.Attr, requestAttrs, requestAttrs+1)
	}
	copy(attrs, []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", telemetry.Milliseconds(took)),
		slog.Int("bytes_in", int(max(r.ContentLength, 0))),
		slog.String("request_id", scope.id),
	})
	if traceID != "" {
		attrs = append(attrs, slog.String("trace_id", traceID))
	}
	logger.LogAttrs(r.Context(), level, "request", attrs...)
}

// recoverPanics turns a panic in a handler into a 500 problem and an error
// log line with the stack, instead of a dropped connection.
func recoverPanics(logger *slog.Logger, metrics *telemetry.Metrics, reporter *telemetry.Reporter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				metrics.PanicRecovered()
				reporter.Report(r.Context(), telemetry.Report{Kind: "panic", Err: fmt.Errorf("panic: %v", v)})
				logger.ErrorContext(r.Context(), "panic while handling request",
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()),
					"request_id", requestIDFrom(r.Context()))
				writeProblem(w, r, Problem{Type: problemTypeBase + "internal", Status: http.StatusInternalServerError,
					Detail: "internal error", Layer: LayerGwook})
			}()
			next.ServeHTTP(w, r)
		})
	}
}
