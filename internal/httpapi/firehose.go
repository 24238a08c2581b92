package httpapi

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/telemetry"
	"github.com/gwook/gwook/internal/truncate"
)

// Headers of Kinesis Data Firehose's HTTP endpoint delivery protocol.
const (
	// HeaderFirehoseRequestID is the request's id, the same on every
	// retry of a batch.
	HeaderFirehoseRequestID = "X-Amz-Firehose-Request-Id"
	// HeaderFirehoseAccessKey carries the access key configured on the
	// delivery stream, verbatim.
	HeaderFirehoseAccessKey = "X-Amz-Firehose-Access-Key"
	// HeaderFirehoseSourceARN is the delivery stream's ARN.
	HeaderFirehoseSourceARN = "X-Amz-Firehose-Source-Arn"
)

// FirehoseWorkers is how many records of one Firehose request go through
// the pipeline at once. A request of 10,000 records takes 625 rounds: at
// 100 ms per record (a distant Svix), about a minute.
const FirehoseWorkers = 16

// FirehoseAnswerWithin is how long POST /firehose may take to answer,
// whatever HTTP_SERVER_WRITE_TIMEOUT: Firehose waits 3 minutes for an
// answer, and a batch of 10,000 records may need more than the write
// timeout. Records start only while they can end within it (see
// Deps.FirehoseStartWithin).
const FirehoseAnswerWithin = 170 * time.Second

// maxErrorMessage bounds a Firehose answer's errorMessage, as Firehose's
// response schema does; maxListedFailures bounds the records it names.
const (
	maxErrorMessage   = 8192
	maxListedFailures = 5
)

// firehoseAnswer is the body of every answer to POST /firehose, as the
// Firehose HTTP endpoint delivery protocol has it.
type firehoseAnswer struct {
	// RequestID is the request's requestId (its X-Amz-Firehose-Request-Id
	// until the body is read).
	RequestID string `json:"requestId"`
	// Timestamp is when Gwook answered, in Unix milliseconds.
	Timestamp int64 `json:"timestamp"`
	// ErrorMessage says why the answer is not 200; Firehose keeps the last
	// one with the batch when it gives up.
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// writeFirehose writes a Firehose answer: application/json, with a
// Content-Length (Firehose requires one), the request's id, the time, and
// message when status is not 200.
func writeFirehose(w http.ResponseWriter, r *http.Request, status int, message string) {
	a := firehoseAnswer{RequestID: firehoseRequestIDFrom(r.Context()), Timestamp: time.Now().UnixMilli(),
		ErrorMessage: truncate.String(message, maxErrorMessage)}
	b, err := json.Marshal(a)
	if err != nil {
		b = []byte(`{}`) // a struct of strings and an integer always marshals
	}
	h := w.Header()
	h["Content-Type"], h["X-Content-Type-Options"] = jsonContentType, noSniff
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// firehoseRequestIDKey holds, in a request's context, the Firehose request
// id its answer carries.
type firehoseRequestIDKey struct{}

// firehoseRequestIDFrom returns the Firehose request id of the request
// whose context ctx is.
func firehoseRequestIDFrom(ctx context.Context) string {
	if p, ok := ctx.Value(firehoseRequestIDKey{}).(*string); ok {
		return *p
	}
	return ""
}

// identifyFirehose keeps the request's X-Amz-Firehose-Request-Id for its
// answer and its log line, for every answer, the refusals included.
func identifyFirehose(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := truncate.String(r.Header.Get(HeaderFirehoseRequestID), ingest.MaxFirehoseRequestIDLength)
		requestLogFrom(r.Context()).Add(slog.String("entry", string(pipeline.EntryFirehose)), slog.String("firehose_request_id", id))
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("gwook.firehose.request_id", id))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), firehoseRequestIDKey{}, &id)))
	})
}

// refuseFirehoseOverloaded answers a /firehose request the in-flight limit
// turned away.
func refuseFirehoseOverloaded(w http.ResponseWriter, r *http.Request) {
	writeFirehose(w, r, http.StatusServiceUnavailable, overloadedDetail)
}

// requireFirehose authenticates a Firehose request (see
// authenticateFirehose) and answers a refusal in Firehose's format: 401,
// or 403 for an API token without the ingest scope.
func (a *Authenticator) requireFirehose(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := a.authenticateFirehose(r)
		if err != nil {
			a.refused(r, caller, err)
			status := http.StatusUnauthorized
			if errors.Is(err, errScope) {
				status = http.StatusForbidden
			}
			writeFirehose(w, r, status, "authentication failed: "+err.Error())
			return
		}
		if s := scopeFrom(r.Context()); s != nil {
			s.caller = caller
			s.log.Add(slog.String("caller", string(caller)))
		}
		next.ServeHTTP(w, r)
	})
}

// authenticateFirehose accepts a Firehose request whose
// X-Amz-Firehose-Access-Key is one of FirehoseKeys (compared in constant
// time with every one of them, so rotation can keep two), or a Gwook API
// token with the ingest or admin scope, given as the access key or as a
// bearer token. Nothing else is accepted: without FirehoseKeys, only API
// tokens are.
func (a *Authenticator) authenticateFirehose(r *http.Request) (Caller, error) {
	if raw, ok := bearerToken(r); ok {
		if a.APITokens == nil || !strings.HasPrefix(raw, store.TokenPrefix) {
			return CallerAPIToken, errors.New("unknown or expired API token")
		}
		return a.apiToken(r, raw)
	}
	key := r.Header.Get(HeaderFirehoseAccessKey)
	if key == "" {
		return "", errors.New("no credentials")
	}
	match := 0
	for _, k := range a.FirehoseKeys {
		match |= secretEqual(key, k)
	}
	switch {
	case match == 1:
		return CallerFirehoseKey, nil
	case a.APITokens != nil && strings.HasPrefix(key, store.TokenPrefix):
		return a.apiToken(r, key)
	case len(a.FirehoseKeys) == 0:
		return CallerFirehoseKey, errors.New("no Firehose access key is configured (FIREHOSE_ACCESS_KEYS)")
	}
	return CallerFirehoseKey, errors.New("wrong Firehose access key")
}

// firehose handles POST /firehose: a batch of events from Kinesis Data
// Firehose. Each record goes through the pipeline as a raw event would
// through POST /notifications, FirehoseWorkers at a time; the answer is
// 200 only when every record was delivered, dropped on purpose or
// dead-lettered, and otherwise makes Firehose send the whole batch again.
type firehose struct {
	pipeline      *pipeline.Pipeline
	maxBodyBytes  int64
	maxEventBytes int
	// startWithin, when positive, is how long after the request's arrival
	// a record may still start: one started later might not be answered
	// within FirehoseAnswerWithin.
	startWithin time.Duration
	health      *Health
	logger      *slog.Logger
	metrics     *telemetry.Metrics
	// first, when set, picks the record of n to start with; by default
	// one at random.
	first func(n int) int
}

// recordFate is what became of one record of a batch.
type recordFate struct {
	// status is the answer the record alone would call for: 200 when it
	// is done with (delivered, dropped on purpose or dead-lettered).
	status  int
	outcome string
	eventID string
	detail  string
}

// notStarted is the outcome of a record the batch did not reach.
const notStarted = "not_started"

func (h *firehose) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	log := requestLogFrom(r.Context())
	// Only an authenticated caller gets here. A writer that cannot move
	// its deadline (a test's recorder) has none.
	_ = http.NewResponseController(w).SetWriteDeadline(started.Add(FirehoseAnswerWithin))
	body, err := readFirehoseBody(w, r, h.maxBodyBytes)
	if err != nil {
		h.refuseBody(w, r, err)
		return
	}
	req, err := ingest.DecodeFirehose(body)
	if err != nil {
		log.Add(slog.String("error", err.Error()))
		writeFirehose(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if p, ok := r.Context().Value(firehoseRequestIDKey{}).(*string); ok && req.RequestID != *p {
		// The body's requestId is the one Firehose matches the answer to.
		log.Add(slog.String("firehose_body_request_id", bounded(req.RequestID)))
		*p = req.RequestID
	}
	log.Add(slog.Int("firehose_records", len(req.Records)))
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.Int("gwook.firehose.records", len(req.Records)))

	records := h.process(r, &req, started)
	status, message := summarize(records)
	logRecords(log, records, message)
	writeFirehose(w, r, status, message)
}

// process runs every record of req through the pipeline, FirehoseWorkers
// at a time, and returns what became of each. A record is not started once
// the request is canceled, the server drains, or startWithin has passed.
//
// The records are taken in order from one drawn at random (h.first), going
// round: a batch too slow to finish in one attempt is finished over
// Firehose's retries, instead of each retry redoing the records the first
// attempt reached.
func (h *firehose) process(r *http.Request, req *ingest.FirehoseRequest, started time.Time) []recordFate {
	ctx := r.Context()
	sourceARN := bounded(r.Header.Get(HeaderFirehoseSourceARN))
	application := ""
	if s := scopeFrom(ctx); s != nil {
		application = s.application
	}
	records := make([]recordFate, len(req.Records))
	if len(records) == 0 {
		return records
	}
	first := rand.IntN(len(records))
	if h.first != nil {
		first = h.first(len(records))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(FirehoseWorkers, len(records)) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= len(records) {
					return
				}
				i := (first + k) % len(records)
				if why := h.stopped(ctx, started); why != "" {
					records[i] = recordFate{status: http.StatusServiceUnavailable, outcome: notStarted, detail: why}
					continue
				}
				records[i] = h.one(ctx, req, i, sourceARN, application)
			}
		})
	}
	wg.Wait()
	return records
}

// stopped says why no more records of the request may start, or "".
func (h *firehose) stopped(ctx context.Context, started time.Time) string {
	switch {
	case ctx.Err() != nil:
		return "the request ended before the record was processed"
	case h.health != nil && h.health.draining.Load():
		return "Gwook is shutting down"
	case h.startWithin > 0 && time.Since(started) > h.startWithin:
		return "the batch could not be processed within the time Firehose waits for an answer"
	}
	return ""
}

// one runs record i of req through the pipeline. A panic fails the record
// alone (Firehose sends the batch again) rather than the process.
func (h *firehose) one(ctx context.Context, req *ingest.FirehoseRequest, i int, sourceARN, application string) (rec recordFate) {
	defer func() {
		if v := recover(); v != nil {
			h.metrics.PanicRecovered()
			h.logger.ErrorContext(ctx, "panic while processing a Firehose record", "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()), "request_id", requestIDFrom(ctx), "firehose_request_id", bounded(req.RequestID), "record", i)
			rec = recordFate{status: http.StatusInternalServerError, outcome: "internal", detail: "internal error"}
		}
	}()
	m := ingest.FirehoseMessage(req, i, sourceARN, h.maxEventBytes)
	if application != "" && m.Err == nil && m.Event.UserID != application {
		// An API token restricted to one application sends that
		// application's events only.
		return recordFate{status: http.StatusForbidden, outcome: "forbidden", eventID: bounded(m.Event.ID),
			detail: "this API token may only send events whose user_id is " + application}
	}
	res := h.pipeline.Process(ctx, &m)
	rec = recordFate{outcome: string(res.Outcome), eventID: bounded(m.Event.ID), detail: detail(&res)}
	rec.status = recordStatus(&res)
	if res.DeadLettered {
		rec.outcome = "dead_lettered"
	}
	if res.DeadLetterErr != nil {
		rec.detail += "; dead-letter publish failed"
	}
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		h.logger.LogAttrs(ctx, slog.LevelDebug, "firehose record", slog.String("request_id", requestIDFrom(ctx)),
			slog.String("firehose_request_id", bounded(req.RequestID)), slog.Int("record", i),
			slog.String("outcome", rec.outcome), slog.String("event_id", rec.eventID), slog.String("event_type", bounded(m.Event.Type)),
			slog.String("application", res.AppID), slog.String("message_id", res.Sent.MessageID), slog.String("detail", rec.detail))
	}
	return rec
}

// recordStatus is the answer one record calls for, by the rules of a
// Pub/Sub push (the README's response table): 200 when the event is
// delivered, dropped on purpose (filtered, duplicate, no application) or
// safe on the dead-letter topic; 400 when it is invalid without a
// dead-letter topic or refused for good by the backend (Firehose retries
// it, then keeps it in its own backup bucket); 429 and 503 when trying
// again may succeed.
func recordStatus(res *pipeline.Result) int {
	switch {
	case res.Handled():
		return http.StatusOK
	case res.DeadLetterErr != nil:
		return http.StatusServiceUnavailable
	}
	switch res.Outcome {
	case pipeline.Invalid, pipeline.Rejected:
		return http.StatusBadRequest
	case pipeline.RateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// severity orders the statuses of failed records: the batch is answered
// with the most transient one.
func severity(status int) int {
	switch {
	case status >= 500:
		return 3
	case status == http.StatusTooManyRequests:
		return 2
	case status == http.StatusForbidden:
		return 1
	}
	return 0
}

// summarize returns the answer to a batch: 200 when every record is done
// with; otherwise the status of its most transient failure and a message
// counting the failed records and naming the first few.
func summarize(records []recordFate) (int, string) {
	status, failed := http.StatusOK, 0
	var listed []string
	for i, rec := range records {
		if rec.status == http.StatusOK {
			continue
		}
		failed++
		if status == http.StatusOK || severity(rec.status) > severity(status) {
			status = rec.status
		}
		if len(listed) < maxListedFailures {
			item := fmt.Sprintf("record %d", i)
			if rec.eventID != "" {
				item += " (event " + rec.eventID + ")"
			}
			listed = append(listed, item+" "+rec.outcome+": "+rec.detail)
		}
	}
	if failed == 0 {
		return http.StatusOK, ""
	}
	message := fmt.Sprintf("%d of %d records were not delivered, dropped on purpose or dead-lettered; send the batch again "+
		"(records already delivered are not delivered twice): %s", failed, len(records), strings.Join(listed, "; "))
	if failed > len(listed) {
		message += fmt.Sprintf("; and %d more", failed-len(listed))
	}
	return status, message
}

// logRecords adds to the request's log line how many records ended each
// way and, when the batch is not acknowledged, why.
func logRecords(log *RequestLog, records []recordFate, message string) {
	counts := map[string]int{}
	for _, rec := range records {
		counts[rec.outcome]++
	}
	outcomes := make([]string, 0, len(counts))
	for o := range counts {
		outcomes = append(outcomes, o)
	}
	slices.Sort(outcomes)
	attrs := make([]any, 0, len(outcomes))
	for _, o := range outcomes {
		attrs = append(attrs, slog.Int(o, counts[o]))
	}
	log.Add(slog.Group("firehose_outcomes", attrs...))
	if message != "" {
		log.Add(slog.String("error", message))
	}
}

// errEncoding refuses a body in an encoding other than gzip.
var errEncoding = errors.New("unsupported Content-Encoding")

// readFirehoseBody reads a Firehose request body, decompressing it when
// its Content-Encoding is gzip. The body as sent and the body decompressed
// are each bounded by limit (*http.MaxBytesError above it).
func readFirehoseBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	switch enc := strings.TrimSpace(r.Header.Get("Content-Encoding")); {
	case enc == "" || strings.EqualFold(enc, "identity"):
		return readBody(w, r, limit)
	case !strings.EqualFold(enc, "gzip"):
		return nil, errEncoding
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return nil, &http.MaxBytesError{Limit: limit}
	}
	zr, err := gzip.NewReader(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return readAll(http.MaxBytesReader(w, zr, limit), -1)
}

// refuseBody answers a Firehose body that could not be read. A body over
// MAX_BODY_BYTES is answered 400, not 413: Firehose drops a batch answered
// 413 without keeping it in its backup bucket, and retries anything else.
func (h *firehose) refuseBody(w http.ResponseWriter, r *http.Request, err error) {
	log := requestLogFrom(r.Context())
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		log.Add(slog.String("error", "body too large"))
		writeFirehose(w, r, http.StatusBadRequest, fmt.Sprintf("the body exceeds %d bytes (MAX_BODY_BYTES) as sent or decompressed; "+
			"set the delivery stream's buffer size below it", h.maxBodyBytes))
	case errors.Is(err, errEncoding):
		log.Add(slog.String("error", "unsupported Content-Encoding"))
		writeFirehose(w, r, http.StatusUnsupportedMediaType, "the body's Content-Encoding must be gzip, or none")
	case errors.As(err, &netErr) && netErr.Timeout():
		log.Add(slog.String("error", "reading body: "+err.Error()))
		w.Header().Set("Connection", "close")
		writeFirehose(w, r, http.StatusRequestTimeout, "the body did not arrive within HTTP_SERVER_READ_TIMEOUT")
	default:
		log.Add(slog.String("error", "reading body: "+err.Error()))
		writeFirehose(w, r, http.StatusBadRequest, "the request body could not be read: the connection ended before its announced length, "+
			"or its gzip encoding is broken")
	}
}
