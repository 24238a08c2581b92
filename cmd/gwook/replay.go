package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sethvargo/go-envconfig"
	"golang.org/x/term"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/replay"
)

// errReplayFailed makes the command exit non-zero when events failed again.
var errReplayFailed = errors.New("some events failed again and stay on the subscription")

func replayCommand(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("replay", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var opts replay.Options
	flags.StringVar(&opts.Subscription, "subscription", "", "dead-letter subscription: an ID in PUBSUB_PROJECT_ID, or projects/P/subscriptions/S (required)")
	flags.IntVar(&opts.Limit, "limit", 0, "stop after this many messages (0: no limit)")
	flags.BoolVar(&opts.DryRun, "dry-run", false, "say per message what a real run would do (send, drop as filtered, skip or fail as invalid); send and ack nothing")
	flags.BoolVar(&opts.IncludeInvalid, "include-invalid", false, "replay invalid_event messages too (default: leave them)")
	flags.IntVar(&opts.Concurrency, "concurrency", 4, "events sent at once")
	flags.Float64Var(&opts.Rate, "rate", 0, "events per second at most (0: no cap)")
	flags.DurationVar(&opts.Idle, "idle", 5*time.Second, "the subscription counts as drained after this long without a new message")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: gwook replay --subscription SUB [flags]")
		fmt.Fprintln(stderr, "Sends each dead-lettered event through the pipeline again (no duplicate suppression),")
		fmt.Fprintln(stderr, "acks what Svix accepted or already had, and leaves the rest for the next run.")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if opts.Subscription == "" {
		flags.Usage()
		return errors.New("replay: --subscription is required")
	}
	if opts.Concurrency < 1 || opts.Limit < 0 || opts.Rate < 0 || opts.Idle <= 0 {
		return errors.New("replay: --concurrency must be at least 1; --limit, --rate and --idle must not be negative")
	}

	cfg, err := config.LoadReplay(ctx, env)
	if err != nil {
		return err
	}
	// Without PUBSUB_PROJECT_ID the project comes from a full subscription
	// name, or from a full DEAD_LETTER_TOPIC as for the server; it must be
	// taken before the topic is cleared below.
	if cfg.PubSubProjectID == "" {
		cfg.PubSubProjectID = cmp.Or(deadletter.ProjectOf(opts.Subscription), deadletter.ProjectOf(cfg.DeadLetterTopic))
	}
	// A replay neither suppresses duplicates (it is deliberate) nor
	// publishes to the dead-letter topic (failures stay on the
	// subscription), so neither store is opened.
	cfg.DeadLetterTopic = ""
	cfg.DedupTTL = 0
	logger := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat).With("service", "gwook", "command", "replay", "version", version)
	a, err := app.NewPipeline(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	client, err := a.PubSub(ctx)
	if err != nil {
		return err
	}
	opts.Out = stdout
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts.Progress = stderr
	}
	summary, err := replay.Run(ctx, client, a.Pipeline(), opts)
	fmt.Fprintln(stdout, summary)
	if err != nil {
		return err
	}
	if summary.Failed() > 0 {
		return errReplayFailed
	}
	return nil
}
