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
	"strconv"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/httpapi"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/svix"
)

// readyTimeout bounds each /ready probe of the dependencies.
const readyTimeout = 2 * time.Second

// App is a configured Gwook service.
type App struct {
	cfg     *config.Config
	logger  *slog.Logger
	health  *httpapi.Health
	handler http.Handler
}

// Options are the parts tests replace.
type Options struct {
	// PushKeys verifies Pub/Sub push OIDC tokens; nil means Google's keys.
	PushKeys oidc.KeySet
}

// New builds the service from cfg.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts Options) (*App, error) {
	sender, err := svix.New(svix.Config{
		Token:           cfg.SvixAuthToken,
		ServerURL:       cfg.SvixServerURL,
		Debug:           cfg.SvixDebug,
		MaxConnsPerHost: cfg.SvixMaxConnsPerHost,
		Timeout:         cfg.SvixTimeout,
		Logger:          logger,
		Retry: svix.RetryPolicy{
			MaxAttempts:     cfg.SvixRetryMaxAttempts,
			MaxElapsed:      cfg.SvixRetryMaxElapsed,
			InitialInterval: cfg.SvixRetryInitialInterval,
			MaxInterval:     cfg.SvixRetryMaxInterval,
			RetryAfterMax:   cfg.SvixRetryAfterMax,
		},
	})
	if err != nil {
		return nil, err
	}
	auth := &httpapi.Authenticator{
		Realm:             cfg.AuthRealm,
		Username:          cfg.AuthUsername,
		Password:          cfg.AuthPassword,
		VerificationToken: cfg.PushVerificationToken,
	}
	if cfg.OIDCEnabled() {
		keys := opts.PushKeys
		if keys == nil {
			keys = httpapi.GoogleKeySet(ctx)
		}
		auth.PushTokens = httpapi.NewPushTokenVerifier(keys, cfg.PushAudience, cfg.PushServiceAccount)
	}
	health := httpapi.NewHealth(readyTimeout, httpapi.Check{Name: "svix", Check: sender.Ping})
	p := pipeline.New(sender, pipeline.TypeFilter{Include: cfg.FilterIncludeTypes, Exclude: cfg.FilterExcludeTypes}, cfg.SvixApplicationID)
	handler := httpapi.NewRouter(httpapi.Deps{
		Pipeline:     p,
		Auth:         auth,
		Health:       health,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Logger:       logger,
	})
	return &App{cfg: cfg, logger: logger, health: health, handler: handler}, nil
}

// Handler is the service's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Serve runs the HTTP server on ln until ctx is done, then drains: /health
// and /ready answer 503 for HTTP_SERVER_DRAIN_DELAY so load balancers stop
// sending, then requests in flight get up to
// HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT to finish. It returns nil after a
// clean shutdown.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadTimeout:       a.cfg.ReadTimeout,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		WriteTimeout:      a.cfg.WriteTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	a.logger.Info("gwook serving", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	a.logger.Info("shutting down: draining", "drain_delay", a.cfg.DrainDelay,
		"graceful_timeout", a.cfg.GracefulShutdownTimeout)
	a.health.StartDraining()
	srv.SetKeepAlivesEnabled(false)
	if a.cfg.DrainDelay > 0 {
		time.Sleep(a.cfg.DrainDelay)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.GracefulShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.logger.Info("shutdown complete")
	return nil
}

// ListenAddr is the address the server listens on.
func (a *App) ListenAddr() string { return ":" + strconv.Itoa(a.cfg.HTTPPort) }
