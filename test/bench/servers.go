package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

// baselinePath is where the baseline proxy sends every request. The
// Svix-compatible server's process wraps each body found there in a Svix
// MessageIn, as gwook does with an event, so that the server does the same
// work for the baseline as for gwook: parse, store, answer 202.
const baselinePath = "/baseline/msg"

// runProxy is the "proxy" mode: the baseline, a bare httputil.ReverseProxy
// that forwards each request to the Svix-compatible server with the bearer
// token Svix wants, over a keep-alive pool large enough for any load here.
// It answers GET /health itself, for the memory phase (-memory-of
// baseline).
func runProxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := fs.String("upstream", "", "base URL of the Svix-compatible server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("proxy: -upstream must be a URL, got %q", *upstream)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path, r.Out.URL.RawPath = baselinePath, ""
			r.Out.Header.Set("Authorization", "Bearer "+svixToken)
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2048,
			MaxIdleConnsPerHost: 2048,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	return serve(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
}

// runSvix is the "svix" mode: the Svix-compatible server of package
// svixserver in its fast mode (no OpenAPI checks, no delay unless -delay,
// 202 for every valid message) and without the per-message log line that
// cmd/svix-test-server writes.
func runSvix(args []string) error {
	fs := flag.NewFlagSet("svix", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	delay := fs.Duration("delay", 0, "how long each message creation takes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := svixserver.NewServer(svixserver.Options{})
	if err != nil {
		return err
	}
	if *delay > 0 {
		srv.SetDefault(svixserver.Response{Delay: *delay})
	}
	return serve(*listen, &baselineAdapter{next: srv})
}

// baselineAdapter turns each request to baselinePath into a message
// creation like gwook's: the body becomes the raw payload of a MessageIn
// (transformationsParams.rawPayload, as the SDK's NewMessageInRaw sends
// it) with a new eventId and the same idempotency key. Other requests pass
// through.
type baselineAdapter struct {
	next http.Handler
	n    atomic.Uint64
}

func (a *baselineAdapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != baselinePath {
		a.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := "evt_baseline_" + strconv.FormatUint(a.n.Add(1), 10)
	raw, _ := json.Marshal(string(body))
	msg := make([]byte, 0, len(raw)+128)
	msg = append(msg, `{"eventType":"user.signed_up","eventId":"`...)
	msg = append(msg, id...)
	msg = append(msg, `","payload":{},"transformationsParams":{"rawPayload":`...)
	msg = append(msg, raw...)
	msg = append(msg, `}}`...)
	r.URL.Path = "/api/v1/app/usr_bench/msg"
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(msg)), int64(len(msg))
	r.Header.Set("Idempotency-Key", id)
	a.next.ServeHTTP(w, r)
}

// serve serves h on addr until SIGINT or SIGTERM.
func serve(addr string, h http.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
