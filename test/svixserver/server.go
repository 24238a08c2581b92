package svixserver

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
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
	// Validate checks every request to an implemented endpoint
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

// Server is an in-memory, Svix-compatible http.Handler. It implements
// message creation, applications, endpoints and their secrets, event
// types, and the health check, including Svix's idempotency-key replay and eventId
// conflict rules, and can be scripted to fail.
// All methods are safe for concurrent use.
type Server struct {
	opts Options
	spec validator.Validator // nil when not validating
	url  string

	mu              sync.Mutex
	token           string // the expected bearer token; empty accepts any
	messages        []Message
	apps            map[string]*appState       // by Svix id
	appUIDs         map[string]*appState       // by uid, for those that have one
	eventTypes      map[string]*eventTypeState // by name, archived ones too
	attempts        int
	requests        map[Operation]int
	tally           Tally
	scripts         map[Operation][]Response
	defaultResponse Response
	random          *randomFailure
	// stored is closed, then cleared, when a message is stored. It exists
	// only while WaitForMessages is waiting.
	stored chan struct{}
}

// appState holds what Svix keeps per application.
type appState struct {
	id        string // Svix's own id ("app_...")
	uid       string // "" when the application has none
	name      string
	metadata  map[string]string
	createdAt time.Time
	updatedAt time.Time
	replies   map[string]storedReply    // successful answers by idempotency key
	eventIDs  map[string]struct{}       // eventIds of stored messages
	endpoints map[string]*endpointState // by Svix id
}

// endpointState holds what Svix keeps per endpoint.
type endpointState struct {
	id          string // Svix's own id ("ep_...")
	uid         string // "" when the endpoint has none
	url         string
	description string
	version     int32
	disabled    bool
	filterTypes []string // nil: every event type
	channels    []string // nil: every channel
	metadata    map[string]string
	secret      string
	oldSecrets  []PreviousSecret // by expiry, earliest first
	createdAt   time.Time
	updatedAt   time.Time
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
	s := &Server{opts: opts, token: opts.Token}
	s.clear()
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

// Reset forgets all messages, applications, endpoints, event types,
// idempotency keys, eventIds, request counts and scripted failures.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
}

// clear empties the server's state. The caller must hold s.mu, or be the
// only one to see s.
func (s *Server) clear() {
	s.messages = nil
	s.apps = make(map[string]*appState)
	s.appUIDs = make(map[string]*appState)
	s.eventTypes = make(map[string]*eventTypeState)
	s.attempts = 0
	s.requests = make(map[Operation]int)
	s.tally = Tally{}
	s.scripts = make(map[Operation][]Response)
	s.defaultResponse = Response{}
	s.random = nil
}

// Requests returns how many requests to op arrived since the server started
// or was last Reset, including failed, rejected and scripted ones.
func (s *Server) Requests(op Operation) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// App is what the server holds for an application.
type App struct {
	ID        string // Svix's id ("app_...")
	UID       string // "" when the application has none
	Name      string
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Endpoint is what the server holds for an endpoint.
type Endpoint struct {
	AppID       string // Svix's id of its application
	ID          string // Svix's id ("ep_...")
	UID         string // "" when the endpoint has none
	URL         string
	Description string
	Disabled    bool
	FilterTypes []string // nil: every event type
	Channels    []string // nil: every channel
	Metadata    map[string]string
	Secret      string // the current signing secret
	// PreviousSecrets are the secrets that rotations replaced and that
	// still sign until they expire, earliest expiry first.
	PreviousSecrets []PreviousSecret
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// PreviousSecret is a replaced signing secret that stays valid until
// ExpiresAt.
type PreviousSecret struct {
	Secret    string
	ExpiresAt time.Time
}

// Application returns the application whose Svix id or uid is idOrUID, as
// the server holds it now.
func (s *Server) Application(idOrUID string) (App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(idOrUID)
	if a == nil {
		return App{}, false
	}
	return App{ID: a.id, UID: a.uid, Name: a.name, Metadata: maps.Clone(a.metadata),
		CreatedAt: a.createdAt, UpdatedAt: a.updatedAt}, true
}

// Endpoint returns the endpoint whose Svix id or uid is endpointIDOrUID in
// the application whose Svix id or uid is appIDOrUID.
func (s *Server) Endpoint(appIDOrUID, endpointIDOrUID string) (Endpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(appIDOrUID)
	if a == nil {
		return Endpoint{}, false
	}
	e := a.findEndpoint(endpointIDOrUID)
	if e == nil {
		return Endpoint{}, false
	}
	return e.snapshot(a.id, time.Now()), true
}

// Endpoints returns the endpoints of the application whose Svix id or uid
// is appIDOrUID, in the order of their ids.
func (s *Server) Endpoints(appIDOrUID string) []Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(appIDOrUID)
	if a == nil {
		return nil
	}
	now := time.Now()
	out := make([]Endpoint, 0, len(a.endpoints))
	for _, e := range a.endpoints {
		out = append(out, e.snapshot(a.id, now))
	}
	slices.SortFunc(out, func(x, y Endpoint) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// snapshot copies e, with the previous secrets still valid at now.
func (e *endpointState) snapshot(appID string, now time.Time) Endpoint {
	return Endpoint{
		AppID: appID, ID: e.id, UID: e.uid, URL: e.url, Description: e.description, Disabled: e.disabled,
		FilterTypes: slices.Clone(e.filterTypes), Channels: slices.Clone(e.channels), Metadata: maps.Clone(e.metadata),
		Secret: e.secret, PreviousSecrets: unexpired(e.oldSecrets, now), CreatedAt: e.createdAt, UpdatedAt: e.updatedAt,
	}
}

// unexpired returns the secrets of olds that expire after now.
func unexpired(olds []PreviousSecret, now time.Time) []PreviousSecret {
	var out []PreviousSecret
	for _, o := range olds {
		if o.ExpiresAt.After(now) {
			out = append(out, o)
		}
	}
	return out
}

// findApp returns the application whose Svix id or uid is idOrUID, or nil.
// The caller must hold s.mu.
func (s *Server) findApp(idOrUID string) *appState {
	if a, ok := s.apps[idOrUID]; ok {
		return a
	}
	return s.appUIDs[idOrUID]
}

// newApp stores and returns a new application with a fresh Svix id. The
// caller must hold s.mu and have checked that uid is free.
func (s *Server) newApp(uid, name string, metadata map[string]string) *appState {
	now := time.Now().UTC()
	a := &appState{
		id:        newID("app_"),
		uid:       uid,
		name:      name,
		metadata:  metadata,
		createdAt: now,
		updatedAt: now,
		replies:   make(map[string]storedReply),
		eventIDs:  make(map[string]struct{}),
		endpoints: make(map[string]*endpointState),
	}
	s.apps[a.id] = a
	if uid != "" {
		s.appUIDs[uid] = a
	}
	return a
}

// app returns the application whose Svix id or uid is appID, creating one
// with that uid if there is none: unlike Svix, the server accepts messages
// for applications nobody created. The caller must hold s.mu.
func (s *Server) app(appID string) *appState {
	if a := s.findApp(appID); a != nil {
		return a
	}
	return s.newApp(appID, appID, map[string]string{})
}

// findEndpoint returns the endpoint of a whose Svix id or uid is idOrUID,
// or nil.
func (a *appState) findEndpoint(idOrUID string) *endpointState {
	if e, ok := a.endpoints[idOrUID]; ok {
		return e
	}
	for _, e := range a.endpoints {
		if e.uid != "" && e.uid == idOrUID {
			return e
		}
	}
	return nil
}

// reportViolation passes a spec mismatch to the configured callback.
func (s *Server) reportViolation(err error) {
	if s.opts.OnViolation != nil {
		s.opts.OnViolation(err)
	}
}
