package svix

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gwook/gwook/internal/telemetry"
)

// newTransport returns a keep-alive pool sized for a busy service, unlike the
// SDK's default (two idle connections per host, HTTP/2 off).
func newTransport(maxConnsPerHost int) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxConnsPerHost,
		MaxIdleConnsPerHost:   maxConnsPerHost,
		MaxConnsPerHost:       maxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// attemptRecord receives what the SDK's error does not carry: the response
// status and its Retry-After header.
type attemptRecord struct {
	status     int
	retryAfter string
}

type attemptRecordKey struct{}

func withAttemptRecord(ctx context.Context, rec *attemptRecord) context.Context {
	return context.WithValue(ctx, attemptRecordKey{}, rec)
}

// recordingTransport copies each response's status and Retry-After into the
// attemptRecord carried by the request's context.
type recordingTransport struct{ next http.RoundTripper }

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if rec, ok := req.Context().Value(attemptRecordKey{}).(*attemptRecord); ok && resp != nil {
		rec.status = resp.StatusCode
		rec.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

// debugTransport logs every request to Svix and its response at debug level,
// with the Authorization header redacted. It replaces the SDK's own debug
// mode, which prints the bearer token.
type debugTransport struct {
	next   http.RoundTripper
	logger *slog.Logger
}

func (t debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	reqBody, err := readAndRestore(&req.Body)
	if err != nil {
		return nil, err
	}
	endpoint := strings.Contains(req.URL.Path, "/endpoint")
	t.logger.DebugContext(ctx, "svix request", "method", req.Method, "url", req.URL.String(),
		"headers", redactedHeaders(req.Header), "body", redactedBody(reqBody, endpoint))
	started := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.logger.DebugContext(ctx, "svix transport error", "error", err.Error(), "duration_ms", telemetry.Milliseconds(time.Since(started)))
		return nil, err
	}
	respBody, readErr := readAndRestore(&resp.Body)
	t.logger.DebugContext(ctx, "svix response", "status", resp.StatusCode, "headers", redactedHeaders(resp.Header),
		"body", redactedBody(respBody, endpoint), "duration_ms", telemetry.Milliseconds(time.Since(started)))
	return resp, readErr
}

func readAndRestore(body *io.ReadCloser) ([]byte, error) {
	if *body == nil || *body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(*body)
	(*body).Close()
	*body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// secretFields matches the JSON fields of Svix's endpoint operations that
// carry a signing secret: "secret" when creating, "key" when rotating and
// reading it.
var secretFields = regexp.MustCompile(`"(secret|key)"\s*:\s*"(?:[^"\\]|\\.)*"`)

// redactedBody is body for logging: for an endpoint operation, with its
// secrets replaced.
func redactedBody(body []byte, endpoint bool) string {
	if !endpoint {
		return string(body)
	}
	return secretFields.ReplaceAllString(string(body), `"$1":"[redacted]"`)
}

// redactedHeaders returns h with credentials replaced, for logging.
func redactedHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for name, values := range h {
		switch http.CanonicalHeaderKey(name) {
		case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie":
			out[name] = "[redacted]"
		default:
			if len(values) > 0 {
				out[name] = values[0]
			}
		}
	}
	return out
}
