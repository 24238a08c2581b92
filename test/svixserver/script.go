package svixserver

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Operation names an API operation the server implements, by its
// operationId in Svix's OpenAPI document. ScriptFor and Requests take one.
type Operation string

// The operations the server implements, besides the health check.
const (
	CreateMessage        Operation = "v1.message.create"
	ListApplications     Operation = "v1.application.list"
	CreateApplication    Operation = "v1.application.create"
	GetApplication       Operation = "v1.application.get"
	UpdateApplication    Operation = "v1.application.update"
	DeleteApplication    Operation = "v1.application.delete"
	CreateEndpoint       Operation = "v1.endpoint.create"
	GetEndpoint          Operation = "v1.endpoint.get"
	UpdateEndpoint       Operation = "v1.endpoint.update"
	DeleteEndpoint       Operation = "v1.endpoint.delete"
	GetEndpointSecret    Operation = "v1.endpoint.get-secret"
	RotateEndpointSecret Operation = "v1.endpoint.rotate-secret"
	ListEventTypes       Operation = "v1.event-type.list"
	CreateEventType      Operation = "v1.event-type.create"
	GetEventType         Operation = "v1.event-type.get"
	UpdateEventType      Operation = "v1.event-type.update"
	PatchEventType       Operation = "v1.event-type.patch"
	DeleteEventType      Operation = "v1.event-type.delete"
)

// Response scripts how the server answers a request.
// The zero value means normal handling.
type Response struct {
	// Status is the HTTP status to answer with, such as 429, 500 or 503;
	// 0 means normal handling. A non-zero status is answered with a
	// Svix-style error body and stores nothing.
	Status int
	// RetryAfter is the value of the Retry-After header, if any.
	RetryAfter string
	// Delay is how long to wait before answering. The wait ends early, with
	// no answer, when the client goes away.
	Delay time.Duration
}

// isNormal reports whether r leaves the request to normal handling,
// without delay.
func (r Response) isNormal() bool {
	return r == Response{}
}

// Fault is an answer FailRandomly gives to a share of requests.
type Fault struct {
	// Rate is the probability, from 0 to 1, that a request gets Response.
	Rate     float64
	Response Response
}

// randomFailure answers a share of requests with faults, reproducibly.
type randomFailure struct {
	faults []Fault
	rng    *rand.Rand
}

// pick draws the answer for one request: a fault's response, or the zero
// Response for normal handling.
func (f *randomFailure) pick() Response {
	p := f.rng.Float64()
	for _, fault := range f.faults {
		if p < fault.Rate {
			return fault.Response
		}
		p -= fault.Rate
	}
	return Response{}
}

// Script queues answers for the next len(rs) message-creation requests, in
// order of arrival; normal handling resumes once they are used up. Scripted
// answers take precedence over SetDefault and FailRandomly.
//
// A request takes its answer when it arrives. The delay applies first; a
// request without a valid token is still answered 401 and one that does
// not match the OpenAPI document 422, before any scripted status.
//
// Script(rs...) is ScriptFor(CreateMessage, rs...).
func (s *Server) Script(rs ...Response) {
	s.ScriptFor(CreateMessage, rs...)
}

// ScriptFor queues answers for the next len(rs) requests to op, in order
// of arrival, as Script does for message creation; each operation has its
// own queue. SetDefault and FailRandomly apply to message creation only.
func (s *Server) ScriptFor(op Operation, rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[op] = append(s.scripts[op], rs...)
}

// FailRandomly answers each message-creation request with one of faults,
// fault i with probability faults[i].Rate (the rates add up to at most 1),
// drawing from a generator seeded with seed so that runs are reproducible.
// A Response with only a Delay answers slowly, then normally. Calling it
// with no faults turns random failures off.
func (s *Server) FailRandomly(seed int64, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(faults) == 0 {
		s.random = nil
		return
	}
	s.random = &randomFailure{
		faults: slices.Clone(faults),
		rng:    rand.New(rand.NewPCG(uint64(seed), uint64(seed))),
	}
}

// SetDefault answers every message-creation request with r (unless a
// scripted answer is queued) until reset with SetDefault(Response{}).
// It takes precedence over FailRandomly.
func (s *Server) SetDefault(r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaultResponse = r
}

// nextResponse counts a request to op and picks how to answer it. The
// caller must hold s.mu.
func (s *Server) nextResponse(op Operation) Response {
	s.requests[op]++
	if op == CreateMessage {
		s.attempts++
		s.tally.Last = time.Now()
	}
	if script := s.scripts[op]; len(script) > 0 {
		r := script[0]
		script[0] = Response{}
		s.scripts[op] = script[1:]
		return r
	}
	if op != CreateMessage {
		return Response{}
	}
	if !s.defaultResponse.isNormal() {
		return s.defaultResponse
	}
	if s.random != nil {
		return s.random.pick()
	}
	return Response{}
}
