// Package app wires Gwook together from its configuration and runs its HTTP
// server with graceful shutdown. The gwook command and the end-to-end tests
// build the service through it, so both run the same wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/coreos/go-oidc/v3/oidc"
	"go.opentelemetry.io/otel/trace"

	"github.com/gwook/gwook/internal/api"
	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/httpapi"
	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/pull"
	"github.com/gwook/gwook/internal/stats"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/internal/telemetry"
)

// readyTimeout bounds each /ready probe of the dependencies.
const readyTimeout = 2 * time.Second

// svixTokenCheckInterval is how long the answer of the Svix token check
// (one authenticated call listing at most one application) is reused by
// /ready: at most one such call per interval per replica.
const svixTokenCheckInterval = 30 * time.Second

// App is a configured Gwook service.
type App struct {
	cfg      *config.Config
	logger   *slog.Logger
	health   *httpapi.Health
	handler  http.Handler
	pipeline *pipeline.Pipeline
	metrics  *telemetry.Metrics
	tracing  trace.TracerProvider
	reporter *telemetry.Reporter
	sender   *svix.Sender
	// direct is the queue of direct delivery; nil under Svix.
	direct *direct.Queue
	// pullClient consumes PUBSUB_SUBSCRIPTIONS; nil without them.
	pullClient *pubsub.Client
	store      *store.Store
	catalog    *catalog.Catalog
	stats      *stats.Recorder
	version    string
	closers    []func()
	// tokenCheckInterval overrides svixTokenCheckInterval when not 0.
	tokenCheckInterval time.Duration
}

// Options are the parts tests replace.
type Options struct {
	// PushKeys verifies Pub/Sub push OIDC tokens; nil means Google's keys.
	PushKeys oidc.KeySet
	// Version labels gwook_build_info and is Sentry's default release.
	Version string
	// Tracing exports the service's spans; nil traces nothing.
	Tracing trace.TracerProvider
	// SvixTokenCheckInterval is how long /ready reuses the answer of the
	// Svix token check; 0 means 30s.
	SvixTokenCheckInterval time.Duration
}

// New builds the service from cfg. It fails when a configured dependency
// cannot be used: a dead-letter topic that is missing or not writable, or
// a Svix token that Svix refuses, is a startup error, not a surprise at
// the first event. (Svix that cannot be reached is not: Gwook starts and
// degrades as it would at any other time.) Close releases what it opened.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts Options) (_ *App, err error) {
	a := &App{cfg: cfg, logger: logger, metrics: telemetry.NewMetrics(opts.Version), tracing: opts.Tracing,
		tokenCheckInterval: opts.SvixTokenCheckInterval, version: opts.Version}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := a.startReporter(opts.Version); err != nil {
		return nil, err
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	a.stats = a.startStats()
	p, checks, err := a.buildPipeline(ctx, true)
	if err != nil {
		return nil, err
	}
	checks = append(checks, httpapi.Check{Name: "database", Check: a.store.Ping, Degrades: true})
	if cfg.PullEnabled() {
		if a.pullClient, err = a.PubSub(ctx); err != nil {
			return nil, err
		}
	}
	auth := &httpapi.Authenticator{
		Realm:             cfg.AuthRealm,
		Username:          cfg.AuthUsername,
		Password:          cfg.AuthPassword,
		VerificationToken: cfg.PushVerificationToken,
		APITokens:         a.catalog.Authenticate,
		FirehoseKeys:      cfg.FirehoseAccessKeys,
		Metrics:           a.metrics,
		Logger:            logger,
	}
	if cfg.OIDCEnabled() {
		keys := opts.PushKeys
		if keys == nil {
			keys = httpapi.GoogleKeySet(ctx)
		}
		auth.PushTokens = httpapi.NewPushTokenVerifier(keys, cfg.PushAudience, cfg.PushServiceAccount)
	}
	a.pipeline = p
	a.health = httpapi.NewHealth(readyTimeout, logger, checks...)
	a.handler = httpapi.NewRouter(httpapi.Deps{
		Pipeline:       p,
		Auth:           auth,
		Health:         a.health,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxEventBytes:  cfg.MaxEventBytes,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		InFlight:       httpapi.InFlightLimit{Requests: cfg.MaxInFlight, Bytes: cfg.MaxInFlightBytes, MaxBodyBytes: cfg.MaxBodyBytes},
		Logger:         logger,
		Metrics:        a.metrics,
		MetricsRoute:   !cfg.SeparateMetricsPort(),
		Tracing:        a.tracing,
		Reporter:       a.reporter,
		API: api.Mount(api.Deps{
			Store:    a.store,
			Catalog:  a.catalog,
			Pipeline: p,
			Svix:     a.sender,
			Messages: a.direct,
			URLs:     netguard.Policy{AllowPrivate: cfg.DeliveryAllowPrivateNetworks},
			Logger:   logger,
			Metrics:  a.metrics,
			Version:  opts.Version,
		}),
		// A Firehose record started by then ends within the request
		// budget, so before the answer is due.
		FirehoseStartWithin: max(httpapi.FirehoseAnswerWithin-cfg.RequestBudget(), time.Second),
	})
	return a, nil
}

// openStore opens the database (DATABASE_URL, or SQLite in DATA_DIR),
// applies its migrations, and starts the catalog: the in-memory view of
// tokens and applications that requests are checked against.
func (a *App) openStore(ctx context.Context) error {
	st, err := store.Open(ctx, a.cfg.DatabaseURL, a.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	a.store = st
	a.closers = append(a.closers, st.Close)
	a.catalog = catalog.New(st, catalog.Options{Logger: a.logger})
	if err := a.catalog.Start(ctx); err != nil {
		return fmt.Errorf("database: loading tokens and applications: %w", err)
	}
	a.closers = append(a.closers, a.catalog.Close)
	where := "SQLite " + filepath.Join(a.cfg.DataDir, store.SQLiteFile)
	if st.Dialect() == store.Postgres {
		where = "PostgreSQL"
	}
	a.logger.Info("database ready", "database", where)
	return nil
}

// startReporter sets up Sentry when SENTRY_DSN is set; its release is
// SENTRY_RELEASE or the build version.
func (a *App) startReporter(version string) error {
	release := a.cfg.SentryRelease
	if release == "" {
		release = version
	}
	reporter, err := telemetry.NewReporter(telemetry.ReporterConfig{
		DSN: a.cfg.SentryDSN, Environment: a.cfg.SentryEnvironment, Release: release, SampleRate: a.cfg.SentrySampleRate,
	})
	if err != nil {
		return err
	}
	a.reporter = reporter
	a.closers = append(a.closers, func() { reporter.Flush(2 * time.Second) })
	return nil
}

// NewPipeline builds only the pipeline, for the replay command. It opens
// the database too, for the applications' filters (and, with
// UNKNOWN_APPLICATION=drop, to know the applications). Replays are not
// counted in the stats. Close releases what it opened.
func NewPipeline(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, logger: logger}
	if err := a.openStore(ctx); err != nil {
		a.Close()
		return nil, err
	}
	p, _, err := a.buildPipeline(ctx, false)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.pipeline = p
	return a, nil
}

// Store is the service's database.
func (a *App) Store() *store.Store { return a.store }

// Pipeline is the service's event pipeline.
func (a *App) Pipeline() *pipeline.Pipeline { return a.pipeline }

// PubSub opens a Pub/Sub client for cfg's project; PUBSUB_EMULATOR_HOST
// points it at the emulator. Close releases it.
func (a *App) PubSub(ctx context.Context) (*pubsub.Client, error) {
	project := a.cfg.PubSubProjectID
	if project == "" {
		project = deadletter.ProjectOf(a.cfg.DeadLetterTopic)
	}
	if subs := a.cfg.Subscriptions(); project == "" && len(subs) > 0 {
		// Full names only: the client's project names no resource.
		project = deadletter.ProjectOf(subs[0])
	}
	if project == "" {
		return nil, errors.New("PUBSUB_PROJECT_ID is required")
	}
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	a.closers = append(a.closers, func() { _ = client.Close() })
	return client, nil
}

// buildPipeline opens the pipeline's dependencies and returns the /ready
// checks for them. work starts the workers of direct delivery (not for
// the replay command, which only enqueues).
func (a *App) buildPipeline(ctx context.Context, work bool) (*pipeline.Pipeline, []httpapi.Check, error) {
	cfg := a.cfg
	var backend pipeline.Backend
	var checks []httpapi.Check
	if cfg.Direct() {
		q, err := a.startDirect(work)
		if err != nil {
			return nil, nil, err
		}
		a.direct = q
		backend = directBackend{q}
	} else {
		sender, svixChecks, err := a.startSvix(ctx)
		if err != nil {
			return nil, nil, err
		}
		backend, checks = svix.Backend{Sender: sender}, svixChecks
	}
	pc := pipeline.Config{
		Backend:    backend,
		Filter:     filter.GlobalTypes(cfg.FilterIncludeTypes, cfg.FilterExcludeTypes),
		AppFilter:  a.catalog.Filter,
		EventTypes: a.catalog.EventType,
		Stats:      a.stats,
		AppID:      cfg.SvixApplicationID,
		// Direct delivery has nowhere to send an event of an application
		// it does not know: such events end as no_application.
		DropUnknown: cfg.DropUnknownApplications() || cfg.Direct(),
		Logger:      a.logger,
		Metrics:     a.metrics,
		Reporter:    a.reporter,
	}
	return a.finishPipeline(ctx, pc, checks)
}

// startSvix builds the Svix sender, checks its token, and returns the
// /ready checks of Svix.
func (a *App) startSvix(ctx context.Context) (*svix.Sender, []httpapi.Check, error) {
	cfg := a.cfg
	sender, err := svix.New(svix.Config{
		Token:            cfg.SvixAuthToken,
		ServerURL:        cfg.SvixServerURL,
		Debug:            cfg.SvixDebug,
		MaxConnsPerHost:  cfg.SvixMaxConnsPerHost,
		Timeout:          cfg.SvixTimeout,
		Logger:           a.logger,
		Metrics:          a.metrics,
		Tracing:          a.tracing,
		SDKDefaultClient: cfg.SvixHTTPClient == "sdk-default",
		Retry: svix.RetryPolicy{
			MaxAttempts:     cfg.SvixRetryMaxAttempts,
			MaxElapsed:      cfg.SvixRetryMaxElapsed,
			InitialInterval: cfg.SvixRetryInitialInterval,
			MaxInterval:     cfg.SvixRetryMaxInterval,
			RetryAfterMax:   cfg.SvixRetryAfterMax,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	a.sender = sender
	tokenCheck, err := a.checkSvixToken(ctx, sender)
	if err != nil {
		return nil, nil, err
	}
	// With a dead-letter topic, a Svix outage is survived (events wait on the
	// topic), so it only degrades readiness: taking every replica out of the
	// load balancer would turn it into a total outage. A token Svix refuses
	// is never survived: every event would fail until it is fixed.
	return sender, []httpapi.Check{
		{Name: "svix", Check: sender.Ping, Degrades: cfg.DeadLetterEnabled()},
		tokenCheck,
	}, nil
}

// finishPipeline adds duplicate suppression and the dead-letter topic to pc
// and builds the pipeline.
func (a *App) finishPipeline(ctx context.Context, pc pipeline.Config, checks []httpapi.Check) (*pipeline.Pipeline, []httpapi.Check, error) {
	cfg := a.cfg
	if a.tracing != nil {
		pc.Tracer = a.tracing.Tracer(telemetry.TracerName)
	}
	pc.Applications = a.catalog.HasApplication

	if cfg.DedupEnabled() {
		store, check, err := a.dedupStore()
		if err != nil {
			return nil, nil, err
		}
		fields, _ := dedup.ParseKeyFields(cfg.DedupKeyFields) // checked by config
		pc.Dedup = pipeline.Dedup{Store: store, TTL: cfg.DedupTTL, Lease: cfg.SendBudget(), Wait: cfg.DedupWait,
			KeyFields: fields, FailOpen: cfg.DedupFailureMode == "open"}
		if check != nil {
			checks = append(checks, *check)
		}
	}

	if cfg.DeadLetterEnabled() {
		client, err := a.PubSub(ctx)
		if err != nil {
			return nil, nil, err
		}
		publisher, err := deadletter.NewPublisher(ctx, client, cfg.DeadLetterTopic, cfg.DeadLetterPublishTimeout)
		if err != nil {
			return nil, nil, err
		}
		// Stop flushes the buffer; it runs before the client closes.
		a.closers = append(a.closers, publisher.Stop)
		pc.DeadLetters = publisher
		// Reading the topic is an admin call with a quota: once a minute
		// per replica at most. Without the topic Gwook still delivers what
		// Svix takes, so its loss only degrades readiness (publishes that
		// fail are answered so that the caller keeps the event).
		checks = append(checks, httpapi.Check{Name: "dead_letter_topic", Check: publisher.Ping, Degrades: true, CacheFor: time.Minute})
	}
	return pipeline.New(pc), checks, nil
}

// checkSvixToken asks Svix once whether it accepts SVIX_AUTH_TOKEN and
// refuses to go on when it does not. It returns the /ready check of the
// token, which reuses its answer for svixTokenCheckInterval and fails only
// when Svix refuses the token (Svix unreachable is the "svix" check's
// business).
func (a *App) checkSvixToken(ctx context.Context, sender *svix.Sender) (httpapi.Check, error) {
	interval := a.tokenCheckInterval
	if interval == 0 {
		interval = svixTokenCheckInterval
	}
	switch err := sender.CheckToken(ctx); {
	case errors.Is(err, svix.ErrUnauthorized):
		return httpapi.Check{}, fmt.Errorf("SVIX_AUTH_TOKEN is wrong or lacks access: %w; "+
			"check the token in the Svix dashboard (API Access) and SVIX_SERVER_URL for its region", err)
	case err != nil:
		a.logger.Warn("could not check SVIX_AUTH_TOKEN; starting anyway", "error", err.Error())
	}
	return httpapi.Check{Name: "svix_token", CacheFor: interval, Check: func(ctx context.Context) error {
		if err := sender.CheckToken(ctx); errors.Is(err, svix.ErrUnauthorized) {
			return err
		}
		return nil
	}}, nil
}

// dedupStore returns Redis when REDIS_URL, REDIS_CLUSTER_ADDRS or
// REDIS_SENTINEL_ADDRS is set, else the in-process store (one replica
// only), and the /ready check for Redis.
func (a *App) dedupStore() (dedup.Deduper, *httpapi.Check, error) {
	if !a.cfg.RedisEnabled() {
		a.logger.Warn("REDIS_URL is not set: duplicates are suppressed per process only; run one replica or set REDIS_URL, REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS")
		mem := dedup.NewMemory()
		a.closers = append(a.closers, func() { _ = mem.Close() })
		return mem, nil, nil
	}
	client, err := dedup.NewClient(dedup.ClientConfig{
		URL:              a.cfg.RedisURL,
		ClusterAddrs:     a.cfg.RedisClusterAddrs,
		SentinelAddrs:    a.cfg.RedisSentinelAddrs,
		SentinelMaster:   a.cfg.RedisSentinelMaster,
		SentinelUsername: a.cfg.RedisSentinelUsername,
		SentinelPassword: a.cfg.RedisSentinelPassword,
		Username:         a.cfg.RedisUsername,
		Password:         a.cfg.RedisPassword,
		TLS:              a.cfg.RedisTLS,
		TLSCAFile:        a.cfg.RedisTLSCAFile,
		Timeout:          a.cfg.RedisTimeout,
		MaxRetries:       config.RedisMaxRetries,
		// Every command ends by its budget: the request budget counts on it.
		CommandBudget: a.cfg.RedisCommandBudget(),
	})
	if err != nil {
		return nil, nil, err
	}
	a.closers = append(a.closers, func() { _ = client.Close() })
	store := dedup.NewRedis(client)
	// Closers run last first: the store's writers stop before the client.
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RedisCommandBudget())
		defer cancel()
		store.Close(ctx)
	})
	// In open mode Gwook forwards without Redis, so Redis down only degrades.
	return store, &httpapi.Check{Name: "redis", Check: store.Ping, Degrades: a.cfg.DedupFailureMode == "open"}, nil
}

// Close releases what New opened, the last opened first.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Handler is the service's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Serve runs the HTTP server on ln until ctx is done, then drains: /health
// and /ready answer 503 for HTTP_SERVER_DRAIN_DELAY so load balancers stop
// sending, then requests in flight get up to
// HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT to finish. It returns nil after a
// clean shutdown. When connections are still busy at the timeout (the
// configuration makes that longer than any request's work, so only a
// client still sending its body or reading its answer can be), it closes
// them and returns an error.
//
// With PUBSUB_SUBSCRIPTIONS it pulls too (Pull), and stops pulling at the
// same time: it returns once the messages held are acked or nacked, and
// returns an error when that takes longer than
// HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT.
func (a *App) Serve(ctx context.Context, ln net.Listener) (err error) {
	var stopped time.Time // when the shutdown started
	srv := &http.Server{
		Handler:           a.handler,
		ReadTimeout:       a.cfg.ReadTimeout,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		WriteTimeout:      a.cfg.WriteTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    httpapi.ServerMaxHeaderBytes(a.cfg.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	a.logger.Info("gwook serving", "addr", ln.Addr().String())
	// Pulling stops with the signal, while the server drains: the
	// messages held finish within the request budget, shorter than
	// HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT.
	pullCtx, stopPull := context.WithCancel(ctx)
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		a.Pull(pullCtx)
	}()
	defer func() {
		stopPull()
		if stopped.IsZero() {
			stopped = time.Now()
		}
		if pullErr := a.waitPulled(pulled, stopped); err == nil {
			err = pullErr
		}
	}()
	if a.cfg.SeparateMetricsPort() {
		metricsSrv, err := a.serveMetrics(serveErr)
		if err != nil {
			_ = srv.Close()
			return err
		}
		defer func() { _ = metricsSrv.Close() }()
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	stopped = time.Now()

	a.logger.Info("shutting down: draining", "drain_delay_ms", a.cfg.DrainDelay.Milliseconds(),
		"graceful_timeout_ms", a.cfg.GracefulShutdownTimeout.Milliseconds())
	a.health.StartDraining()
	srv.SetKeepAlivesEnabled(false)
	if a.cfg.DrainDelay > 0 {
		time.Sleep(a.cfg.DrainDelay)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.GracefulShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown: connections still busy after HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT (%s) were closed: %w",
			a.cfg.GracefulShutdownTimeout, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.logger.Info("shutdown complete")
	return nil
}

// Pull consumes PUBSUB_SUBSCRIPTIONS by streaming pull until ctx ends, then
// returns once every message it held is acked or nacked (see package
// pull). Without subscriptions it returns at once. Serve runs it.
func (a *App) Pull(ctx context.Context) {
	if a.pullClient == nil {
		return
	}
	pull.Run(ctx, pull.Config{
		Client:                 a.pullClient,
		Subscriptions:          a.cfg.Subscriptions(),
		MaxOutstandingMessages: a.cfg.PullMaxOutstandingMessages,
		MaxOutstandingBytes:    a.cfg.PullMaxOutstandingBytes,
		LeaseExtension:         config.PullMaxExtension,
		MaxEventBytes:          a.cfg.MaxEventBytes,
		Pipeline:               a.pipeline,
		Logger:                 a.logger,
		Metrics:                a.metrics,
	})
}

// waitPulled waits for Pull, stopped at the time stopped, to return, up
// to HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT after that time.
func (a *App) waitPulled(pulled <-chan struct{}, stopped time.Time) error {
	if a.pullClient == nil {
		return nil
	}
	t := time.NewTimer(time.Until(stopped.Add(a.cfg.GracefulShutdownTimeout)))
	defer t.Stop()
	select {
	case <-pulled:
		return nil
	case <-t.C:
		return fmt.Errorf("streaming pull: messages still held after HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT (%s); Pub/Sub redelivers them",
			a.cfg.GracefulShutdownTimeout)
	}
}

// serveMetrics serves /metrics on METRICS_PORT, apart from the traffic port,
// so a load balancer in front of Gwook never exposes it.
func (a *App) serveMetrics(serveErr chan<- error) (*http.Server, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(a.cfg.MetricsPort))
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: a.cfg.ReadHeaderTimeout, ReadTimeout: a.cfg.ReadTimeout,
		WriteTimeout: a.cfg.WriteTimeout, IdleTimeout: a.cfg.IdleTimeout}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("metrics server: %w", err)
		}
	}()
	a.logger.Info("metrics serving", "addr", ln.Addr().String(), "path", "/metrics")
	return srv, nil
}

// ListenAddr is the address the server listens on.
func (a *App) ListenAddr() string { return ":" + strconv.Itoa(a.cfg.HTTPPort) }
