package svixserver

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	validator "github.com/pb33f/libopenapi-validator"
)

// Options configures a Server created by NewServer.
type Options struct {
	// Token is the expected bearer token; empty accepts any non-empty
	// token. SetToken changes it later.
	Token string
	// Validate checks every request to the message and health endpoints
	// against Svix's OpenAPI document. The document is loaded once per
	// process, which takes about a second (several under the race
	// detector) the first time.
	Validate bool
	// OnViolation is called for each request that does not match the
	// OpenAPI document. Such requests are also answered 422.
	OnViolation func(error)
	// OnMessage is called, outside the server's lock, for each message
	// accepted and stored.
	OnMessage func(Message)
}

// Message is a message the server accepted.
type Message struct {
	AppID          string
	EventType      string
	EventID        string
	IdempotencyKey string
	MsgID          string
	// Payload is the transformationsParams.rawPayload string's bytes when
	// the request carried one (as the SDK's NewMessageInRaw does), and the
	// payload object otherwise.
	Payload    json.RawMessage
	ReceivedAt time.Time
}

// Server is an in-memory, Svix-compatible http.Handler. It implements the
// message-creation, application-listing and health endpoints, including
// Svix's idempotency-key replay and eventId conflict rules, and can be
// scripted to fail.
// All methods are safe for concurrent use.
type Server struct {
	opts Options
	spec validator.Validator // nil when not validating
	url  string

	mu              sync.Mutex
	token           string // the expected bearer token; empty accepts any
	messages        []Message
	apps            map[string]*appState
	attempts        int
	tally           Tally
	script          []Response
	defaultResponse Response
	random          *randomFailure
	// stored is closed, then cleared, when a message is stored. It exists
	// only while WaitForMessages is waiting.
	stored chan struct{}
}

// appState holds what Svix keeps per application.
type appState struct {
	id        string                 // Svix's own id ("app_..."); the server's map key is the UID
	createdAt time.Time              // when the first message for it arrived
	replies   map[string]storedReply // successful answers by idempotency key
	eventIDs  map[string]struct{}    // eventIds of stored messages
}

// storedReply is a successful answer kept for idempotent replay.
type storedReply struct {
	status int
	body   []byte
}

// NewServer returns a Server configured by opts. It is not listening:
// serve it with net/http or httptest. With opts.Validate it loads Svix's
// OpenAPI document first (once per process) and fails if that cannot be
// done.
func NewServer(opts Options) (*Server, error) {
	s := &Server{opts: opts, token: opts.Token, apps: make(map[string]*appState)}
	if opts.Validate {
		v, err := sharedSpecValidator()
		if err != nil {
			return nil, fmt.Errorf("svixserver: load Svix OpenAPI document: %w", err)
		}
		s.spec = v
	}
	return s, nil
}

// New starts a validating Server on a loopback port for the test tb.
// Requests that do not match Svix's OpenAPI document fail tb through
// tb.Errorf. The server is closed when tb's cleanup runs.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := NewServer(Options{
		Validate: true,
		OnViolation: func(err error) {
			tb.Errorf("svixserver: request does not match the Svix OpenAPI document: %v", err)
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(s)
	s.url = hs.URL
	tb.Cleanup(hs.Close)
	return s
}

// URL returns the base URL of a Server started by New, suitable for
// svix.SvixOptions.ServerUrl; it is empty for servers from NewServer.
func (s *Server) URL() string {
	return s.url
}

// Messages returns the accepted messages in the order they were stored.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// MessagesFor returns the accepted messages whose eventId is eventID.
func (s *Server) MessagesFor(eventID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.EventID == eventID {
			out = append(out, m)
		}
	}
	return out
}

// Attempts returns how many message-creation requests arrived, including
// failed, rejected and replayed ones.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Tally counts how the server answered message-creation requests.
type Tally struct {
	ByStatus map[int]int // answers by HTTP status
	Delayed  int         // answers given after a scripted or random delay
	Last     time.Time   // when the last request arrived; zero before any
}

// Tally returns how the server has answered message-creation requests
// since it started or was last Reset.
func (s *Server) Tally() Tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tally
	t.ByStatus = maps.Clone(t.ByStatus)
	return t
}

// WaitForMessages waits until at least n messages have been accepted and
// returns them all. If that does not happen within timeout it fails tb with
// tb.Fatalf, so it must be called from the test's goroutine.
func (s *Server) WaitForMessages(tb testing.TB, n int, timeout time.Duration) []Message {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			out := append([]Message(nil), s.messages...)
			s.mu.Unlock()
			return out
		}
		if s.stored == nil {
			s.stored = make(chan struct{})
		}
		stored, got := s.stored, len(s.messages)
		s.mu.Unlock()

		select {
		case <-stored:
		case <-deadline.C:
			tb.Fatalf("svixserver: got %d messages after %v, want at least %d", got, timeout, n)
			return nil
		}
	}
}

// SetToken changes the bearer token the server expects from now on, as
// when a Svix API token is revoked or rotated; "" accepts any token.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Reset forgets all messages, idempotency keys, eventIds, attempts and
// scripted failures.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
	s.apps = make(map[string]*appState)
	s.attempts = 0
	s.tally = Tally{}
	s.script = nil
	s.defaultResponse = Response{}
	s.random = nil
}

// app returns the state of application appID, creating it if needed.
// The caller must hold s.mu.
func (s *Server) app(appID string) *appState {
	a, ok := s.apps[appID]
	if !ok {
		a = &appState{
			id:        newID("app_"),
			createdAt: time.Now().UTC(),
			replies:   make(map[string]storedReply),
			eventIDs:  make(map[string]struct{}),
		}
		s.apps[appID] = a
	}
	return a
}

// reportViolation passes a spec mismatch to the configured callback.
func (s *Server) reportViolation(err error) {
	if s.opts.OnViolation != nil {
		s.opts.OnViolation(err)
	}
}
