package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// maxReceivedBody is the largest body a Receiver reads: far above the
// largest event Gwook accepts.
const maxReceivedBody = 16 << 20

// Webhook is one request a Receiver received.
type Webhook struct {
	ID        string      // the webhook-id header (or svix-id, as Verify reads it); empty when absent
	Timestamp time.Time   // the webhook-timestamp header (or svix-timestamp); zero when absent or not Unix seconds
	At        time.Time   // when the Receiver received it
	Err       error       // nil when it verified; otherwise why not, a *VerifyError for a failed check
	Status    int         // the HTTP status the Receiver answered
	Header    http.Header // the request's headers
	Body      []byte      // the request's body
}

// Verified reports whether the webhook passed Verify.
func (w Webhook) Verified() bool { return w.Err == nil }

// ReceiverOptions configures a Receiver. The zero value verifies with
// DefaultTolerance, answers 204 and keeps nothing.
type ReceiverOptions struct {
	// Tolerance is passed to Verify.
	Tolerance time.Duration
	// Status answers a webhook that verified (default 204 No Content);
	// another value, such as 500 or 410, lets a sender's retries be tried.
	Status int
	// OnReceive, when set, is called with each webhook before it is
	// answered. Requests are served concurrently, so it may be called
	// concurrently.
	OnReceive func(Webhook)
	// Keep keeps every webhook for Received and WaitFor. It suits tests;
	// a long-running receiver should report through OnReceive instead.
	Keep bool
	// Now is the clock the timestamps are checked against (default
	// time.Now).
	Now func() time.Time
}

// Receiver is an http.Handler receiving webhooks on any path: it verifies
// each POST with Verify and answers it with the configured status (204 by
// default) when valid, and 401 with a short text saying why when not.
type Receiver struct {
	secrets []string
	opts    ReceiverOptions

	mu       sync.Mutex
	received []Webhook
	arrived  chan struct{} // closed and replaced when a webhook is kept
}

// NewReceiver returns a Receiver verifying with secrets; it fails as
// Verify does for missing or malformed secrets, or for a status that is
// not an HTTP status code.
func NewReceiver(secrets []string, opts ReceiverOptions) (*Receiver, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecrets
	}
	var key [keyRoom]byte
	for i := range secrets {
		if _, err := decodeSecret(key[:], secrets, i); err != nil {
			return nil, err
		}
	}
	if opts.Status == 0 {
		opts.Status = http.StatusNoContent
	}
	if opts.Status < 200 || opts.Status > 599 {
		return nil, fmt.Errorf("webhook receiver: status %d is not an HTTP status from 200 to 599", opts.Status)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Receiver{secrets: slices.Clone(secrets), opts: opts, arrived: make(chan struct{})}, nil
}

// ServeHTTP verifies and answers one request; a method other than POST is
// answered 405 and not reported.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
		return
	}
	now := r.opts.Now()
	_, id, timestamp, _ := signedHeaderValues(req.Header)
	wh := Webhook{ID: id, At: now, Header: req.Header.Clone()}
	if unix, err := strconv.ParseInt(timestamp, 10, 64); err == nil {
		wh.Timestamp = time.Unix(unix, 0)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxReceivedBody))
	wh.Body = body
	status := http.StatusUnauthorized
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		wh.Err = fmt.Errorf("body larger than %d bytes", maxReceivedBody)
		status = http.StatusRequestEntityTooLarge
	case err != nil:
		wh.Err = fmt.Errorf("reading the body: %w", err)
		status = http.StatusBadRequest
	default:
		wh.Err = Verify(r.secrets, req.Header, body, now, r.opts.Tolerance)
	}
	if wh.Err == nil {
		status = r.opts.Status
	}
	wh.Status = status
	r.report(wh)
	if wh.Err != nil {
		http.Error(w, wh.Err.Error(), status)
		return
	}
	w.WriteHeader(status)
}

func (r *Receiver) report(wh Webhook) {
	if r.opts.OnReceive != nil {
		r.opts.OnReceive(wh)
	}
	if !r.opts.Keep {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received = append(r.received, wh)
	close(r.arrived)
	r.arrived = make(chan struct{})
}

// Received returns the webhooks received so far, oldest first, when the
// Receiver keeps them (ReceiverOptions.Keep).
func (r *Receiver) Received() []Webhook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.received)
}

// WaitFor waits until the Receiver has kept at least n webhooks and
// returns them, or returns those it has and an error after timeout. It
// fails at once on a Receiver that keeps nothing.
func (r *Receiver) WaitFor(n int, timeout time.Duration) ([]Webhook, error) {
	if !r.opts.Keep {
		return nil, errors.New("webhook receiver: WaitFor on a receiver that does not keep webhooks (ReceiverOptions.Keep)")
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		received, arrived := slices.Clone(r.received), r.arrived
		r.mu.Unlock()
		if len(received) >= n {
			return received, nil
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return received, fmt.Errorf("webhook receiver: %d webhooks after %v, want %d", len(received), timeout, n)
		}
	}
}
