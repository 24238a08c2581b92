package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/truncate"
)

// notifications handles POST /notifications: read the body, decode, run
// the pipeline, and answer as the README's response table says for the
// kind of caller.
type notifications struct {
	pipeline      *pipeline.Pipeline
	maxBodyBytes  int64
	maxEventBytes int
}

func (h *notifications) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, h.maxBodyBytes)
	if err != nil {
		h.refuseBody(w, r, err)
		return
	}
	m := ingest.Decode(r.Header, body, h.maxEventBytes)
	if s := scopeFrom(r.Context()); s != nil && s.application != "" && m.Err == nil && m.Event.UserID != s.application {
		// An API token restricted to one application sends that
		// application's events only.
		requestLogFrom(r.Context()).Add(slog.String("auth_error", "event of another application"))
		writeProblem(w, r, Problem{Type: problemTypeBase + "forbidden", Status: http.StatusForbidden, Layer: LayerGwook,
			Detail: "this API token may only send events whose user_id is " + s.application, EventID: bounded(m.Event.ID)})
		return
	}
	if CallerFrom(r.Context()).IsPush() && m.Delivery.Entry == pipeline.EntryDirect {
		// A push without wrapper and without metadata headers: the body is the
		// event, but the caller is Pub/Sub and needs push status codes.
		m.Delivery.Entry = pipeline.EntryPush
	}
	res := h.pipeline.Process(r.Context(), &m)
	log := requestLogFrom(r.Context())
	log.SetTraceID(res.TraceID)
	// Events of users without an application may be most of the traffic
	// with UNKNOWN_APPLICATION=drop; gwook_events_total counts them.
	log.debug = res.Outcome == pipeline.NoApplication
	logResult(log, &m, &res)
	h.respond(w, r, &m, &res)
}

// refuseBody answers a body that could not be read: 413 when it is over
// MAX_BODY_BYTES, 408 when it did not arrive within
// HTTP_SERVER_READ_TIMEOUT, 400 otherwise. The read error itself goes to
// the log line only.
func (h *notifications) refuseBody(w http.ResponseWriter, r *http.Request, err error) {
	log := requestLogFrom(r.Context())
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		log.Add(slog.String("outcome", string(pipeline.Invalid)), slog.String("error", "body too large"))
		writeProblem(w, r, Problem{Type: problemTypeBase + "body_too_large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body exceeds %d bytes (MAX_BODY_BYTES)", h.maxBodyBytes), Layer: LayerGwook,
			Outcome: string(pipeline.Invalid)})
	case errors.As(err, &netErr) && netErr.Timeout():
		log.Add(slog.String("error", "reading body: "+err.Error()))
		w.Header().Set("Connection", "close")
		writeProblem(w, r, Problem{Type: problemTypeBase + "request_timeout", Status: http.StatusRequestTimeout,
			Detail: "the body did not arrive within HTTP_SERVER_READ_TIMEOUT", Layer: LayerGwook})
	default:
		log.Add(slog.String("error", "reading body: "+err.Error()))
		writeProblem(w, r, Problem{Type: problemTypeBase + "bad_body", Status: http.StatusBadRequest,
			Detail: "the request body could not be read: the connection ended before its announced length, or its encoding is broken",
			Layer:  LayerGwook})
	}
}

// bodyBufferStart bounds the buffer a body is first read into. The buffer
// grows as bytes arrive, never to the announced Content-Length at once: a
// caller announcing megabytes and sending slowly holds only what it sent.
const bodyBufferStart = 16 << 10

// readBody reads the request body, at most limit bytes. A body announced
// above the limit is refused unread (*http.MaxBytesError), and the
// connection is closed after the answer rather than drained.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
}

// readAll reads body to its end. announced is the length the body must
// have (io.ErrUnexpectedEOF otherwise), or -1 when it is not known.
func readAll(body io.Reader, announced int64) ([]byte, error) {
	size := int64(bodyBufferStart)
	if announced >= 0 {
		// One byte more than announced, to see the end without growing.
		size = min(announced+1, size)
	}
	buf := make([]byte, 0, size)
	for {
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if announced >= 0 && int64(len(buf)) != announced {
				return nil, io.ErrUnexpectedEOF
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = grow(buf, announced)
		}
	}
}

// grow returns buf with room for more: twice its capacity, so that a body
// is copied about once in all as it grows, but never more than one byte
// past an announced length, which buf has already reached half of.
func grow(buf []byte, announced int64) []byte {
	size := 2 * cap(buf)
	if announced >= 0 {
		size = int(min(int64(size), announced+1))
	}
	return slices.Grow(buf, max(size-len(buf), 1))
}

func logResult(log *RequestLog, m *pipeline.Message, res *pipeline.Result) {
	log.Add(
		slog.String("outcome", string(res.Outcome)),
		slog.String("entry", string(m.Delivery.Entry)),
		slog.String("event_id", bounded(m.Event.ID)),
		slog.String("event_type", bounded(m.Event.Type)),
		slog.String("application", res.AppID),
	)
	if res.Sent.MessageID != "" {
		log.Add(slog.String("message_id", res.Sent.MessageID))
	}
	if res.Sent.Backend == pipeline.BackendSvix {
		// Gwook's own queue makes no HTTP request when it stores an event.
		log.Add(slog.Int("svix_status", res.Sent.Status), slog.Int("attempts", res.Sent.Attempts))
	}
	if m.Delivery.Entry == pipeline.EntryPush {
		log.Add(
			slog.String("push_message_id", m.Delivery.MessageID),
			slog.String("push_subscription", m.Delivery.Subscription),
			slog.String("push_publish_time", bounded(m.Delivery.PublishTime)),
			slog.Int("push_delivery_attempt", m.Delivery.DeliveryAttempt),
		)
		if m.Delivery.CloudEvent != "" {
			log.Add(slog.String("cloudevent", m.Delivery.CloudEvent))
		}
	}
	if res.Err != nil {
		log.Add(slog.String("error", res.Err.Error()))
	}
	if res.Outcome == pipeline.Filtered {
		log.Add(slog.String("filter_rule", string(res.Filter.Rule)), slog.String("filter_reason", res.Filter.Reason))
	}
	if res.DeadLettered || res.DeadLetterErr != nil {
		log.Add(slog.Bool("dead_lettered", res.DeadLettered))
	}
	if res.DeadLetterErr != nil {
		log.Add(slog.String("dead_letter_error", res.DeadLetterErr.Error()))
	}
	if res.Sent.Body != "" {
		log.Add(slog.String("svix_body", res.Sent.Body))
	}
}

// accepted is the body of a successful answer.
type accepted struct {
	Outcome     string `json:"outcome"`
	EventID     string `json:"event_id,omitempty"`
	Application string `json:"application,omitempty"`
	// MessageID is the backend's id of the message: Svix's, or Gwook's own
	// under direct delivery (the receivers' webhook-id).
	MessageID string `json:"message_id,omitempty"`
	// SvixMessageID is MessageID again under the Svix backend only, as
	// answered before message_id existed.
	SvixMessageID string `json:"svix_message_id,omitempty"`
	Attempts      int    `json:"attempts,omitempty"`
	DeadLettered  bool   `json:"dead_lettered,omitempty"`
	FilterRule    string `json:"filter_rule,omitempty"`
}

// respond writes the answer for res, following the README's response table.
// Pub/Sub push acks only 102, 200, 201, 202 and 204, and the emulator takes
// 202 as a nack, so every success to a push is 200; a push is acked only
// when its event was delivered, deliberately dropped, or dead-lettered.
func (h *notifications) respond(w http.ResponseWriter, r *http.Request, m *pipeline.Message, res *pipeline.Result) {
	push := m.Delivery.Entry == pipeline.EntryPush
	ok := accepted{Outcome: string(res.Outcome), EventID: bounded(m.Event.ID), Application: res.AppID,
		MessageID: res.Sent.MessageID, Attempts: res.Sent.Attempts, DeadLettered: res.DeadLettered,
		FilterRule: string(res.Filter.Rule)}
	// A failure of the backend is Svix's side under Svix, and Gwook's own
	// (its queue, in its database) under direct delivery.
	layer := LayerGwook
	if res.Sent.Backend == pipeline.BackendSvix {
		layer, ok.SvixMessageID = LayerSvix, res.Sent.MessageID
	}
	p := Problem{Type: problemTypeBase + string(res.Outcome), Layer: layer, Outcome: string(res.Outcome),
		EventID: bounded(m.Event.ID), SvixStatus: res.Sent.Status, Attempts: res.Sent.Attempts, DeadLettered: res.DeadLettered,
		Detail: detail(res)}
	if res.DeadLetterErr != nil {
		p.Detail += "; dead-letter publish failed: the event is not stored, keep it and send it again"
	}
	if push && res.Handled() {
		// Delivered, dropped on purpose or safe on the dead-letter topic:
		// ack, as a pulled message is acked.
		writeJSON(w, http.StatusOK, ok)
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
		writeJSON(w, http.StatusAccepted, ok)
		return
	case pipeline.Filtered, pipeline.NoApplication:
		writeJSON(w, http.StatusOK, ok)
		return
	case pipeline.Duplicate:
		p.Status = http.StatusConflict
	case pipeline.Invalid:
		// A push lands here only without a dead-letter topic: the
		// subscription's own dead-letter policy then takes it.
		p.Status, p.Layer = http.StatusBadRequest, LayerGwook
		var invalid *event.InvalidError
		var tooLarge *ingest.EventTooLargeError
		switch {
		case errors.As(res.Err, &invalid):
			p.Errors = invalid.Fields
		case errors.As(res.Err, &tooLarge):
			p.Type, p.Status = problemTypeBase+"event_too_large", http.StatusRequestEntityTooLarge
		}
	case pipeline.Rejected:
		// The backend refused the message for good; push gets a nack so
		// the subscription's own dead-letter policy keeps it.
		p.Status = pick(push, http.StatusBadRequest, http.StatusUnprocessableEntity)
	case pipeline.RateLimited:
		p.Status = http.StatusTooManyRequests
		if res.Sent.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((res.Sent.RetryAfter+time.Second-1)/time.Second)))
		}
	case pipeline.DedupUnavailable:
		p.Status, p.Layer = http.StatusServiceUnavailable, LayerGwook
	case pipeline.InFlight:
		// Another event with the same dedup key is being sent: whether this
		// one is a duplicate is not known yet. Push: a nack, so Pub/Sub
		// redelivers; producer: try again, by the other event's lease at
		// the latest.
		p.Status, p.Layer = http.StatusServiceUnavailable, LayerGwook
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((res.RetryAfter+time.Second-1)/time.Second))))
	default:
		p.Status = pick(push, http.StatusServiceUnavailable, http.StatusInternalServerError)
	}
	writeProblem(w, r, p)
}

// detail says in words what became of the event, for the answer's body.
// It never carries res.Err itself, which can hold a library's text or an
// internal address; that goes to the log line.
func detail(res *pipeline.Result) string {
	switch res.Outcome {
	case pipeline.Invalid:
		var invalid *event.InvalidError
		var tooLarge *ingest.EventTooLargeError
		switch {
		case errors.As(res.Err, &invalid):
			return invalid.Reason
		case errors.As(res.Err, &tooLarge):
			return fmt.Sprintf("the event is %d bytes, above the %d that MAX_EVENT_BYTES allows", tooLarge.Size, tooLarge.Limit)
		}
		return "the event is not valid"
	case pipeline.Duplicate:
		switch res.Sent.Backend {
		case pipeline.BackendSvix:
			return "Svix already has a message with this event id"
		case pipeline.BackendDirect:
			return "the application already has a message with this event id"
		}
		return "an event with the same dedup key (DEDUP_KEY_FIELDS) was delivered within DEDUP_TTL"
	case pipeline.Rejected:
		if res.Sent.Backend != pipeline.BackendSvix {
			return "the application no longer exists, so no endpoint receives its events"
		}
		return fmt.Sprintf("Svix refused the message with status %d", res.Sent.Status)
	case pipeline.RateLimited:
		return fmt.Sprintf("Svix answered 429 to the last of %d attempts", res.Sent.Attempts)
	case pipeline.Unavailable:
		switch {
		case res.Sent.Backend != pipeline.BackendSvix:
			return "the delivery queue (Gwook's database) did not store the event"
		case res.Sent.Status != 0:
			return fmt.Sprintf("Svix answered %d to the last of %d attempts", res.Sent.Status, res.Sent.Attempts)
		}
		return fmt.Sprintf("Svix did not answer the last of %d attempts", res.Sent.Attempts)
	case pipeline.DedupUnavailable:
		return "the duplicate-suppression store is unavailable"
	}
	return ""
}

// maxEchoedField bounds the event fields echoed into logs and answers: an
// invalid event's id may be megabytes long. A valid id or type always fits.
const maxEchoedField = event.MaxSvixIDLength + 4

// bounded returns s cut to maxEchoedField bytes, as valid UTF-8.
func bounded(s string) string { return truncate.String(s, maxEchoedField) }

func pick(cond bool, ifTrue, ifFalse int) int {
	if cond {
		return ifTrue
	}
	return ifFalse
}
