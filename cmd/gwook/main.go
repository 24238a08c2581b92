// Command gwook serves Gwook: it receives internal events at
// POST /notifications, from Pub/Sub push subscriptions or directly from
// producers, and creates a Svix message for each.
//
// Usage:
//
//	gwook                     serve (configured by environment variables; see README.md)
//	gwook replay [flags]      replay the dead-letter subscription through the pipeline
//	gwook version             print the version
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], envconfig.OsLookuper(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gwook:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, env envconfig.Lookuper, stdout io.Writer) error {
	command := "serve"
	if len(args) > 0 {
		command = args[0]
	}
	switch command {
	case "serve":
		return serve(ctx, env, stdout)
	case "replay":
		return replayCommand(ctx, args[1:], env, stdout, os.Stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "gwook", version)
		return nil
	default:
		return fmt.Errorf("unknown command %q (commands: serve, replay, version)", command)
	}
}

func serve(ctx context.Context, env envconfig.Lookuper, stdout io.Writer) error {
	cfg, err := config.Load(ctx, env)
	if err != nil {
		return err
	}
	level := cfg.LogLevel
	if cfg.SvixDebug {
		level = "debug" // SVIX_DEBUG logs at debug level, so it needs that level
	}
	logger := app.NewLogger(stdout, level, cfg.LogFormat).With("service", "gwook", "version", version)
	tracing, shutdownTracing, err := telemetry.SetupTracing(ctx, version)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(flushCtx)
	}()
	a, err := app.New(ctx, cfg, logger, app.Options{Version: version, Tracing: tracing})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", a.ListenAddr())
	if err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}
