// Package config loads Gwook's configuration from environment variables,
// applies defaults, and checks the combination before anything starts, so a
// misconfigured service fails at startup with one error naming every problem.
package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Config is every setting Gwook reads. The env tags are the documented
// variable names and defaults; README.md lists them all.
type Config struct {
	HTTPPort                int           `env:"HTTP_SERVER_PORT, default=4000"`
	ReadTimeout             time.Duration `env:"HTTP_SERVER_READ_TIMEOUT, default=10s"`
	ReadHeaderTimeout       time.Duration `env:"HTTP_SERVER_READ_HEADER_TIMEOUT, default=5s"`
	WriteTimeout            time.Duration `env:"HTTP_SERVER_WRITE_TIMEOUT, default=20s"`
	IdleTimeout             time.Duration `env:"HTTP_SERVER_IDLE_TIMEOUT, default=60s"`
	GracefulShutdownTimeout time.Duration `env:"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT, default=10s"`
	DrainDelay              time.Duration `env:"HTTP_SERVER_DRAIN_DELAY, default=0s"`
	MaxHeaderBytes          int           `env:"HTTP_SERVER_MAX_HEADER_BYTES, default=65536"`
	MaxBodyBytes            int64         `env:"MAX_BODY_BYTES, default=16777216"`

	AuthUsername string `env:"AUTH_USERNAME"`
	AuthPassword string `env:"AUTH_PASSWORD"`
	AuthRealm    string `env:"AUTH_REALM, default=gwook"`

	PushAudience          string `env:"PUBSUB_PUSH_AUDIENCE"`
	PushServiceAccount    string `env:"PUBSUB_PUSH_SERVICE_ACCOUNT"`
	PushVerificationToken string `env:"PUBSUB_VERIFICATION_TOKEN"`

	SvixAuthToken            string        `env:"SVIX_AUTH_TOKEN"`
	SvixServerURL            string        `env:"SVIX_SERVER_URL"`
	SvixDebug                bool          `env:"SVIX_DEBUG, default=false"`
	SvixApplicationID        string        `env:"SVIX_APPLICATION_ID"`
	SvixMaxConnsPerHost      int           `env:"SVIX_MAX_CONNS_PER_HOST, default=100"`
	SvixTimeout              time.Duration `env:"SVIX_TIMEOUT, default=5s"`
	SvixRetryMaxAttempts     int           `env:"SVIX_RETRY_MAX_ATTEMPTS, default=5"`
	SvixRetryMaxElapsed      time.Duration `env:"SVIX_RETRY_MAX_ELAPSED, default=8s"`
	SvixRetryInitialInterval time.Duration `env:"SVIX_RETRY_INITIAL_INTERVAL, default=100ms"`
	SvixRetryMaxInterval     time.Duration `env:"SVIX_RETRY_MAX_INTERVAL, default=2s"`
	SvixRetryAfterMax        time.Duration `env:"SVIX_RETRY_AFTER_MAX, default=5s"`

	FilterIncludeTypes []string `env:"FILTER_INCLUDE_TYPES"`
	FilterExcludeTypes []string `env:"FILTER_EXCLUDE_TYPES"`

	LogLevel  string `env:"LOG_LEVEL, default=info"`
	LogFormat string `env:"LOG_FORMAT, default=json"`
}

// Load reads the configuration through lookuper (envconfig.OsLookuper() in
// production) and validates it.
func Load(ctx context.Context, lookuper envconfig.Lookuper) (*Config, error) {
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: lookuper}); err != nil {
		return nil, fmt.Errorf("invalid configuration: %s", withVariableName(err))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// BasicAuthEnabled reports whether producers may authenticate with a password.
func (c *Config) BasicAuthEnabled() bool { return c.AuthUsername != "" }

// OIDCEnabled reports whether Pub/Sub push OIDC tokens are verified.
func (c *Config) OIDCEnabled() bool { return c.PushAudience != "" }

// TokenEnabled reports whether the push verification token is accepted.
func (c *Config) TokenEnabled() bool { return c.PushVerificationToken != "" }

// Validate returns one error naming every problem, or nil.
func (c *Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if c.SvixAuthToken == "" {
		add("SVIX_AUTH_TOKEN is required")
	}
	if !c.BasicAuthEnabled() && !c.OIDCEnabled() && !c.TokenEnabled() {
		add("no authentication method is configured: set AUTH_USERNAME and AUTH_PASSWORD (producers), " +
			"PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNT (Pub/Sub push with OIDC), " +
			"or PUBSUB_VERIFICATION_TOKEN (Pub/Sub push with ?token=)")
	}
	if c.BasicAuthEnabled() != (c.AuthPassword != "") {
		add("AUTH_USERNAME and AUTH_PASSWORD must be set together")
	}
	if c.OIDCEnabled() && c.PushServiceAccount == "" {
		add("PUBSUB_PUSH_SERVICE_ACCOUNT is required when PUBSUB_PUSH_AUDIENCE is set")
	}
	if c.PushServiceAccount != "" && !c.OIDCEnabled() {
		add("PUBSUB_PUSH_AUDIENCE is required when PUBSUB_PUSH_SERVICE_ACCOUNT is set")
	}
	if c.SvixServerURL != "" {
		if u, err := url.Parse(c.SvixServerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("SVIX_SERVER_URL must be an http or https URL, got %q", c.SvixServerURL)
		}
	}
	if c.HTTPPort < 1 || c.HTTPPort > 65535 {
		add("HTTP_SERVER_PORT must be between 1 and 65535, got %d", c.HTTPPort)
	}
	positive := map[string]time.Duration{
		"HTTP_SERVER_READ_TIMEOUT":              c.ReadTimeout,
		"HTTP_SERVER_READ_HEADER_TIMEOUT":       c.ReadHeaderTimeout,
		"HTTP_SERVER_WRITE_TIMEOUT":             c.WriteTimeout,
		"HTTP_SERVER_IDLE_TIMEOUT":              c.IdleTimeout,
		"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT": c.GracefulShutdownTimeout,
		"SVIX_TIMEOUT":                          c.SvixTimeout,
		"SVIX_RETRY_MAX_ELAPSED":                c.SvixRetryMaxElapsed,
		"SVIX_RETRY_INITIAL_INTERVAL":           c.SvixRetryInitialInterval,
		"SVIX_RETRY_MAX_INTERVAL":               c.SvixRetryMaxInterval,
		"SVIX_RETRY_AFTER_MAX":                  c.SvixRetryAfterMax,
	}
	for _, name := range sortedKeys(positive) {
		if positive[name] <= 0 {
			add("%s must be positive, got %s", name, positive[name])
		}
	}
	if c.SvixRetryMaxElapsed >= c.WriteTimeout {
		add("SVIX_RETRY_MAX_ELAPSED (%s) must be below HTTP_SERVER_WRITE_TIMEOUT (%s), or responses are cut off while Gwook still retries",
			c.SvixRetryMaxElapsed, c.WriteTimeout)
	}
	if c.DrainDelay < 0 {
		add("HTTP_SERVER_DRAIN_DELAY must not be negative, got %s", c.DrainDelay)
	}
	if c.SvixRetryMaxAttempts < 1 {
		add("SVIX_RETRY_MAX_ATTEMPTS must be at least 1, got %d", c.SvixRetryMaxAttempts)
	}
	if c.SvixMaxConnsPerHost < 1 {
		add("SVIX_MAX_CONNS_PER_HOST must be at least 1, got %d", c.SvixMaxConnsPerHost)
	}
	if c.MaxBodyBytes < 1 {
		add("MAX_BODY_BYTES must be positive, got %d", c.MaxBodyBytes)
	}
	if c.MaxHeaderBytes < 4096 {
		add("HTTP_SERVER_MAX_HEADER_BYTES must be at least 4096, got %d", c.MaxHeaderBytes)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		add("LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		add("LOG_FORMAT must be json or text, got %q", c.LogFormat)
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
}

func sortedKeys(m map[string]time.Duration) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// withVariableName rewrites envconfig's "GoField: problem" error so that it
// names the environment variable the operator sets.
func withVariableName(err error) string {
	msg := err.Error()
	field, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return msg
	}
	f, found := reflect.TypeFor[Config]().FieldByName(field)
	if !found {
		return msg
	}
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name + ": " + rest
}
