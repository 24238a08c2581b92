package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/test/dnstest"
)

// receiver is a loopback test server that counts the connections it
// accepted and the requests it got.
type receiver struct {
	*httptest.Server
	conns    atomic.Int64
	requests atomic.Int64
}

func startReceiver(t testing.TB, handler http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		handler(w, req)
	}))
	r.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

// port is the receiver's port, for URLs with a host name.
func (r *receiver) port() string {
	_, port, _ := net.SplitHostPort(r.Listener.Addr().String())
	return port
}

// loopbackClient is a client allowed to reach the loopback receivers.
func loopbackClient(t testing.TB, timeout time.Duration) *Client {
	c := NewClient(ClientOptions{Timeout: timeout, URLs: netguard.Policy{AllowPrivate: true}, UserAgent: "gwook/test"})
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// kindOf is the kind of r.Err, "" when it is nil or not an *AttemptError.
func kindOf(r Result) ErrorKind {
	var ae *AttemptError
	if errors.As(r.Err, &ae) {
		return ae.Kind
	}
	return ""
}

// waitFor polls cond until it holds or a few seconds passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendDelivered(t *testing.T) {
	type seen struct {
		method, body, id, userAgent, contentType string
	}
	got := make(chan seen, 1)
	srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, string(body), r.Header.Get("webhook-id"), r.UserAgent(), r.Header.Get("Content-Type")}
		w.Write([]byte("thanks"))
	})
	header := http.Header{}
	header.Set("webhook-id", "msg_1")
	header.Set("webhook-timestamp", "1700000000")
	header.Set("webhook-signature", "v1,c2lnbmF0dXJl")

	res := loopbackClient(t, 5*time.Second).Send(t.Context(), Request{URL: srv.URL + "/hook", Body: []byte(`{"a":1}`), Header: header})

	if !res.OK() || res.Status != 200 || res.Err != nil {
		t.Fatalf("Send = status %d, err %v; want 200 and no error", res.Status, res.Err)
	}
	if string(res.Body) != "thanks" || res.Duration <= 0 || res.RetryAfter != 0 {
		t.Errorf("Send = body %q, duration %v, retry after %v", res.Body, res.Duration, res.RetryAfter)
	}
	want := seen{"POST", `{"a":1}`, "msg_1", "gwook/test", "application/json"}
	if s := <-got; s != want {
		t.Errorf("the receiver saw %+v, want %+v", s, want)
	}
	if len(header) != 3 {
		t.Errorf("Send changed the caller's header: %v", header)
	}
}

func TestSendStatuses(t *testing.T) {
	target := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	inTwoMinutes := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		status     int
		header     map[string]string
		wantErr    string
		retryAfter time.Duration // 0: none; otherwise at most this and more than this minus 2s
	}{
		{"201", 201, nil, "", 0},
		{"204", 204, nil, "", 0},
		{"500", 500, nil, "HTTP 500", 0},
		{"410", 410, nil, "HTTP 410", 0},
		{"404 with Retry-After ignored", 404, map[string]string{"Retry-After": "30"}, "HTTP 404", 0},
		{"302", 302, map[string]string{"Location": target.URL}, "redirect (302) not followed", 0},
		{"307", 307, map[string]string{"Location": target.URL}, "redirect (307) not followed", 0},
		{"429 with seconds", 429, map[string]string{"Retry-After": "120"}, "HTTP 429", 120 * time.Second},
		{"503 with a date", 503, map[string]string{"Retry-After": inTwoMinutes}, "HTTP 503", 2 * time.Minute},
		{"500 with a bad value", 500, map[string]string{"Retry-After": "soon"}, "HTTP 500", 0},
		{"429 with a huge value", 429, map[string]string{"Retry-After": "99999999999999999999"}, "HTTP 429", maxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
			})
			res := loopbackClient(t, 5*time.Second).Send(t.Context(), Request{URL: srv.URL})
			if res.Status != tc.status {
				t.Fatalf("status = %d (err %v), want %d", res.Status, res.Err, tc.status)
			}
			if tc.wantErr == "" {
				if res.Err != nil || !res.OK() {
					t.Errorf("Send = %v, OK %v; want no error", res.Err, res.OK())
				}
			} else {
				if res.Err == nil || res.Err.Error() != tc.wantErr || kindOf(res) != KindStatus || res.OK() {
					t.Errorf("Send = %v (kind %q), OK %v; want %q of kind status", res.Err, kindOf(res), res.OK(), tc.wantErr)
				}
			}
			if tc.retryAfter == 0 && res.RetryAfter != 0 ||
				tc.retryAfter != 0 && (res.RetryAfter > tc.retryAfter || res.RetryAfter <= tc.retryAfter-2*time.Second) {
				t.Errorf("RetryAfter = %v, want %v", res.RetryAfter, tc.retryAfter)
			}
		})
	}
	if n := target.requests.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want none", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"7", 7 * time.Second},
		{" 60 ", time.Minute},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", maxRetryAfter},
		{"Sat, 01 Mar 2025 12:10:00 GMT", 10 * time.Minute},
		{"Saturday, 01-Mar-25 12:00:30 GMT", 30 * time.Second}, // RFC 850
		{"Sat Mar  1 13:00:00 2025", time.Hour},                // asctime
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0},                   // in the past
		{"Sat, 01 Mar 2035 11:00:00 GMT", maxRetryAfter},
	} {
		if got := parseRetryAfter(tc.value, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.value, got, tc.want)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	const timeout = 200 * time.Millisecond
	res := loopbackClient(t, timeout).Send(t.Context(), Request{URL: srv.URL})
	if res.Status != 0 || kindOf(res) != KindTimeout || res.Err.Error() != "timeout after 200ms" {
		t.Fatalf("Send = status %d, err %v (kind %q); want no status and %q", res.Status, res.Err, kindOf(res), "timeout after 200ms")
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("the error %v does not wrap context.DeadlineExceeded", res.Err)
	}
	if res.Duration < timeout {
		t.Errorf("Duration = %v, shorter than the timeout", res.Duration)
	}
}

// TestSendSlowBodyAfterStatus: a receiver that answered 2xx and then stalls
// its body has answered; the attempt ends at the timeout with what was read.
func TestSendSlowBodyAfterStatus(t *testing.T) {
	srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	res := loopbackClient(t, 200*time.Millisecond).Send(t.Context(), Request{URL: srv.URL})
	if !res.OK() || res.Err != nil || string(res.Body) != "partial" {
		t.Errorf("Send = status %d, err %v, body %q; want 200, no error, %q", res.Status, res.Err, res.Body, "partial")
	}
}

func TestSendCanceled(t *testing.T) {
	started := make(chan struct{})
	srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	res := loopbackClient(t, time.Minute).Send(ctx, Request{URL: srv.URL})
	if res.Status != 0 || kindOf(res) != KindCanceled || !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Send = status %d, err %v (kind %q); want it canceled", res.Status, res.Err, kindOf(res))
	}
}

func TestSendConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := loopbackClient(t, 5*time.Second).Send(t.Context(), Request{URL: "http://" + addr + "/"})
	if res.Status != 0 || kindOf(res) != KindConnect || res.Err.Error() != "connection refused" {
		t.Errorf("Send = status %d, err %v (kind %q); want %q", res.Status, res.Err, kindOf(res), "connection refused")
	}
}

func TestSendInvalidURL(t *testing.T) {
	c := loopbackClient(t, 5*time.Second)
	for _, u := range []string{"://nope", "ftp://127.0.0.1/", "http://[::1", "/hook", "http:///hook", "https:127.0.0.1"} {
		res := c.Send(t.Context(), Request{URL: u})
		if res.Status != 0 || kindOf(res) != KindRequest || strings.Contains(res.Err.Error(), u) {
			t.Errorf("Send(%q) = status %d, err %v; want an error not repeating the URL", u, res.Status, res.Err)
		}
	}
}

func TestSendErrorHidesURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := loopbackClient(t, 5*time.Second).Send(t.Context(), Request{URL: "http://" + addr + "/hook?token=hunter2"})
	if res.Err == nil || strings.Contains(res.Err.Error(), "hunter2") {
		t.Errorf("Send = %v; want an error without the URL's query", res.Err)
	}
}

func TestSendTLS(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := startReceiver(t, func(http.ResponseWriter, *http.Request) {})
	c := loopbackClient(t, 5*time.Second)

	res := c.Send(t.Context(), Request{URL: tlsSrv.URL})
	if kindOf(res) != KindTLS || res.Err.Error() != "TLS: certificate signed by unknown authority" {
		t.Errorf("Send to an untrusted certificate = %v (kind %q)", res.Err, kindOf(res))
	}
	res = c.Send(t.Context(), Request{URL: strings.Replace(plain.URL, "http:", "https:", 1)})
	if kindOf(res) != KindTLS || res.Err.Error() != "TLS: the server answered with plain HTTP" {
		t.Errorf("Send over TLS to a plain HTTP server = %v (kind %q)", res.Err, kindOf(res))
	}
}

func TestSendBodyTruncated(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3200 bytes
	srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		w.Write(body)
	})
	res := loopbackClient(t, 5*time.Second).Send(t.Context(), Request{URL: srv.URL})
	if res.Status != 500 || !bytes.Equal(res.Body, body[:MaxResponseBody]) {
		t.Errorf("Send = status %d, %d body bytes; want 500 and the first %d bytes", res.Status, len(res.Body), MaxResponseBody)
	}
}

// TestSendEndlessBody: a receiver that never stops writing gets its
// connection closed once the bounded read is done, long before the timeout.
func TestSendEndlessBody(t *testing.T) {
	for _, declared := range []bool{false, true} {
		t.Run("content-length "+strconv.FormatBool(declared), func(t *testing.T) {
			var stopped atomic.Bool
			var written atomic.Int64
			srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				if declared {
					w.Header().Set("Content-Length", strconv.Itoa(1<<40))
				}
				chunk := bytes.Repeat([]byte("x"), 32<<10)
				for {
					n, err := w.Write(chunk)
					written.Add(int64(n))
					if err != nil {
						stopped.Store(true)
						return
					}
				}
			})
			const timeout = time.Minute
			res := loopbackClient(t, timeout).Send(t.Context(), Request{URL: srv.URL})
			if !res.OK() || len(res.Body) != MaxResponseBody || res.Duration >= timeout {
				t.Fatalf("Send = status %d, err %v, %d body bytes after %v", res.Status, res.Err, len(res.Body), res.Duration)
			}
			waitFor(t, "the receiver's writes to fail", stopped.Load)
			t.Logf("the receiver wrote %d bytes before its connection was closed (socket buffers included)", written.Load())
		})
	}
}

func TestSendReusesConnections(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		bodySize  int
		wantConns func(sends int64) int64
	}{
		{"204", 204, 0, func(int64) int64 { return 1 }},
		{"200 with a short body", 200, 100, func(int64) int64 { return 1 }},
		{"500 with a body within the drain bound", 500, 20 << 10, func(int64) int64 { return 1 }},
		{"200 with a body past the drain bound", 200, 1 << 20, func(sends int64) int64 { return sends }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("y"), tc.bodySize)
			srv := startReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write(body)
			})
			c := loopbackClient(t, 5*time.Second)
			const sends = 50
			for range sends {
				if res := c.Send(t.Context(), Request{URL: srv.URL, Body: []byte("{}")}); res.Status != tc.status {
					t.Fatalf("Send = status %d, err %v", res.Status, res.Err)
				}
			}
			if got, want := srv.conns.Load(), tc.wantConns(sends); got != want {
				t.Errorf("%d sends used %d connections, want %d", sends, got, want)
			}
		})
	}
}

func TestClientUsesNoProxy(t *testing.T) {
	proxy := startReceiver(t, func(http.ResponseWriter, *http.Request) {})
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	dns := dnstest.Start(t)
	dns.Set("receiver.test", "127.0.0.1")
	srv := startReceiver(t, func(http.ResponseWriter, *http.Request) {})
	c := NewClient(ClientOptions{URLs: netguard.Policy{AllowPrivate: true, Resolver: dns.Resolver()}})
	t.Cleanup(c.CloseIdleConnections)
	if c.transport.Proxy != nil {
		t.Error("the transport has a Proxy function")
	}
	res := c.Send(t.Context(), Request{URL: "http://receiver.test:" + srv.port() + "/"})
	if !res.OK() || srv.requests.Load() != 1 || proxy.requests.Load() != 0 {
		t.Errorf("Send = %d %v; receiver got %d requests, proxy %d", res.Status, res.Err, srv.requests.Load(), proxy.requests.Load())
	}
}

// TestSendRefusesForbiddenAddresses: names resolving to non-public
// addresses are refused when dialing, before any packet is sent.
func TestSendRefusesForbiddenAddresses(t *testing.T) {
	dns := dnstest.Start(t)
	dns.Set("loopback.test", "127.0.0.1")
	dns.Set("private.test", "10.0.0.1")
	dns.Set("metadata.test", "169.254.169.254")
	srv := startReceiver(t, func(http.ResponseWriter, *http.Request) {})
	port := srv.port()

	for _, tc := range []struct {
		url          string
		allowPrivate bool
		want         string
	}{
		{"http://loopback.test:" + port + "/", false, "refused: 127.0.0.1 is not public (loopback)"},
		{"http://127.0.0.1:" + port + "/", false, "refused: 127.0.0.1 is not public (loopback)"},
		{"http://private.test:" + port + "/", false, "refused: 10.0.0.1 is not public (private)"},
		{"http://metadata.test:" + port + "/", false, "refused: 169.254.169.254 is not public (cloud metadata)"},
		{"http://metadata.test:" + port + "/", true, "refused: 169.254.169.254 is not public (cloud metadata)"},
		{"http://[::ffff:127.0.0.1]:" + port + "/", false, "refused: 127.0.0.1 is not public (loopback)"},
	} {
		c := NewClient(ClientOptions{Timeout: 5 * time.Second, URLs: netguard.Policy{AllowPrivate: tc.allowPrivate, Resolver: dns.Resolver()}})
		res := c.Send(t.Context(), Request{URL: tc.url})
		if res.Status != 0 || kindOf(res) != KindRefused || res.Err.Error() != tc.want || !errors.Is(res.Err, netguard.ErrForbiddenAddress) {
			t.Errorf("Send(%s), AllowPrivate %v = status %d, err %v (kind %q); want %q", tc.url, tc.allowPrivate, res.Status, res.Err, kindOf(res), tc.want)
		}
	}
	if n, m := srv.conns.Load(), srv.requests.Load(); n != 0 || m != 0 {
		t.Errorf("the receiver accepted %d connections and %d requests, want none", n, m)
	}

	// The same name is reached where private networks are allowed, so the
	// dial does use the policy's resolver.
	c := NewClient(ClientOptions{URLs: netguard.Policy{AllowPrivate: true, Resolver: dns.Resolver()}})
	t.Cleanup(c.CloseIdleConnections)
	if res := c.Send(t.Context(), Request{URL: "http://loopback.test:" + port + "/"}); !res.OK() || srv.requests.Load() != 1 {
		t.Errorf("Send with private networks allowed = status %d, err %v", res.Status, res.Err)
	}
}

// TestSendRefusesRebinding: a name that was public when its URL was
// checked and resolves to the loopback when delivering is refused.
func TestSendRefusesRebinding(t *testing.T) {
	dns := dnstest.Start(t)
	dns.Set("rebind.test", "93.184.216.34")
	srv := startReceiver(t, func(http.ResponseWriter, *http.Request) {})
	policy := netguard.Policy{Resolver: dns.Resolver()}
	url := "https://rebind.test:" + srv.port() + "/hook"
	if err := policy.CheckURL(t.Context(), url); err != nil {
		t.Fatalf("CheckURL while the name is public: %v", err)
	}
	dns.Set("rebind.test", "127.0.0.1")
	res := NewClient(ClientOptions{URLs: policy}).Send(t.Context(), Request{URL: url})
	if kindOf(res) != KindRefused || srv.conns.Load() != 0 {
		t.Errorf("Send after rebinding = %v (kind %q), %d connections to the receiver", res.Err, kindOf(res), srv.conns.Load())
	}
}

func TestSendUnknownHost(t *testing.T) {
	dns := dnstest.Start(t)
	c := NewClient(ClientOptions{URLs: netguard.Policy{Resolver: dns.Resolver()}})
	res := c.Send(t.Context(), Request{URL: "https://missing.test/hook"})
	if res.Status != 0 || kindOf(res) != KindDNS || res.Err.Error() != "DNS: host not found" {
		t.Errorf("Send = status %d, err %v (kind %q); want %q", res.Status, res.Err, kindOf(res), "DNS: host not found")
	}
}

func BenchmarkSend(b *testing.B) {
	srv := startReceiver(b, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	c := loopbackClient(b, 5*time.Second)
	header := http.Header{}
	header.Set("webhook-id", "msg_2a8cd1b2e0bff1a1")
	header.Set("webhook-timestamp", "1700000000")
	header.Set("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
	req := Request{URL: srv.URL + "/hook", Body: bytes.Repeat([]byte("z"), 512), Header: header}

	// conns is the connections opened by one run of a sub-benchmark.
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		c.CloseIdleConnections()
		srv.conns.Store(0)
		for b.Loop() {
			if res := c.Send(context.Background(), req); !res.OK() {
				b.Fatal(res.Err)
			}
		}
		b.ReportMetric(float64(srv.conns.Load()), "conns")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		c.CloseIdleConnections()
		srv.conns.Store(0)
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := c.Send(context.Background(), req); !res.OK() {
					b.Error(res.Err)
					return
				}
			}
		})
		b.ReportMetric(float64(srv.conns.Load()), "conns")
	})
}

// rawServer accepts TCP connections on the loopback and hands each to
// serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				serve(conn)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSendBrokenConnections(t *testing.T) {
	closing := rawServer(t, func(conn net.Conn) {
		conn.Read(make([]byte, 4096))
	})
	garbage := rawServer(t, func(conn net.Conn) {
		conn.Read(make([]byte, 4096)) // the request or the TLS hello
		conn.Write([]byte("\x00\x01garbage, neither TLS nor HTTP\r\n"))
	})
	c := loopbackClient(t, 5*time.Second)
	for _, tc := range []struct {
		url  string
		kind ErrorKind
		want string
	}{
		{"http://" + closing + "/", KindConnection, "connection closed before the response"},
		{"http://" + garbage + "/", KindConnection, `malformed HTTP status code "neither"`},
		{"https://" + garbage + "/", KindTLS, "TLS: the server did not answer with TLS"},
	} {
		res := c.Send(t.Context(), Request{URL: tc.url})
		if res.Status != 0 || kindOf(res) != tc.kind || res.Err.Error() != tc.want {
			t.Errorf("Send(%s) = status %d, err %q (kind %q); want %q of kind %q", tc.url, res.Status, res.Err, kindOf(res), tc.want, tc.kind)
		}
	}
}
