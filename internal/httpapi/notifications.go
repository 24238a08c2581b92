package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
)

// notifications handles POST /notifications: decode, run the pipeline, and
// answer as DESIGN.md's response table says for the kind of caller.
type notifications struct {
	pipeline     *pipeline.Pipeline
	maxBodyBytes int64
}

func (h *notifications) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := requestLogFrom(r.Context())
	body, err := readBody(w, r, h.maxBodyBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			log.Add(slog.String("outcome", string(pipeline.Invalid)), slog.String("error", "body too large"))
			writeProblem(w, r, Problem{Type: problemTypeBase + "body_too_large", Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("body exceeds %d bytes (MAX_BODY_BYTES)", h.maxBodyBytes), Layer: LayerGwook,
				Outcome: string(pipeline.Invalid)})
			return
		}
		log.Add(slog.String("error", "reading body: "+err.Error()))
		writeProblem(w, r, Problem{Type: problemTypeBase + "bad_body", Status: http.StatusBadRequest,
			Detail: "could not read the request body", Layer: LayerGwook})
		return
	}

	m := ingest.Decode(r.Header, body, 0)
	if CallerFrom(r.Context()).IsPush() && m.Delivery.Entry == ingest.EntryDirect {
		// A push without wrapper and without metadata headers: the body is the
		// event, but the caller is Pub/Sub and needs push status codes.
		m.Delivery.Entry = ingest.EntryPush
	}
	res := h.pipeline.Process(r.Context(), &m)
	log.SetTraceID(res.TraceID)
	logResult(log, &m, &res)
	h.respond(w, r, &m, &res)
}

// readBody reads the request body, at most limit bytes. A body that
// announces its length is read into one buffer of that size, sparing the
// buffer growth of io.ReadAll; net/http ends such a body at that length.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 || r.ContentLength > limit {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func logResult(log *RequestLog, m *ingest.Message, res *pipeline.Result) {
	log.Add(
		slog.String("outcome", string(res.Outcome)),
		slog.String("entry", string(m.Delivery.Entry)),
		slog.String("event_id", bounded(m.Event.ID)),
		slog.String("event_type", bounded(m.Event.Type)),
		slog.String("application", res.AppID),
		slog.Int("svix_status", res.Svix.Status),
		slog.Int("attempts", res.Svix.Attempts),
	)
	if m.Delivery.Entry == ingest.EntryPush {
		log.Add(
			slog.String("push_message_id", m.Delivery.MessageID),
			slog.String("push_subscription", m.Delivery.Subscription),
			slog.Int("push_delivery_attempt", m.Delivery.DeliveryAttempt),
		)
	}
	if res.Err != nil {
		log.Add(slog.String("error", res.Err.Error()))
	}
	if res.DeadLettered || res.DeadLetterErr != nil {
		log.Add(slog.Bool("dead_lettered", res.DeadLettered))
	}
	if res.DeadLetterErr != nil {
		log.Add(slog.String("dead_letter_error", res.DeadLetterErr.Error()))
	}
	if res.Svix.Body != "" {
		log.Add(slog.String("svix_body", res.Svix.Body))
	}
}

// accepted is the body of a successful answer.
type accepted struct {
	Outcome       string `json:"outcome"`
	EventID       string `json:"event_id,omitempty"`
	Application   string `json:"application,omitempty"`
	SvixMessageID string `json:"svix_message_id,omitempty"`
	Attempts      int    `json:"attempts,omitempty"`
	DeadLettered  bool   `json:"dead_lettered,omitempty"`
}

// respond writes the answer for res, following DESIGN.md's response table.
// Pub/Sub push acks only 102, 200, 201, 202 and 204, and the emulator takes
// 202 as a nack, so every success to a push is 200; a push is acked only
// when its event was delivered, deliberately dropped, or dead-lettered.
func (h *notifications) respond(w http.ResponseWriter, r *http.Request, m *ingest.Message, res *pipeline.Result) {
	push := m.Delivery.Entry == ingest.EntryPush
	ok := accepted{Outcome: string(res.Outcome), EventID: bounded(m.Event.ID), Application: res.AppID,
		SvixMessageID: res.Svix.MessageID, Attempts: res.Svix.Attempts, DeadLettered: res.DeadLettered}
	p := Problem{Type: problemTypeBase + string(res.Outcome), Layer: LayerSvix, Outcome: string(res.Outcome),
		EventID: bounded(m.Event.ID), SvixStatus: res.Svix.Status, Attempts: res.Svix.Attempts, DeadLettered: res.DeadLettered}
	if res.Err != nil {
		p.Detail = res.Err.Error()
	}
	if res.DeadLetterErr != nil {
		p.Detail += "; dead-letter publish failed: " + res.DeadLetterErr.Error()
	}
	if push && res.DeadLettered {
		writeJSON(w, http.StatusOK, ok) // safe on the dead-letter topic: ack
		return
	}
	// A failed dead-letter publish leaves the event nowhere: the caller must
	// keep it (push: redeliver; producer: retry).
	if res.DeadLetterErr != nil {
		p.Status = pick(push, http.StatusServiceUnavailable, http.StatusInternalServerError)
		p.Layer = LayerGwook
		writeProblem(w, r, p)
		return
	}

	switch res.Outcome {
	case pipeline.Forwarded:
		writeJSON(w, pick(push, http.StatusOK, http.StatusAccepted), ok)
		return
	case pipeline.Filtered:
		writeJSON(w, http.StatusOK, ok)
		return
	case pipeline.Duplicate:
		if push {
			writeJSON(w, http.StatusOK, ok) // already delivered: ack
			return
		}
		p.Status = http.StatusConflict
		if res.Svix.Status == 0 {
			p.Layer = LayerGwook // suppressed inside the dedup window
		}
	case pipeline.Invalid:
		// A push lands here only without a dead-letter topic: the
		// subscription's own dead-letter policy then takes it.
		p.Status, p.Layer = http.StatusBadRequest, LayerGwook
		var invalid *event.InvalidError
		if errors.As(res.Err, &invalid) {
			p.Detail, p.Errors = invalid.Reason, invalid.Fields
		}
	case pipeline.Rejected:
		// Svix refused the message for good; push gets a nack so the
		// subscription's own dead-letter policy keeps it.
		p.Status = pick(push, http.StatusBadRequest, http.StatusUnprocessableEntity)
	case pipeline.RateLimited:
		p.Status = http.StatusTooManyRequests
		if res.Svix.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((res.Svix.RetryAfter+time.Second-1)/time.Second)))
		}
	case pipeline.DedupUnavailable:
		p.Status, p.Layer = http.StatusServiceUnavailable, LayerGwook
	default:
		p.Status = pick(push, http.StatusServiceUnavailable, http.StatusInternalServerError)
	}
	writeProblem(w, r, p)
}

// maxEchoedField bounds the event fields echoed into logs and answers: an
// invalid event's id may be megabytes long.
const maxEchoedField = event.MaxSvixIDLength + 1

// bounded returns s cut to maxEchoedField bytes, as valid UTF-8.
func bounded(s string) string {
	if len(s) <= maxEchoedField {
		return s
	}
	return strings.ToValidUTF8(s[:maxEchoedField], "") + "…"
}

func pick(cond bool, ifTrue, ifFalse int) int {
	if cond {
		return ifTrue
	}
	return ifFalse
}
