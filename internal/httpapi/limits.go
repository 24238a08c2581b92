package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gwook/gwook/internal/telemetry"
)

// OutcomeOverloaded is the outcome of a request turned away because
// MAX_IN_FLIGHT requests were being processed.
const OutcomeOverloaded = "overloaded"

// shedRetryAfter is the Retry-After, in seconds, of a request turned away
// by the in-flight limit.
const shedRetryAfter = 1

// limitInFlight lets at most limit requests through at once (0: no
// limit). The others are answered 503 with Retry-After at once, before
// their body is read, so memory holds at most limit bodies. A push gets the
// same 503, which Pub/Sub redelivers with its own backoff.
func limitInFlight(limit int, metrics *telemetry.Metrics) func(http.Handler) http.Handler {
	if limit <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	slots := make(chan struct{}, limit)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				next.ServeHTTP(w, r)
			default:
				metrics.RequestShed()
				requestLogFrom(r.Context()).Add(slog.String("outcome", OutcomeOverloaded))
				w.Header().Set("Retry-After", strconv.Itoa(shedRetryAfter))
				writeProblem(w, r, Problem{Type: problemTypeBase + OutcomeOverloaded, Status: http.StatusServiceUnavailable,
					Detail: "Gwook is processing as many requests as it takes (MAX_IN_FLIGHT); retry later", Layer: LayerGwook,
					Outcome: OutcomeOverloaded})
			}
		})
	}
}

// ServerMaxHeaderBytes is the header limit to give net/http for a limit of
// limit bytes. net/http answers headers above its own limit with a
// plain-text 431 before any handler runs; with twice the room there,
// limitHeaders answers those between limit and twice limit itself, as a
// problem with the request id.
func ServerMaxHeaderBytes(limit int) int { return 2 * limit }

// limitHeaders answers 431 when the request line and header fields, counted
// as sent, exceed limit bytes.
func limitHeaders(limit int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if limit > 0 && headerBytes(r) > limit {
				requestLogFrom(r.Context()).Add(slog.String("error", "request headers too large"))
				w.Header().Set("Connection", "close")
				writeProblem(w, r, Problem{Type: problemTypeBase + "headers_too_large", Status: http.StatusRequestHeaderFieldsTooLarge,
					Detail: fmt.Sprintf("the request headers exceed %d bytes (HTTP_SERVER_MAX_HEADER_BYTES)", limit), Layer: LayerGwook})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// headerBytes is about how many bytes the request line and header fields of
// r took on the wire.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	n += len("Host: ") + len(r.Host) + 2
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
	}
	return n
}
