package svix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	svixgo "github.com/svix/svix-webhooks/go"

	"github.com/gwook/gwook/internal/event"
)

// messageCreator makes the one request Gwook sends to Svix per event: the
// SDK's Message.Create with the SDK's own URL and headers, written out. The
// SDK builds each request by reflection (the body's json.Marshal, the
// answer's json.Unmarshal into a MessageOut, the URL parsed twice), which
// took about 7% of Gwook's CPU per event (profile of raw events at
// concurrency 256). TestMessageRequestIsTheSDKs holds this request to the
// SDK's: the same URL, headers and body. It goes straight to the transport:
// Svix's API does not redirect, and http.Client.Do's redirect bookkeeping
// (a copy of the headers per request) cost about 1% of Gwook's CPU per
// event; a 3xx is an answer not taken, like any other non-2xx.
type messageCreator struct {
	transport http.RoundTripper
	base      string      // the API's base URL, as the SDK resolves it
	header    http.Header // Authorization and User-Agent, as the SDK sends them
}

// maxAnswerBytes bounds how much of Svix's answer to a message is read.
const maxAnswerBytes = 64 << 10

// answerError is Svix's answer to a request it did not take: its status and
// body.
type answerError struct {
	status int
	body   []byte
}

func (e *answerError) Error() string {
	return fmt.Sprintf("svix: status code %d %s", e.status, http.StatusText(e.status))
}

// newMessageCreator returns a messageCreator that sends through transport
// to where the SDK would send for token and serverURL (nil: the SDK picks
// Svix's regional API from the token).
func newMessageCreator(transport http.RoundTripper, token string, serverURL *url.URL) (*messageCreator, error) {
	sdkRequest, err := sdkHealthRequest(token, serverURL)
	if err != nil {
		return nil, err
	}
	return &messageCreator{
		transport: transport,
		base:      strings.TrimSuffix(sdkRequest.URL.String(), healthPath),
		header: http.Header{
			"Authorization": sdkRequest.Header.Values("Authorization"),
			"User-Agent":    sdkRequest.Header.Values("User-Agent"),
		},
	}, nil
}

const healthPath = "/api/v1/health"

var errNotSent = errors.New("svix: not sent")

// sdkHealthRequest returns the request the SDK makes to Svix's health
// endpoint for token and serverURL, without sending it anywhere: its URL
// and headers are what the SDK sends every request with.
func sdkHealthRequest(token string, serverURL *url.URL) (*http.Request, error) {
	var seen *http.Request
	keep := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return nil, errNotSent
	})
	sdk, err := svixgo.New(token, &svixgo.SvixOptions{ServerUrl: serverURL, HTTPClient: &http.Client{Transport: keep},
		RetrySchedule: &[]time.Duration{}})
	if err != nil {
		return nil, fmt.Errorf("svix: %w", err)
	}
	if err := sdk.Health.Get(context.Background()); !errors.Is(err, errNotSent) {
		return nil, fmt.Errorf("svix: reading the SDK's request: %v", err)
	}
	if seen == nil || !strings.HasSuffix(seen.URL.String(), healthPath) {
		return nil, errors.New("svix: the SDK made no request to its health endpoint")
	}
	return seen, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// messageBody is the MessageIn the SDK's NewMessageInRaw makes of n, with
// eventId set: n's raw bytes, as a string, are the payload Svix sends.
func messageBody(n *event.Notification) []byte {
	b := make([]byte, 0, len(n.Raw)+len(n.Type)+len(n.ID)+96)
	b = append(b, `{"eventType":`...)
	// The strings are quoted as encoding/json would: an invalid UTF-8
	// byte becomes U+FFFD. Validated events have none.
	b, _ = jsontext.AppendQuote(b, n.Type)
	b = append(b, `,"eventId":`...)
	b, _ = jsontext.AppendQuote(b, n.ID)
	b = append(b, `,"payload":{},"transformationsParams":{"rawPayload":`...)
	b, _ = jsontext.AppendQuote(b, n.Raw)
	return append(b, `}}`...)
}

// create sends body, a messageBody, as a new message of application appID
// with idempotency key eventID, and returns the created message's id. A
// status other than 2xx is an *answerError.
func (m *messageCreator) create(ctx context.Context, appID, eventID string, body []byte) (string, error) {
	// The SDK puts appID in the path as it is; escaping it changes
	// nothing for the ids Gwook accepts, and keeps any other in its place.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		m.base+"/api/v1/app/"+url.PathEscape(appID)+"/msg?with_content=false", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header = http.Header{
		"Authorization":   m.header["Authorization"],
		"User-Agent":      m.header["User-Agent"],
		"Content-Type":    {"application/json"},
		"Idempotency-Key": {eventID},
		"Svix-Req-Id":     {strconv.FormatUint(rand.Uint64(), 10)},
	}
	resp, err := m.transport.RoundTrip(req)
	if err != nil {
		// As http.Client.Do reports it.
		return "", &url.Error{Op: "Post", URL: req.URL.Redacted(), Err: err}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", &answerError{status: resp.StatusCode, body: answer}
	}
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	if len(answer) > 0 {
		if err := json.Unmarshal(answer, &out); err != nil {
			return "", fmt.Errorf("svix: reading the created message: %w", err)
		}
	}
	return out.ID, nil
}
