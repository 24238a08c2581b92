// Command gwook serves Gwook: it receives internal events at
// POST /notifications, from Pub/Sub push subscriptions or directly from
// producers, and creates a Svix message for each. It is configured by
// environment variables only; `gwook help` prints the commands.
package main

import (
	"context"
	"errors"
	"flag"
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
	"github.com/gwook/gwook/internal/gcfloor"
	"github.com/gwook/gwook/internal/logwriter"
	"github.com/gwook/gwook/internal/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usage is what `gwook help` prints, and what an unknown command is
// answered with on stderr.
const usage = `Usage:
  gwook [serve]          serve POST /notifications (the default command)
  gwook replay [flags]   send the events on a dead-letter subscription through
                         the pipeline again; gwook replay --help lists the flags
  gwook migrate          apply the database migrations (serve applies them too)
  gwook token create --name NAME --scope SCOPE [--application ID] [--expires 720h]
                         create an API token in the database and print it
  gwook receive --secret whsec_... [--port 9000] [flags]
                         receive webhooks, check their signatures and print a
                         line for each; gwook receive --help lists the flags
  gwook version          print the version
  gwook help             print this help

gwook takes no other flags: it is configured by environment variables,
listed with their defaults in the Configuration section of README.md and
in .env.example.
`

// Exit statuses: 1 when a command fails, 2 for a command line gwook does
// not understand (as the flag package does).
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a command line gwook does not understand.
type usageError string

func (e usageError) Error() string { return string(e) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], envconfig.OsLookuper(), os.Stdout, os.Stderr)
	stop()
	if code := report(err, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// report writes err to stderr, followed by the usage for a usage error, and
// returns the exit status for it: 0 for nil.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "gwook:", err)
	if errors.As(err, new(usageError)) {
		fmt.Fprint(stderr, "\n"+usage)
		return exitUsage
	}
	return exitFailure
}

func run(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	command, rest := "serve", args
	if len(args) > 0 {
		command, rest = args[0], args[1:]
	}
	switch command {
	case "serve":
		if helpRequested(rest) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		if len(rest) > 0 {
			return usageError(fmt.Sprintf("serve takes no arguments, got %q", rest))
		}
		return serve(ctx, env, stdout)
	case "replay":
		if helpRequested(rest) {
			// Asked for, replay's usage goes to stdout like gwook's own.
			if err := replayCommand(ctx, []string{"-h"}, env, stdout, stdout); !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
		}
		return replayCommand(ctx, rest, env, stdout, stderr)
	case "migrate":
		if helpRequested(rest) {
			fmt.Fprint(stdout, "usage: gwook migrate\nApplies the database migrations that the database (DATABASE_URL, or SQLite in DATA_DIR) lacks.\n")
			return nil
		}
		return migrateCommand(ctx, rest, env, stdout)
	case "token":
		if helpRequested(rest) {
			if err := tokenCommand(ctx, []string{"create", "-h"}, env, stdout, stdout); !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
		}
		return tokenCommand(ctx, rest, env, stdout, stderr)
	case "receive":
		if helpRequested(rest) {
			if err := receiveCommand(ctx, []string{"-h"}, stdout, stdout); !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
		}
		return receiveCommand(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "gwook", version)
		return nil
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError(fmt.Sprintf("unknown command %q", command))
	}
}

// helpRequested reports whether args ask for help as the flag package
// understands it: -h, -help, --h or --help before a "--".
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}

// gcHeapFloor is the floor serve gives the garbage collector's heap goal
// unless GOGC is set (see package gcfloor).
const gcHeapFloor = 64 << 20

func serve(ctx context.Context, env envconfig.Lookuper, stdout io.Writer) error {
	cfg, err := config.Load(ctx, env)
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		defer gcfloor.Floor(gcHeapFloor)()
	}
	level := cfg.LogLevel
	if cfg.SvixDebug {
		level = "debug" // SVIX_DEBUG logs at debug level, so it needs that level
	}
	lines := logwriter.New(stdout)
	defer lines.Close() // last: after everything else has logged
	logger := app.NewLogger(lines, level, cfg.LogFormat).With("service", "gwook", "version", version)
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
