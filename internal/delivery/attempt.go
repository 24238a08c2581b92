// Package delivery makes one webhook delivery attempt over HTTP (Client.Send)
// and decides what follows it (Schedule.Next): delivered, retried after a
// delay, the endpoint gone, or the message failed for that endpoint.
//
// The client never follows redirects, never uses a proxy, refuses at dial
// time every address the netguard policy forbids (so DNS rebinding cannot
// get around the check made when the endpoint was created), bounds the whole
// attempt by one timeout and reads at most MaxResponseBody bytes of the
// answer for the attempt log.
package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gwook/gwook/internal/netguard"
)

// DefaultTimeout bounds an attempt when ClientOptions.Timeout is zero
// (DELIVERY_TIMEOUT's default).
const DefaultTimeout = 15 * time.Second

// DefaultMaxIdleConnsPerHost is the number of idle connections kept per
// receiver when ClientOptions.MaxIdleConnsPerHost is zero. Endpoints on
// one host share them: 10 endpoints there, at 10 attempts at once each,
// keep 100 connections busy, and with 32 kept the others were closed after
// each attempt and dialled again. Back to back on PostgreSQL, 10 endpoints
// on one receiver, 64 producers, 10 s windows, twice: 128 instead of 32
// delivered 7,275 and 7,471 webhooks/s instead of 6,587 and 6,894.
const DefaultMaxIdleConnsPerHost = 128

// MaxResponseBody is how much of a response body an attempt keeps for the
// attempt log.
const MaxResponseBody = 1 << 10

// drainLimit is how much of a response body, beyond MaxResponseBody, is
// read and thrown away so the connection can be reused. A longer body
// closes the connection instead.
const drainLimit = 64 << 10

// maxErrorLength bounds an error message, which is stored in the attempt
// log.
const maxErrorLength = 200

// ClientOptions configure a Client.
type ClientOptions struct {
	// Timeout bounds the whole attempt: name resolution, dial, TLS
	// handshake, writing the request, waiting for the response headers
	// and reading the body. Zero means DefaultTimeout.
	Timeout time.Duration
	// URLs decides which addresses may be dialed (checked on the resolved
	// address of every connection) and resolves host names (a nil
	// Resolver is net.DefaultResolver).
	URLs netguard.Policy
	// MaxIdleConnsPerHost is how many idle keep-alive connections are
	// kept per receiver. Zero means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// MaxConnsPerHost bounds the connections open to one receiver; an
	// attempt waiting for one spends its Timeout waiting. Zero means no
	// bound (the number of delivery workers bounds it).
	MaxConnsPerHost int
	// UserAgent is sent with every attempt, like "gwook/1.4.0". Empty
	// means "gwook".
	UserAgent string
}

// Client makes delivery attempts. It is safe for concurrent use and keeps
// connections to receivers alive between attempts.
type Client struct {
	http      *http.Client
	transport *http.Transport
	timeout   time.Duration
	userAgent string
}

// NewClient returns a Client configured by opts.
func NewClient(opts ClientOptions) *Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	idlePerHost := opts.MaxIdleConnsPerHost
	if idlePerHost <= 0 {
		idlePerHost = DefaultMaxIdleConnsPerHost
	}
	userAgent := opts.UserAgent
	if userAgent == "" {
		userAgent = "gwook"
	}
	policy := opts.URLs
	dialer := &net.Dialer{
		Resolver:  policy.Resolver,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, conn syscall.RawConn) error {
			err := policy.Control(network, address, conn)
			if err != nil {
				return &refusedAddressError{address: address, err: err}
			}
			return nil
		},
	}
	transport := &http.Transport{
		// A proxy from the environment would be dialed instead of the
		// receiver, and the guard would check the proxy's address.
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// The attempt's context bounds everything; these are tighter
		// bounds on the steps that should be quick.
		TLSHandshakeTimeout:   min(10*time.Second, timeout),
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   idlePerHost,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		// The body is kept for the attempt log as the receiver sent it;
		// without Accept-Encoding receivers have no reason to compress.
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	return &Client{
		http: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		transport: transport,
		timeout:   timeout,
		userAgent: userAgent,
	}
}

// CloseIdleConnections closes the keep-alive connections not in use.
func (c *Client) CloseIdleConnections() {
	c.transport.CloseIdleConnections()
}

// Request is one attempt: a POST of Body to URL with Header (the webhook-id,
// webhook-timestamp and webhook-signature headers among them). Content-Type
// defaults to application/json; User-Agent is the client's.
type Request struct {
	URL    string
	Body   []byte
	Header http.Header
}

// Result is how an attempt ended.
type Result struct {
	// Status is the response status, 0 when there was no response.
	Status int
	// Duration is the time from the start of the attempt to the end of
	// reading the response.
	Duration time.Duration
	// Err is why the attempt got no 2xx (a *AttemptError), nil when it
	// did. Its message is short and names neither the URL nor the
	// headers, for the attempt log.
	Err error
	// Body is the start of the response body, at most MaxResponseBody
	// bytes.
	Body []byte
	// RetryAfter is the wait the receiver asked for with Retry-After on a
	// 429 or 5xx response, 0 when there is none or it is unreadable or
	// not in the future.
	RetryAfter time.Duration
}

// OK reports whether the receiver answered with a 2xx status.
func (r Result) OK() bool { return r.Status >= 200 && r.Status < 300 }

// ErrorKind classifies an AttemptError.
type ErrorKind string

// The kinds of AttemptError.
const (
	// KindRefused: the address the URL resolves to is forbidden by the
	// policy; nothing was sent.
	KindRefused ErrorKind = "refused"
	// KindDNS: the host name did not resolve.
	KindDNS ErrorKind = "dns"
	// KindConnect: the connection could not be made.
	KindConnect ErrorKind = "connect"
	// KindTLS: the TLS handshake failed.
	KindTLS ErrorKind = "tls"
	// KindTimeout: the attempt took longer than its timeout.
	KindTimeout ErrorKind = "timeout"
	// KindConnection: the connection failed after it was made (reset,
	// closed before the response, malformed response).
	KindConnection ErrorKind = "connection"
	// KindStatus: the receiver answered with a status other than 2xx
	// (a redirect among them).
	KindStatus ErrorKind = "status"
	// KindCanceled: the caller's context ended the attempt.
	KindCanceled ErrorKind = "canceled"
	// KindRequest: the request could not be made (an invalid URL).
	KindRequest ErrorKind = "request"
)

// AttemptError is why an attempt got no 2xx. Its message is meant for the
// attempt log.
type AttemptError struct {
	Kind ErrorKind
	msg  string
	err  error
}

func (e *AttemptError) Error() string { return e.msg }

// Unwrap returns the underlying error (netguard.ErrForbiddenAddress for a
// refused address, for instance), nil for a status.
func (e *AttemptError) Unwrap() error { return e.err }

func attemptError(kind ErrorKind, err error, format string, args ...any) *AttemptError {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxErrorLength {
		msg = msg[:maxErrorLength-3] + "..."
	}
	return &AttemptError{Kind: kind, msg: msg, err: err}
}

// refusedAddressError is a dial refused by the policy, with the address it
// refused.
type refusedAddressError struct {
	address string
	err     error
}

func (e *refusedAddressError) Error() string { return e.err.Error() }
func (e *refusedAddressError) Unwrap() error { return e.err }

// message is why the address was refused: "127.0.0.1 is not public
// (loopback)".
func (e *refusedAddressError) message() string {
	ap, err := netip.ParseAddrPort(e.address)
	if err != nil {
		return "cannot read the address dialed"
	}
	return fmt.Sprintf("%s is not public (%s)", ap.Addr().Unmap(), netguard.Forbidden(ap.Addr()))
}

// Send makes one attempt: it posts r.Body to r.URL and reads the answer,
// within the client's timeout and ctx. It never follows a redirect. The
// status decides: a receiver that answered 2xx and then stalls its body
// has answered, and the attempt ends at the timeout with the body read so
// far.
func (c *Client) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	attemptCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	switch {
	case err != nil:
		return Result{Err: attemptError(KindRequest, err, "invalid URL"), Duration: time.Since(start)}
	case req.URL.Scheme != "https" && req.URL.Scheme != "http":
		return Result{Err: attemptError(KindRequest, nil, "invalid URL: the scheme must be https or http"), Duration: time.Since(start)}
	case req.URL.Host == "":
		return Result{Err: attemptError(KindRequest, nil, "invalid URL: no host"), Duration: time.Since(start)}
	}
	header := make(http.Header, len(r.Header)+2)
	for k, v := range r.Header {
		header[k] = v
	}
	if header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/json")
	}
	header.Set("User-Agent", c.userAgent)
	req.Header = header

	resp, err := c.http.Do(req)
	if err != nil {
		return Result{Err: c.classify(ctx, attemptCtx, err), Duration: time.Since(start)}
	}
	result := Result{Status: resp.StatusCode}
	result.Body = readBody(resp)
	result.Duration = time.Since(start)
	switch {
	case result.OK():
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		result.Err = attemptError(KindStatus, nil, "redirect (%d) not followed", resp.StatusCode)
	default:
		result.Err = attemptError(KindStatus, nil, "HTTP %d", resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		result.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return result
}

// readBody returns the first MaxResponseBody bytes of resp's body and
// closes it, after reading up to drainLimit more so the connection can
// serve the next attempt. A body known to be longer is not drained: the
// connection is closed instead. Reading stops at the attempt's deadline.
func readBody(resp *http.Response) []byte {
	defer resp.Body.Close()
	if resp.Body == http.NoBody || resp.ContentLength == 0 {
		return nil
	}
	size := int64(MaxResponseBody)
	if resp.ContentLength > 0 && resp.ContentLength < size {
		size = resp.ContentLength
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(resp.Body, buf)
	if err == nil && resp.ContentLength <= MaxResponseBody+drainLimit {
		io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	return buf[:n:n]
}

// classify turns the error of http.Client.Do into an AttemptError. ctx is
// the caller's context, attemptCtx the one bounded by the client's timeout.
func (c *Client) classify(ctx, attemptCtx context.Context, err error) *AttemptError {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err // its message repeats the URL, which may hold a secret
	}
	var refused *refusedAddressError
	if errors.As(err, &refused) {
		return attemptError(KindRefused, err, "refused: %s", refused.message())
	}
	if ctx.Err() != nil {
		return attemptError(KindCanceled, err, "canceled: %v", ctx.Err())
	}
	var netErr net.Error
	isTimeout := errors.As(err, &netErr) && netErr.Timeout()
	if deadline, _ := attemptCtx.Deadline(); attemptCtx.Err() != nil || isTimeout && !time.Now().Before(deadline) {
		// The transport's own timeouts race the attempt's deadline when
		// they are as long.
		return attemptError(KindTimeout, errors.Join(context.DeadlineExceeded, err), "timeout after %s", c.timeout)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return attemptError(KindDNS, err, "DNS: host not found")
		case dnsErr.IsTimeout:
			return attemptError(KindDNS, err, "DNS: lookup timed out")
		}
		return attemptError(KindDNS, err, "DNS: %s", dnsErr.Err)
	}
	if msg, ok := tlsMessage(err); ok {
		return attemptError(KindTLS, err, "TLS: %s", msg)
	}
	if isTimeout {
		// A transport timeout tighter than the attempt's, like "net/http:
		// TLS handshake timeout".
		return attemptError(KindTimeout, err, "%s", strings.TrimPrefix(err.Error(), "net/http: "))
	}
	var opErr *net.OpError
	var errno syscall.Errno
	hasErrno := errors.As(err, &errno)
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		if hasErrno {
			if errno == syscall.ECONNREFUSED {
				return attemptError(KindConnect, err, "connection refused")
			}
			return attemptError(KindConnect, err, "connect: %s", errno.Error())
		}
		return attemptError(KindConnect, err, "connect: %s", opErr.Err)
	}
	switch {
	case hasErrno:
		return attemptError(KindConnection, err, "connection error: %s", errno.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return attemptError(KindConnection, err, "connection closed before the response")
	}
	msg := strings.TrimPrefix(err.Error(), "net/http: ")
	msg = strings.TrimPrefix(msg, "HTTP/1.x transport connection broken: ")
	return attemptError(KindConnection, err, "%s", msg)
}

// tlsMessage describes a TLS handshake failure without the "tls: " and
// "x509: " prefixes, or reports that err is not one.
func tlsMessage(err error) (string, bool) {
	if errors.Is(err, http.ErrSchemeMismatch) {
		return "the server answered with plain HTTP", true
	}
	var (
		verifyErr    *tls.CertificateVerificationError
		recordErr    tls.RecordHeaderError
		alertErr     tls.AlertError
		unknownAuth  x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
		invalidCert  x509.CertificateInvalidError
		echRejectErr *tls.ECHRejectionError
	)
	var msg string
	switch {
	case errors.As(err, &recordErr):
		return "the server did not answer with TLS", true // nor with HTTP
	case errors.As(err, &verifyErr):
		msg = verifyErr.Err.Error()
	case errors.As(err, &unknownAuth):
		msg = unknownAuth.Error()
	case errors.As(err, &hostnameErr):
		msg = hostnameErr.Error()
	case errors.As(err, &invalidCert):
		msg = invalidCert.Error()
	case errors.As(err, &alertErr):
		msg = alertErr.Error()
	case errors.As(err, &echRejectErr):
		msg = echRejectErr.Error()
	case strings.HasPrefix(err.Error(), "tls: "):
		msg = err.Error()
	default:
		return "", false
	}
	msg = strings.TrimPrefix(msg, "tls: ")
	msg = strings.TrimPrefix(msg, "x509: ")
	return msg, true
}

// maxRetryAfter bounds a Retry-After value before the schedule caps it, so
// a huge number cannot overflow a time.Duration.
const maxRetryAfter = 7 * 24 * time.Hour

// parseRetryAfter reads a Retry-After value, in seconds or an HTTP date,
// relative to now. It returns 0 when the value is empty, unreadable,
// negative or not in the future.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		return min(max(at.Sub(now), 0), maxRetryAfter)
	}
	return 0
}
