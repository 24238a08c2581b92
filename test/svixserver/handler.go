package svixserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	validationerrors "github.com/pb33f/libopenapi-validator/errors"
)

const (
	healthPath = "/api/v1/health"
	apiPrefix  = "/api/v1/"

	// maxRequestBody bounds request bodies; Svix itself accepts payloads
	// of up to 1 MiB.
	maxRequestBody = 4 << 20
)

// route is what a request's method and path select.
type route struct {
	op         Operation
	appID      string // the {app_id} path parameter, if any
	endpointID string // the {endpoint_id} path parameter, if any
	eventType  string // the {event_type_name} path parameter, if any
}

// routeOf returns the operation r asks for, and false when the server
// does not implement it. The health check is routed by ServeHTTP.
func routeOf(r *http.Request) (route, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	if !ok {
		return route{}, false
	}
	seg := strings.Split(rest, "/")
	if seg[0] == "event-type" {
		return eventTypeRouteOf(r.Method, seg[1:])
	}
	if seg[0] != "app" {
		return route{}, false
	}
	if len(seg) == 1 || (len(seg) == 2 && seg[1] == "") {
		switch r.Method {
		case http.MethodGet:
			return route{op: ListApplications}, true
		case http.MethodPost:
			return route{op: CreateApplication}, true
		}
		return route{}, false
	}
	for _, s := range seg[1:] {
		if s == "" {
			return route{}, false
		}
	}
	// The method and the path after {app_id}, with {endpoint_id} as such.
	rt := route{appID: seg[1]}
	tail := slices.Clone(seg[2:])
	if len(tail) >= 2 && tail[0] == "endpoint" {
		rt.endpointID, tail[1] = tail[1], "{endpoint_id}"
	}
	shape := r.Method + " " + strings.Join(tail, "/")
	switch shape {
	case "GET ":
		rt.op = GetApplication
	case "PUT ":
		rt.op = UpdateApplication
	case "DELETE ":
		rt.op = DeleteApplication
	case "POST msg":
		rt.op = CreateMessage
	case "POST endpoint":
		rt.op = CreateEndpoint
	case "GET endpoint/{endpoint_id}":
		rt.op = GetEndpoint
	case "PUT endpoint/{endpoint_id}":
		rt.op = UpdateEndpoint
	case "DELETE endpoint/{endpoint_id}":
		rt.op = DeleteEndpoint
	case "GET endpoint/{endpoint_id}/secret":
		rt.op = GetEndpointSecret
	case "POST endpoint/{endpoint_id}/secret/rotate":
		rt.op = RotateEndpointSecret
	default:
		return route{}, false
	}
	return rt, true
}

// eventTypeRouteOf returns the event-type operation that method asks for
// on the path segments after /api/v1/event-type, and false when the
// server does not implement it.
func eventTypeRouteOf(method string, seg []string) (route, bool) {
	if len(seg) == 0 || (len(seg) == 1 && seg[0] == "") {
		switch method {
		case http.MethodGet:
			return route{op: ListEventTypes}, true
		case http.MethodPost:
			return route{op: CreateEventType}, true
		}
		return route{}, false
	}
	if len(seg) != 1 {
		return route{}, false
	}
	rt := route{eventType: seg[0]}
	switch method {
	case http.MethodGet:
		rt.op = GetEventType
	case http.MethodPut:
		rt.op = UpdateEventType
	case http.MethodPatch:
		rt.op = PatchEventType
	case http.MethodDelete:
		rt.op = DeleteEventType
	default:
		return route{}, false
	}
	return rt, true
}

// ServeHTTP routes a request to the operation it asks for and answers
// anything the server does not implement 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if path := r.URL.Path; path == healthPath || path == healthPath+"/" {
		if r.Method == http.MethodGet {
			s.health(w, r)
			return
		}
		writeNotFound(w)
		return
	}
	rt, ok := routeOf(r)
	if !ok {
		writeNotFound(w)
		return
	}
	if rt.op == CreateMessage {
		rec := &statusRecorder{ResponseWriter: w}
		s.serve(rec, r, rt)
		if rec.status != 0 {
			s.mu.Lock()
			if s.tally.ByStatus == nil {
				s.tally.ByStatus = make(map[int]int)
			}
			s.tally.ByStatus[rec.status]++
			s.mu.Unlock()
		}
		return
	}
	s.serve(w, r, rt)
}

// serve answers a request to an implemented operation: it takes the
// request's scripted answer and reads its body, then applies the scripted
// delay, the token check, the OpenAPI check and the scripted status, in
// that order, and only then hands the request to the operation's handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) {
	s.mu.Lock()
	scripted := s.nextResponse(rt.op)
	s.mu.Unlock()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "Request body too large", "")
		} else {
			writeError(w, http.StatusBadRequest, "generic_error", "Could not read request body", "")
		}
		return
	}
	// The body is read first: only then does net/http notice a client
	// that goes away during the delay.
	if scripted.Delay > 0 {
		if !sleep(r.Context(), scripted.Delay) {
			return
		}
		if rt.op == CreateMessage {
			s.mu.Lock()
			s.tally.Delayed++
			s.mu.Unlock()
		}
	}
	if !s.authorized(w, r) || !s.conformsToSpec(w, r, body) {
		return
	}
	if scripted.Status != 0 {
		writeError(w, scripted.Status, errorCode(scripted.Status), "Scripted failure", scripted.RetryAfter)
		return
	}
	switch rt.op {
	case CreateMessage:
		s.createMessage(w, r, rt.appID, body)
	case ListApplications:
		s.listApplications(w, r)
	case CreateApplication:
		s.createApplication(w, r, body)
	case GetApplication:
		s.getApplication(w, rt.appID)
	case UpdateApplication:
		s.updateApplication(w, rt.appID, body)
	case DeleteApplication:
		s.deleteApplication(w, rt.appID)
	case CreateEndpoint:
		s.createEndpoint(w, rt.appID, body)
	case GetEndpoint:
		s.getEndpoint(w, rt.appID, rt.endpointID)
	case UpdateEndpoint:
		s.updateEndpoint(w, rt.appID, rt.endpointID, body)
	case DeleteEndpoint:
		s.deleteEndpoint(w, rt.appID, rt.endpointID)
	case GetEndpointSecret:
		s.getEndpointSecret(w, rt.appID, rt.endpointID)
	case RotateEndpointSecret:
		s.rotateEndpointSecret(w, rt.appID, rt.endpointID, body)
	case ListEventTypes:
		s.listEventTypes(w, r)
	case CreateEventType:
		s.createEventType(w, body)
	case GetEventType:
		s.getEventType(w, rt.eventType)
	case UpdateEventType:
		s.updateEventType(w, rt.eventType, body)
	case PatchEventType:
		s.patchEventType(w, rt.eventType, body)
	case DeleteEventType:
		s.deleteEventType(w, r, rt.eventType)
	}
}

// health answers Svix's health check. Like Svix, it needs no token.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if !s.conformsToSpec(w, r, nil) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listResponseApplicationOut is Svix's ListResponse_ApplicationOut_.
type listResponseApplicationOut struct {
	Data     []applicationOut `json:"data"`
	Done     bool             `json:"done"`
	Iterator *string          `json:"iterator"`
}

// defaultListLimit is Svix's page size when a list request gives no limit.
const defaultListLimit = 50

// listApplications implements GET /api/v1/app: the applications created
// through the API or by a message sent to them, in the order of their ids,
// at most limit of them. It does not paginate: the iterator is always null.
func (s *Server) listApplications(w http.ResponseWriter, r *http.Request) {
	limit := defaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		// A validating server has made sure it is a number from 1 to 250.
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			limit = n
		}
	}
	s.mu.Lock()
	apps := make([]applicationOut, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a.out())
	}
	s.mu.Unlock()
	slices.SortFunc(apps, func(a, b applicationOut) int { return strings.Compare(a.ID, b.ID) })
	out := listResponseApplicationOut{Data: apps[:min(limit, len(apps))], Done: len(apps) <= limit}
	writeJSONValue(w, http.StatusOK, out)
}

// messageIn is the part of Svix's MessageIn the server uses.
type messageIn struct {
	EventType             string                 `json:"eventType"`
	EventID               *string                `json:"eventId"`
	Payload               json.RawMessage        `json:"payload"`
	Channels              []string               `json:"channels"`
	Tags                  []string               `json:"tags"`
	DeliverAt             *time.Time             `json:"deliverAt"`
	TransformationsParams *transformationsParams `json:"transformationsParams"`
}

// transformationsParams is the part of MessageIn.transformationsParams
// the server uses.
type transformationsParams struct {
	RawPayload *string `json:"rawPayload"`
}

// messageOut is Svix's MessageOut.
type messageOut struct {
	EventType string          `json:"eventType"`
	EventID   *string         `json:"eventId,omitempty"`
	ID        string          `json:"id"`
	Timestamp time.Time       `json:"timestamp"`
	Payload   json.RawMessage `json:"payload"`
	Channels  []string        `json:"channels,omitempty"`
	Tags      []string        `json:"tags,omitempty"`
	DeliverAt *time.Time      `json:"deliverAt,omitempty"`
}

// createMessage implements POST /api/v1/app/{app_id}/msg.
func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, appID string, body []byte) {
	key := r.Header.Get("idempotency-key")
	if key != "" {
		s.mu.Lock()
		reply, replay := s.app(appID).replies[key]
		s.mu.Unlock()
		if replay {
			writeJSON(w, reply.status, reply.body)
			return
		}
	}

	withContent, err := withContentParam(r.URL.RawQuery)
	if err != nil {
		writeValidationError(w, []string{"query", "with_content"}, err.Error())
		return
	}
	var in messageIn
	if err := json.Unmarshal(body, &in); err != nil {
		writeValidationError(w, []string{"body"}, err.Error())
		return
	}
	if in.EventType == "" {
		writeValidationError(w, []string{"body", "eventType"}, "eventType is required")
		return
	}
	if len(in.Payload) == 0 || in.Payload[0] != '{' {
		writeValidationError(w, []string{"body", "payload"}, "payload must be an object")
		return
	}

	now := time.Now().UTC()
	msg := Message{
		AppID:          appID,
		EventType:      in.EventType,
		IdempotencyKey: key,
		MsgID:          newID("msg_"),
		Payload:        in.Payload,
		ReceivedAt:     now,
	}
	if in.EventID != nil {
		msg.EventID = *in.EventID
	}
	if tp := in.TransformationsParams; tp != nil && tp.RawPayload != nil {
		msg.Payload = json.RawMessage(*tp.RawPayload)
	}
	out := messageOut{
		EventType: in.EventType,
		EventID:   in.EventID,
		ID:        msg.MsgID,
		Timestamp: now,
		Payload:   in.Payload,
		Channels:  in.Channels,
		Tags:      in.Tags,
		DeliverAt: in.DeliverAt,
	}
	if !withContent {
		out.Payload = json.RawMessage(`{}`)
	}
	respBody, err := json.Marshal(out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", err.Error(), "")
		return
	}

	reply, outcome := s.store(msg, respBody)
	switch outcome {
	case replayed:
		writeJSON(w, reply.status, reply.body)
	case conflicted:
		writeError(w, http.StatusConflict, "conflict", "A message with this eventId already exists", "")
	case stored:
		if s.opts.OnMessage != nil {
			s.opts.OnMessage(msg)
		}
		writeJSON(w, http.StatusAccepted, respBody)
	}
}

// storeOutcome says what store did with a message.
type storeOutcome int

const (
	stored     storeOutcome = iota // kept, and its answer kept for replay
	replayed                       // another request with its idempotency key was stored first
	conflicted                     // its eventId was already used in the application
)

// store keeps msg, whose 202 answer is respBody, unless its idempotency key
// already has an answer (returned for replay) or its eventId is taken.
func (s *Server) store(msg Message, respBody []byte) (storedReply, storeOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.app(msg.AppID)
	if msg.IdempotencyKey != "" {
		if reply, ok := app.replies[msg.IdempotencyKey]; ok {
			return reply, replayed
		}
	}
	if msg.EventID != "" {
		if _, taken := app.eventIDs[msg.EventID]; taken {
			return storedReply{}, conflicted
		}
		app.eventIDs[msg.EventID] = struct{}{}
	}
	if msg.IdempotencyKey != "" {
		app.replies[msg.IdempotencyKey] = storedReply{status: http.StatusAccepted, body: respBody}
	}
	s.messages = append(s.messages, msg)
	if s.stored != nil {
		close(s.stored)
		s.stored = nil
	}
	return storedReply{}, stored
}

// authorized checks the bearer token and answers 401 if it is missing or,
// when a token is configured, different.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	want := s.token
	s.mu.Unlock()
	switch {
	case !strings.EqualFold(scheme, "Bearer") || token == "":
		writeError(w, http.StatusUnauthorized, "authentication_failed", "Missing or malformed Authorization header", "")
		return false
	case want != "" && token != want:
		writeError(w, http.StatusUnauthorized, "authentication_failed", "Invalid token", "")
		return false
	}
	return true
}

// conformsToSpec validates r, whose body has been read into body, against
// the OpenAPI document when the server validates. On a mismatch it reports
// a violation, answers 422 and returns false. Neither the report nor the
// answer shows the endpoint secrets the body carries.
func (s *Server) conformsToSpec(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if s.spec == nil {
		return true
	}
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	errs := validateRequest(s.spec, req)
	if len(errs) == 0 {
		return true
	}
	secrets := secretsIn(body)
	s.reportViolation(&violation{method: r.Method, path: r.URL.RequestURI(), errs: errs, secrets: secrets})
	items := validationItems(errs)
	for i := range items {
		items[i].Msg = redact(items[i].Msg, secrets)
	}
	writeJSONValue(w, http.StatusUnprocessableEntity, httpValidationError{Detail: items})
	return false
}

// secretsIn returns the string values of the top-level "secret" and "key"
// fields of a JSON object body: the endpoint secrets an EndpointIn or
// EndpointSecretRotateIn carries.
func secretsIn(body []byte) []string {
	var fields map[string]any
	if json.Unmarshal(body, &fields) != nil {
		return nil
	}
	var out []string
	for _, name := range []string{"secret", "key"} {
		if v, ok := fields[name].(string); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// redact returns text with each of secrets replaced.
func redact(text string, secrets []string) string {
	for _, secret := range secrets {
		text = strings.ReplaceAll(text, secret, "[redacted]")
	}
	return text
}

// violation is a request that does not match the OpenAPI document.
type violation struct {
	method, path string
	errs         []*validationerrors.ValidationError
	secrets      []string // kept out of Error
}

func (v *violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s:", v.method, v.path)
	for _, e := range v.errs {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return redact(b.String(), v.secrets)
}

// httpValidationError is Svix's 422 body (HTTPValidationError).
type httpValidationError struct {
	Detail []validationItem `json:"detail"`
}

// validationItem is Svix's ValidationError.
type validationItem struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// validationItems converts validator errors into Svix's 422 detail items.
func validationItems(errs []*validationerrors.ValidationError) []validationItem {
	var items []validationItem
	for _, e := range errs {
		if len(e.SchemaValidationErrors) > 0 {
			base := []string{"body"}
			if e.ValidationType != "requestBody" && e.ParameterName != "" {
				base = []string{e.ValidationSubType, e.ParameterName}
			}
			for _, f := range e.SchemaValidationErrors {
				loc := append(slices.Clone(base), f.InstancePath...)
				items = append(items, validationItem{Loc: loc, Msg: f.Reason, Type: "value_error"})
			}
			continue
		}
		var loc []string
		switch {
		case e.ValidationType == "requestBody":
			loc = []string{"body"}
		case e.ParameterName != "":
			loc = []string{e.ValidationSubType, e.ParameterName}
		default:
			loc = []string{e.ValidationType}
		}
		items = append(items, validationItem{Loc: loc, Msg: e.Message + ": " + e.Reason, Type: "value_error"})
	}
	return items
}

// withContentParam returns the with_content query parameter, which
// defaults to true.
func withContentParam(rawQuery string) (bool, error) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		name, value, _ := strings.Cut(pair, "=")
		if name == "with_content" {
			b, err := strconv.ParseBool(value)
			if err != nil {
				return false, fmt.Errorf("with_content must be a boolean, got %q", value)
			}
			return b, nil
		}
	}
	return true, nil
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

// sleep waits for d or until ctx is done, and reports whether the full
// wait elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// idAlphabet is the base62 alphabet of Svix's KSUID-based ids.
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns a random id shaped like Svix's: prefix ("msg_", "app_")
// followed by 27 base62 characters.
func newID(prefix string) string {
	id := make([]byte, len(prefix), len(prefix)+27)
	copy(id, prefix)
	for range 27 {
		id = append(id, idAlphabet[rand.IntN(len(idAlphabet))])
	}
	return string(id)
}

// errorCode returns the Svix error code used for status.
func errorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "generic_error"
	case http.StatusUnauthorized:
		return "authentication_failed"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusInternalServerError:
		return "server_error"
	}
	text := http.StatusText(status)
	if text == "" {
		return "error"
	}
	return strings.ReplaceAll(strings.ToLower(text), " ", "_")
}

// writeError writes a Svix-style error body ({"code","detail"}).
func writeError(w http.ResponseWriter, status int, code, detail, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSONValue(w, status, struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}{code, detail})
}

// writeNotFound writes Svix's 404 answer.
func writeNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "not_found", "Entity not found", "")
}

// writeValidationError writes a one-item Svix 422 body.
func writeValidationError(w http.ResponseWriter, loc []string, msg string) {
	writeJSONValue(w, http.StatusUnprocessableEntity, httpValidationError{
		Detail: []validationItem{{Loc: loc, Msg: msg, Type: "value_error"}},
	})
}

func writeJSONValue(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
