// Command svix-test-server serves a Svix-compatible API for tests and local
// development (see package svixserver); it is not a production component.
//
// It prints its base URL on standard output once it accepts connections,
// logs each accepted message as a JSON line on standard error, and serves
// until interrupted (SIGINT or SIGTERM).
//
// Flags, each defaulting to the environment variable named in brackets:
//
//	-addr      address to listen on [SVIX_TEST_SERVER_ADDR] (127.0.0.1:8071)
//	-validate  check requests against Svix's OpenAPI document [SVIX_TEST_SERVER_VALIDATE] (true)
//	-token     expected bearer token; empty accepts any [SVIX_TEST_SERVER_TOKEN]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "svix-test-server:", err)
		os.Exit(1)
	}
}

// config is the command's configuration.
type config struct {
	addr     string
	validate bool
	token    string
}

// parseConfig reads flags from args, with defaults taken from the
// environment through getenv.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	cfg := config{addr: "127.0.0.1:8071", validate: true}
	if v := getenv("SVIX_TEST_SERVER_ADDR"); v != "" {
		cfg.addr = v
	}
	if v := getenv("SVIX_TEST_SERVER_VALIDATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return config{}, fmt.Errorf("SVIX_TEST_SERVER_VALIDATE: %w", err)
		}
		cfg.validate = b
	}
	cfg.token = getenv("SVIX_TEST_SERVER_TOKEN")

	fs := flag.NewFlagSet("svix-test-server", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.addr, "addr", cfg.addr, "address to listen on")
	fs.BoolVar(&cfg.validate, "validate", cfg.validate, "check requests against Svix's OpenAPI document")
	fs.StringVar(&cfg.token, "token", cfg.token, "expected bearer token; empty accepts any")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return cfg, nil
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	started := time.Now()
	srv, err := svixserver.NewServer(svixserver.Options{
		Token:    cfg.token,
		Validate: cfg.validate,
		OnViolation: func(err error) {
			logger.Error("request does not match the Svix OpenAPI document", "error", err.Error())
		},
		OnMessage: func(m svixserver.Message) {
			logger.Info("message accepted",
				"app_id", m.AppID,
				"event_type", m.EventType,
				"event_id", m.EventID,
				"idempotency_key", m.IdempotencyKey,
				"msg_id", m.MsgID,
				"payload", string(m.Payload),
			)
		},
	})
	if err != nil {
		return err
	}
	if cfg.validate {
		logger.Info("loaded Svix OpenAPI document", "duration", time.Since(started).String())
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	logger.Info("serving", "url", url, "validate", cfg.validate, "token_required", cfg.token != "")
	fmt.Fprintln(stdout, url)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}
