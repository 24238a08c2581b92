package svixserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// msgIDPattern is MessageOut.id's pattern in the OpenAPI document.
var msgIDPattern = regexp.MustCompile(`^msg_[A-Za-z0-9]{27}$`)

// recordingTB is a testing.TB that records Errorf and Fatalf calls instead
// of failing the test, so tests can check that the server reports them.
type recordingTB struct {
	testing.TB

	mu     sync.Mutex
	errors []string
	fatals []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

func (r *recordingTB) Fatals() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.fatals...)
}

// newSDKClient returns an official Svix SDK client for baseURL that does
// not retry.
func newSDKClient(t *testing.T, baseURL, token string) *svix.Svix {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	noRetries := []time.Duration{}
	client, err := svix.New(token, &svix.SvixOptions{ServerUrl: u, RetrySchedule: &noRetries})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// rawMessageIn returns the SDK's raw-payload MessageIn with an eventId.
func rawMessageIn(eventType, eventID, payload string) svix.MessageIn {
	in := svix.NewMessageInRaw(eventType, payload, nil)
	in.EventId = &eventID
	return *in
}

// sdkStatus returns the HTTP status carried by an SDK error, or 0.
func sdkStatus(err error) int {
	if svixErr, ok := errors.AsType[*svix.Error](err); ok {
		return svixErr.Status()
	}
	return 0
}

// reply is an HTTP answer read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// request describes a hand-made HTTP request to the server.
type request struct {
	method         string
	path           string
	auth           string // Authorization header; "" sends none
	idempotencyKey string
	body           string
}

// do sends req to baseURL and reads the answer.
func do(t *testing.T, baseURL string, req request) reply {
	t.Helper()
	return doContext(t, context.Background(), baseURL, req)
}

func doContext(t *testing.T, ctx context.Context, baseURL string, req request) reply {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if req.body != "" {
		body = bytes.NewBufferString(req.body)
	}
	r, err := http.NewRequestWithContext(ctx, method, baseURL+req.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if req.auth != "" {
		r.Header.Set("Authorization", req.auth)
	}
	if req.idempotencyKey != "" {
		r.Header.Set("idempotency-key", req.idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// postMessage sends a message-creation request for appID.
func postMessage(t *testing.T, baseURL, appID, key, body string) reply {
	t.Helper()
	return do(t, baseURL, request{
		path:           "/api/v1/app/" + appID + "/msg",
		auth:           "Bearer test-token",
		idempotencyKey: key,
		body:           body,
	})
}

// messageBody returns a MessageIn JSON body with an object payload.
func messageBody(eventType, eventID string) string {
	return fmt.Sprintf(`{"eventType":%q,"eventId":%q,"payload":{"n":1}}`, eventType, eventID)
}

// errorBody decodes a Svix error body.
func errorBody(t *testing.T, r reply) (code, detail string) {
	t.Helper()
	var e struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e.Code, e.Detail
}

// newPlainServer starts a non-validating server for t.
func newPlainServer(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
