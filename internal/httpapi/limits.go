package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"golang.org/x/sync/semaphore"

	"github.com/gwook/gwook/internal/telemetry"
)

// OutcomeOverloaded is the outcome of a request turned away because
// MAX_IN_FLIGHT requests, or MAX_IN_FLIGHT_BYTES of bodies, were being
// processed.
const OutcomeOverloaded = "overloaded"

// shedRetryAfter is the Retry-After, in seconds, of a request turned away
// by the in-flight limit.
const shedRetryAfter = 1

// InFlightLimit bounds what /notifications and /firehose process at once,
// together: Requests requests, and Bytes of request bodies, each body
// weighed by its announced Content-Length, or by MaxBodyBytes when it
// announces none or is compressed (it may grow to MaxBodyBytes once
// decompressed) (0: no limit). Memory follows the bodies (an event is
// decoded and copied while it is sent), so the byte limit keeps a burst of
// large events in bounds while small ones still get many requests at once.
type InFlightLimit struct {
	Requests     int
	Bytes        int64
	MaxBodyBytes int64
}

// inFlight is the state of an InFlightLimit, shared by every route it
// bounds.
type inFlight struct {
	limit            InFlightLimit
	requests, bodies *semaphore.Weighted
	metrics          *telemetry.Metrics
}

func newInFlight(l InFlightLimit, metrics *telemetry.Metrics) *inFlight {
	f := &inFlight{limit: l, metrics: metrics}
	if l.Requests > 0 {
		f.requests = semaphore.NewWeighted(int64(l.Requests))
	}
	if l.Bytes > 0 {
		f.bodies = semaphore.NewWeighted(l.Bytes)
	}
	return f
}

// weigh is what the body of r counts against the byte limit.
func (f *inFlight) weigh(r *http.Request) int64 {
	l := f.limit
	if r.ContentLength < 0 || r.ContentLength > l.MaxBodyBytes || r.Header.Get("Content-Encoding") != "" {
		// Unknown: as much as may be read. Larger than that is refused
		// unread, but weighed in full all the same.
		return min(l.MaxBodyBytes, l.Bytes)
	}
	return min(r.ContentLength, l.Bytes)
}

// bound lets requests through while the limit allows them. The others are
// counted, logged, given Retry-After and answered by refuse at once, before
// their body is read.
func (f *inFlight) bound(refuse func(http.ResponseWriter, *http.Request)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !tryAcquire(f.requests, 1) {
				f.shed(w, r, refuse)
				return
			}
			defer release(f.requests, 1)
			weight := f.weigh(r)
			if !tryAcquire(f.bodies, weight) {
				f.shed(w, r, refuse)
				return
			}
			defer release(f.bodies, weight)
			next.ServeHTTP(w, r)
		})
	}
}

// shed turns away a request the limit does not let through.
func (f *inFlight) shed(w http.ResponseWriter, r *http.Request, refuse func(http.ResponseWriter, *http.Request)) {
	f.metrics.RequestShed()
	requestLogFrom(r.Context()).Add(slog.String("outcome", OutcomeOverloaded))
	w.Header().Set("Retry-After", strconv.Itoa(shedRetryAfter))
	refuse(w, r)
}

// overloadedDetail says why a request was shed.
const overloadedDetail = "Gwook is processing as many requests as it takes (MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES); retry later"

// refuseOverloaded answers a request to /notifications the limit turned
// away: a 503 problem. A push gets the same 503, which Pub/Sub redelivers
// with its own backoff.
func refuseOverloaded(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, Problem{Type: problemTypeBase + OutcomeOverloaded, Status: http.StatusServiceUnavailable,
		Detail: overloadedDetail, Layer: LayerGwook, Outcome: OutcomeOverloaded})
}

func tryAcquire(s *semaphore.Weighted, n int64) bool { return s == nil || s.TryAcquire(n) }

func release(s *semaphore.Weighted, n int64) {
	if s != nil {
		s.Release(n)
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
