package svixserver

import (
	"math/rand/v2"
	"time"
)

// Response scripts how the server answers a message-creation request.
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

// randomFailure makes a fraction of requests fail, reproducibly.
type randomFailure struct {
	rate     float64
	response Response
	rng      *rand.Rand
}

// Script queues answers for the next len(rs) message-creation requests, in
// order of arrival; normal handling resumes once they are used up. Scripted
// answers take precedence over SetDefault and FailRandomly.
//
// A request takes its answer when it arrives. The delay applies first; a
// request without a valid token is still answered 401 and one that does
// not match the OpenAPI document 422, before any scripted status.
func (s *Server) Script(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, rs...)
}

// FailRandomly makes each message-creation request fail with r with
// probability rate, drawing from a generator seeded with seed so that runs
// are reproducible. A rate of 0 turns random failures off.
func (s *Server) FailRandomly(rate float64, r Response, seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rate <= 0 {
		s.random = nil
		return
	}
	s.random = &randomFailure{
		rate:     rate,
		response: r,
		rng:      rand.New(rand.NewPCG(uint64(seed), uint64(seed))),
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

// nextResponse counts a message-creation attempt and picks how to answer
// it. The caller must hold s.mu.
func (s *Server) nextResponse() Response {
	s.attempts++
	if len(s.script) > 0 {
		r := s.script[0]
		s.script[0] = Response{}
		s.script = s.script[1:]
		return r
	}
	if !s.defaultResponse.isNormal() {
		return s.defaultResponse
	}
	if s.random != nil && s.random.rng.Float64() < s.random.rate {
		return s.random.response
	}
	return Response{}
}
