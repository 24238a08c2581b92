// Command frontcmp compares net/http with github.com/valyala/fasthttp as
// the bench's front (bench -proxy, -memory-of baseline). With -server
// nethttp or fasthttp it does the same work on either: it answers GET
// /health with 200 and forwards every other request's body to the
// Svix-compatible server's baseline path with the bearer token, answering
// with the upstream's status, content type and body. It is its own module
// so that fasthttp stays out of Gwook's go.mod.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// These match the bench's net/http proxy (test/bench/servers.go).
const (
	baselinePath = "/baseline/msg"
	svixToken    = "sk_bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "frontcmp:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "base URL of the Svix-compatible server")
	server := flag.String("server", "nethttp", "nethttp, fasthttp, or adaptor (the net/http handler on fasthttp through fasthttpadaptor)")
	netClient := flag.Bool("nethttp-client", false, "with -server fasthttp: forward with net/http's client, as a front that replaced only its server would")
	reduce := flag.Bool("reduce-memory", false, "fasthttp's ReduceMemoryUsage: release idle connections' buffers, at some CPU cost")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("-upstream must be a URL, got %q", *upstream)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var serve, shutdown func() error
	switch *server {
	case "nethttp":
		hs := &http.Server{Handler: netHTTPHandler(target.Host), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		serve = func() error { return hs.Serve(ln) }
		shutdown = func() error { return hs.Shutdown(context.Background()) }
	case "fasthttp":
		fs := fastHTTPServer(target.Host, *reduce, *netClient)
		serve, shutdown = func() error { return fs.Serve(ln) }, fs.Shutdown
	case "adaptor":
		fs := &fasthttp.Server{Handler: fasthttpadaptor.NewFastHTTPHandler(netHTTPHandler(target.Host)),
			ReadTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ReduceMemoryUsage: *reduce}
		serve, shutdown = func() error { return fs.Serve(ln) }, fs.Shutdown
	default:
		return fmt.Errorf("-server: %q is not nethttp, fasthttp or adaptor", *server)
	}
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	return shutdown()
}

// newNetHTTPClient is net/http's client over a keep-alive pool as large as
// the bench's proxy's.
func newNetHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2048,
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// netHTTPHandler is the front on net/http.
func netHTTPHandler(host string) http.Handler {
	client := newNetHTTPClient()
	uri := "http://" + host + baselinePath
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, uri, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.ContentLength = r.ContentLength
		out.Header = r.Header.Clone()
		out.Header.Set("Authorization", "Bearer "+svixToken)
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

// fastHTTPServer is the same front on fasthttp; reduce is fasthttp's
// ReduceMemoryUsage; netClient forwards with net/http's client instead of
// fasthttp's.
func fastHTTPServer(host string, reduce, netClient bool) *fasthttp.Server {
	netHTTP := newNetHTTPClient()
	client := &fasthttp.HostClient{
		Addr:                host,
		MaxConns:            2048,
		MaxIdleConnDuration: 90 * time.Second,
		Dial:                func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) },
	}
	uri := "http://" + host + baselinePath
	handler := func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/health" && (ctx.IsGet() || ctx.IsHead()) {
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("ok\n")
			return
		}
		if netClient {
			out, err := http.NewRequest(string(ctx.Method()), uri, bytes.NewReader(ctx.Request.Body()))
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
				return
			}
			for k, v := range ctx.Request.Header.All() {
				out.Header.Add(string(k), string(v))
			}
			out.Header.Set("Authorization", "Bearer "+svixToken)
			resp, err := netHTTP.Do(out)
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
				return
			}
			ctx.SetStatusCode(resp.StatusCode)
			ctx.SetContentType(resp.Header.Get("Content-Type"))
			ctx.SetBody(body)
			return
		}
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		ctx.Request.Header.CopyTo(&req.Header)
		req.SetRequestURI(uri)
		req.Header.SetHost(host)
		req.Header.Set("Authorization", "Bearer "+svixToken)
		req.SetBodyRaw(ctx.Request.Body())
		if err := client.Do(req, resp); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			return
		}
		ctx.SetStatusCode(resp.StatusCode())
		ctx.Response.Header.SetContentTypeBytes(resp.Header.ContentType())
		ctx.SetBody(resp.Body())
	}
	return &fasthttp.Server{Handler: handler, ReadTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ReduceMemoryUsage: reduce}
}
