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

	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/trace"

	"github.com/gwook/gwook/internal/telemetry"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// validRequestID accepts a caller's request id only when it is short and
// plain, so a hostile header cannot forge log fields or flood them.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

type requestIDKey struct{}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestID takes the caller's X-Request-Id when it is plain, or makes one,
// and returns it on the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// RequestLog is the one log line written for each request. Handlers fill it
// in as they learn things; the logging middleware writes it at the end.
type RequestLog struct {
	attrs   []slog.Attr
	traceID string
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
	if l != nil {
		l.attrs = append(l.attrs, attrs...)
	}
}

type requestLogKey struct{}

func requestLogFrom(ctx context.Context) *RequestLog {
	l, _ := ctx.Value(requestLogKey{}).(*RequestLog)
	return l
}

// logRequests writes one line per request. Probes of /health and /ready are
// logged at debug level so they do not drown the rest.
func logRequests(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started := time.Now()
			entry := &RequestLog{attrs: make([]slog.Attr, 0, 16)}
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), requestLogKey{}, entry)))

			level := slog.LevelInfo
			if r.URL.Path == "/health" || r.URL.Path == "/ready" {
				level = slog.LevelDebug
			}
			if !logger.Enabled(r.Context(), level) {
				return
			}
			traceID := entry.traceID
			if traceID == "" {
				if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
					traceID = sc.TraceID().String()
				}
			}
			attrs := append([]slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", ww.Status()),
				slog.Duration("duration", time.Since(started)),
				slog.Int("bytes_in", int(max(r.ContentLength, 0))),
				slog.String("request_id", requestIDFrom(r.Context())),
			}, entry.attrs...)
			if traceID != "" {
				attrs = append(attrs, slog.String("trace_id", traceID))
			}
			logger.LogAttrs(r.Context(), level, "request", attrs...)
		})
	}
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
