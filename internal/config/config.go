// Package config loads Gwook's configuration from environment variables,
// applies defaults, and checks the combination before anything starts, so a
// misconfigured service fails at startup with one error naming every problem.
package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/delivery"
)

// Config is every setting Gwook reads. The env tags are the documented
// variable names and defaults; README.md lists them all.
type Config struct {
	HTTPPort                int           `env:"HTTP_SERVER_PORT, default=4000"`
	ReadTimeout             time.Duration `env:"HTTP_SERVER_READ_TIMEOUT, default=10s"`
	ReadHeaderTimeout       time.Duration `env:"HTTP_SERVER_READ_HEADER_TIMEOUT, default=5s"`
	WriteTimeout            time.Duration `env:"HTTP_SERVER_WRITE_TIMEOUT, default=30s"`
	IdleTimeout             time.Duration `env:"HTTP_SERVER_IDLE_TIMEOUT, default=60s"`
	GracefulShutdownTimeout time.Duration `env:"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT, default=30s"`
	DrainDelay              time.Duration `env:"HTTP_SERVER_DRAIN_DELAY, default=0s"`
	MaxHeaderBytes          int           `env:"HTTP_SERVER_MAX_HEADER_BYTES, default=65536"`
	MaxBodyBytes            int64         `env:"MAX_BODY_BYTES, default=2097152"`
	MaxEventBytes           int           `env:"MAX_EVENT_BYTES, default=1048576"`
	MaxInFlight             int           `env:"MAX_IN_FLIGHT, default=1024"`
	MaxInFlightBytes        int64         `env:"MAX_IN_FLIGHT_BYTES, default=50331648"`
	MetricsPort             int           `env:"METRICS_PORT, default=9090"`

	AuthUsername string `env:"AUTH_USERNAME"`
	AuthPassword string `env:"AUTH_PASSWORD"`
	AuthRealm    string `env:"AUTH_REALM, default=gwook"`

	PushAudience          string `env:"PUBSUB_PUSH_AUDIENCE"`
	PushServiceAccount    string `env:"PUBSUB_PUSH_SERVICE_ACCOUNT"`
	PushVerificationToken string `env:"PUBSUB_VERIFICATION_TOKEN"`

	FirehoseAccessKeys []string `env:"FIREHOSE_ACCESS_KEYS"`

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
	SvixHTTPClient           string        `env:"SVIX_HTTP_CLIENT, default=tuned"`

	RedisURL              string        `env:"REDIS_URL"`
	RedisClusterAddrs     []string      `env:"REDIS_CLUSTER_ADDRS"`
	RedisSentinelAddrs    []string      `env:"REDIS_SENTINEL_ADDRS"`
	RedisSentinelMaster   string        `env:"REDIS_SENTINEL_MASTER"`
	RedisSentinelUsername string        `env:"REDIS_SENTINEL_USERNAME"`
	RedisSentinelPassword string        `env:"REDIS_SENTINEL_PASSWORD"`
	RedisUsername         string        `env:"REDIS_USERNAME"`
	RedisPassword         string        `env:"REDIS_PASSWORD"`
	RedisTLS              bool          `env:"REDIS_TLS, default=false"`
	RedisTLSCAFile        string        `env:"REDIS_TLS_CA_FILE"`
	RedisTimeout          time.Duration `env:"REDIS_TIMEOUT, default=500ms"`
	DedupTTL              time.Duration `env:"DEDUP_TTL, default=1m"`
	DedupKeyFields        []string      `env:"DEDUP_KEY_FIELDS, default=type,project,source"`
	DedupFailureMode      string        `env:"DEDUP_FAILURE_MODE, default=open"`
	DedupWait             time.Duration `env:"DEDUP_WAIT, default=1s"`

	PubSubProjectID          string        `env:"PUBSUB_PROJECT_ID"`
	DeadLetterTopic          string        `env:"DEAD_LETTER_TOPIC"`
	DeadLetterPublishTimeout time.Duration `env:"DEAD_LETTER_PUBLISH_TIMEOUT, default=5s"`

	PubSubSubscriptions        []string `env:"PUBSUB_SUBSCRIPTIONS"`
	PullMaxOutstandingMessages int      `env:"PULL_MAX_OUTSTANDING_MESSAGES, default=100"`
	PullMaxOutstandingBytes    int      `env:"PULL_MAX_OUTSTANDING_BYTES, default=67108864"`

	FilterIncludeTypes []string `env:"FILTER_INCLUDE_TYPES"`
	FilterExcludeTypes []string `env:"FILTER_EXCLUDE_TYPES"`

	SentryDSN         string  `env:"SENTRY_DSN"`
	SentryEnvironment string  `env:"SENTRY_ENVIRONMENT, default=production"`
	SentryRelease     string  `env:"SENTRY_RELEASE"`
	SentrySampleRate  float64 `env:"SENTRY_SAMPLE_RATE, default=1.0"`

	DatabaseURL                  string `env:"DATABASE_URL"`
	DataDir                      string `env:"DATA_DIR, default=./data"`
	UnknownApplication           string `env:"UNKNOWN_APPLICATION, default=forward"`
	DeliveryAllowPrivateNetworks bool   `env:"DELIVERY_ALLOW_PRIVATE_NETWORKS, default=false"`

	DeliveryBackendName            string        `env:"DELIVERY_BACKEND"`
	DeliveryTimeout                time.Duration `env:"DELIVERY_TIMEOUT, default=15s"`
	DeliveryRetrySchedule          string        `env:"DELIVERY_RETRY_SCHEDULE, default=5s,5m,30m,2h,5h,10h,10h"`
	DeliveryMaxInFlightPerEndpoint int           `env:"DELIVERY_MAX_IN_FLIGHT_PER_ENDPOINT, default=10"`
	DeliveryWorkers                int           `env:"DELIVERY_WORKERS, default=100"`
	DeliveryDisableAfter           time.Duration `env:"DELIVERY_DISABLE_AFTER, default=120h"`
	MessageRetention               time.Duration `env:"MESSAGE_RETENTION, default=720h"`

	StatsFlushInterval time.Duration `env:"STATS_FLUSH_INTERVAL, default=10s"`
	StatsRetention     time.Duration `env:"STATS_RETENTION, default=720h"`

	LogLevel  string `env:"LOG_LEVEL, default=info"`
	LogFormat string `env:"LOG_FORMAT, default=json"`
}

// MaxDeliveryTimeout is the longest DELIVERY_TIMEOUT: an attempt cut off
// by a replica's death is made again within DELIVERY_TIMEOUT plus 30 s,
// which must stay within a minute.
const MaxDeliveryTimeout = 30 * time.Second

// MaxDeadLetterBodyBytes is the largest MAX_BODY_BYTES with a dead-letter
// topic: Pub/Sub's limit of 10,000,000 bytes for a message, less 64 KiB
// for the attributes Gwook adds to a dead-lettered one.
const MaxDeadLetterBodyBytes = 10_000_000 - 64<<10

// PushEnvelopeBytes is the largest body a Pub/Sub push of an event of
// eventBytes makes: the event in base64, plus 256 KiB for the envelope's
// metadata and the message's attributes (at most 100 of 1,280 bytes).
func PushEnvelopeBytes(eventBytes int) int64 {
	return int64(eventBytes+2)/3*4 + 256<<10
}

// Load reads the server's configuration through lookuper
// (envconfig.OsLookuper() in production) and validates it.
func Load(ctx context.Context, lookuper envconfig.Lookuper) (*Config, error) {
	return load(ctx, lookuper, (*Config).checkServer)
}

// LoadReplay reads the replay command's configuration: it needs Svix and
// Pub/Sub but serves nothing, so no authentication method is required.
func LoadReplay(ctx context.Context, lookuper envconfig.Lookuper) (*Config, error) {
	return load(ctx, lookuper, (*Config).checkReplay)
}

// load reads every variable, then checks the combination. A value that
// cannot be read is reported, and its default stands in for it, so that
// one error names every problem at once.
func load(ctx context.Context, lookuper envconfig.Lookuper, check func(*Config, *problems)) (*Config, error) {
	var p problems
	unreadable := checkForms(lookuper, &p)
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: without{lookuper, unreadable}}); err != nil {
		// A form checkForms does not know of; envconfig names the field.
		p.add("%s", withVariableName(err))
		return nil, p.err()
	}
	check(&c, &p)
	if err := p.err(); err != nil {
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

// SeparateMetricsPort reports whether /metrics has a listener of its own.
func (c *Config) SeparateMetricsPort() bool { return c.MetricsPort != 0 }

// DropUnknownApplications reports whether an event for a user without an
// application is dropped rather than forwarded with its user_id as the Svix
// application uid.
func (c *Config) DropUnknownApplications() bool { return c.UnknownApplication == "drop" }

// The delivery backends (DELIVERY_BACKEND).
const (
	BackendSvix   = "svix"
	BackendDirect = "direct"
)

// DeliveryBackend is the backend events are handed to: DELIVERY_BACKEND,
// or by default Svix when SVIX_AUTH_TOKEN is set and Gwook's own delivery
// otherwise.
func (c *Config) DeliveryBackend() string {
	switch {
	case c.DeliveryBackendName != "":
		return c.DeliveryBackendName
	case c.SvixAuthToken != "":
		return BackendSvix
	}
	return BackendDirect
}

// Direct reports whether Gwook delivers webhooks itself.
func (c *Config) Direct() bool { return c.DeliveryBackend() == BackendDirect }

// DedupEnabled reports whether duplicate suppression is on.
func (c *Config) DedupEnabled() bool { return c.DedupTTL > 0 }

// RedisEnabled reports whether the dedup store is Redis (REDIS_URL,
// REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS), not the in-process store.
func (c *Config) RedisEnabled() bool {
	return c.RedisURL != "" || len(c.RedisClusterAddrs) > 0 || len(c.RedisSentinelAddrs) > 0
}

// DeadLetterEnabled reports whether failed events go to a dead-letter topic.
func (c *Config) DeadLetterEnabled() bool { return c.DeadLetterTopic != "" }

// problems collects configuration errors.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  - " + strings.Join(p, "\n  - "))
}

// Validate checks the server's configuration and returns one error naming
// every problem, or nil.
func (c *Config) Validate() error {
	var p problems
	c.checkServer(&p)
	return p.err()
}

// ValidateReplay checks the replay command's configuration.
func (c *Config) ValidateReplay() error {
	var p problems
	c.checkReplay(&p)
	return p.err()
}

func (c *Config) checkServer(p *problems) {
	c.validateServer(p)
	c.validateShared(p)
	c.checkPull(p)
	c.checkDatabase(p)
	c.checkStats(p)
	c.checkMessageRetention(p)
}

// LoadDatabase reads the configuration of the commands that work on the
// database alone (gwook migrate, gwook token): only DATABASE_URL and
// DATA_DIR are checked.
func LoadDatabase(ctx context.Context, lookuper envconfig.Lookuper) (*Config, error) {
	return load(ctx, lookuper, (*Config).checkDatabase)
}

func (c *Config) checkDatabase(p *problems) {
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		p.add("DATABASE_URL must be a postgres:// or postgresql:// URL (unset: SQLite in DATA_DIR)")
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		p.add("DATA_DIR must not be empty when DATABASE_URL is unset: it holds the SQLite database")
	}
}

func (c *Config) checkReplay(p *problems) { c.validateShared(p) }

// StatsFlushTimeout bounds one write of the per-application stats, the
// last one at shutdown included.
const StatsFlushTimeout = 5 * time.Second

// StatsDayRetention is how long the per-day stats rows are kept: a year
// and a month, so that a year ago is still answered. Per-minute rows are
// kept for STATS_RETENTION.
const StatsDayRetention = 400 * 24 * time.Hour

// minStatsRetention keeps a whole day of minute rows, so that hour buckets
// of the last day are always answered.
const minStatsRetention = 24 * time.Hour

func (c *Config) checkStats(p *problems) {
	if c.StatsFlushInterval <= 0 {
		p.add("STATS_FLUSH_INTERVAL must be positive, got %s", c.StatsFlushInterval)
	}
	if c.StatsRetention < minStatsRetention || c.StatsRetention > StatsDayRetention {
		p.add("STATS_RETENTION must be between %s and %s (how long per-minute stats are kept; per-day stats are kept %s), got %s",
			minStatsRetention, StatsDayRetention, StatsDayRetention, c.StatsRetention)
	}
}

// MinMessageRetention and MaxMessageRetention bound MESSAGE_RETENTION:
// direct delivery keeps a message, with its deliveries and attempts, at
// least a day after it was accepted (a day of history to look at and
// resend), and at most as long as the per-day stats.
const (
	MinMessageRetention = 24 * time.Hour
	MaxMessageRetention = StatsDayRetention
)

func (c *Config) checkMessageRetention(p *problems) {
	if c.MessageRetention < MinMessageRetention || c.MessageRetention > MaxMessageRetention {
		p.add("MESSAGE_RETENTION must be between %s and %s (how long direct delivery keeps a message, its deliveries and attempts, "+
			"counted from when it was accepted; one still being delivered is kept until it is done), got %s",
			MinMessageRetention, MaxMessageRetention, c.MessageRetention)
	}
}

func (c *Config) validateServer(p *problems) {
	if c.BasicAuthEnabled() != (c.AuthPassword != "") {
		p.add("AUTH_USERNAME and AUTH_PASSWORD must be set together")
	}
	if c.OIDCEnabled() && c.PushServiceAccount == "" {
		p.add("PUBSUB_PUSH_SERVICE_ACCOUNT is required when PUBSUB_PUSH_AUDIENCE is set")
	}
	if c.PushServiceAccount != "" && !c.OIDCEnabled() {
		p.add("PUBSUB_PUSH_AUDIENCE is required when PUBSUB_PUSH_SERVICE_ACCOUNT is set")
	}
	c.checkFirehoseKeys(p)
	if c.HTTPPort < 1 || c.HTTPPort > 65535 {
		p.add("HTTP_SERVER_PORT must be between 1 and 65535, got %d", c.HTTPPort)
	}
	if c.MetricsPort < 0 || c.MetricsPort > 65535 {
		p.add("METRICS_PORT must be between 0 (metrics on HTTP_SERVER_PORT) and 65535, got %d", c.MetricsPort)
	}
	if c.MetricsPort == c.HTTPPort {
		p.add("METRICS_PORT must differ from HTTP_SERVER_PORT (set it to 0 to serve /metrics on the main port)")
	}
	positive(p, map[string]time.Duration{
		"HTTP_SERVER_READ_TIMEOUT":              c.ReadTimeout,
		"HTTP_SERVER_READ_HEADER_TIMEOUT":       c.ReadHeaderTimeout,
		"HTTP_SERVER_WRITE_TIMEOUT":             c.WriteTimeout,
		"HTTP_SERVER_IDLE_TIMEOUT":              c.IdleTimeout,
		"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT": c.GracefulShutdownTimeout,
	})
	c.checkBudgets(p)
	if c.DrainDelay < 0 {
		p.add("HTTP_SERVER_DRAIN_DELAY must not be negative, got %s", c.DrainDelay)
	}
	if c.MaxBodyBytes < 1 {
		p.add("MAX_BODY_BYTES must be positive, got %d", c.MaxBodyBytes)
	}
	if c.DeadLetterEnabled() && c.MaxBodyBytes > MaxDeadLetterBodyBytes {
		p.add("MAX_BODY_BYTES must be at most %d with a dead-letter topic, so that every body Gwook reads fits in a Pub/Sub message "+
			"(10,000,000 bytes, with room for the attributes), got %d", MaxDeadLetterBodyBytes, c.MaxBodyBytes)
	}
	if c.MaxEventBytes < 1 {
		p.add("MAX_EVENT_BYTES must be positive, got %d", c.MaxEventBytes)
	} else if envelope := PushEnvelopeBytes(c.MaxEventBytes); c.MaxBodyBytes < envelope {
		p.add("MAX_BODY_BYTES (%d) must hold a Pub/Sub push envelope of an event of MAX_EVENT_BYTES (%d): at least %d",
			c.MaxBodyBytes, c.MaxEventBytes, envelope)
	}
	if c.MaxInFlightBytes < c.MaxBodyBytes {
		p.add("MAX_IN_FLIGHT_BYTES (%d) must be at least MAX_BODY_BYTES (%d), or the largest body could never be read",
			c.MaxInFlightBytes, c.MaxBodyBytes)
	}
	if c.MaxInFlight < 1 {
		p.add("MAX_IN_FLIGHT must be at least 1, got %d", c.MaxInFlight)
	}
	if c.MaxHeaderBytes < 4096 {
		p.add("HTTP_SERVER_MAX_HEADER_BYTES must be at least 4096, got %d", c.MaxHeaderBytes)
	}
}

// Bounds of a Firehose access key: long enough not to be guessed, and
// at most what Firehose sends.
const (
	MinFirehoseKeyLength = 16
	MaxFirehoseKeyLength = 4096
)

// checkFirehoseKeys reports the keys of FIREHOSE_ACCESS_KEYS that are too
// short or too long, by position: a key is never repeated in a message.
func (c *Config) checkFirehoseKeys(p *problems) {
	for i, key := range c.FirehoseAccessKeys {
		if n := len(key); n < MinFirehoseKeyLength || n > MaxFirehoseKeyLength {
			p.add("FIREHOSE_ACCESS_KEYS: key %d of %d is %d bytes; each must be %d to %d bytes (the key itself is not shown)",
				i+1, len(c.FirehoseAccessKeys), n, MinFirehoseKeyLength, MaxFirehoseKeyLength)
		}
	}
}

func (c *Config) validateShared(p *problems) {
	switch c.DeliveryBackendName {
	case "", BackendSvix, BackendDirect:
	default:
		p.add("DELIVERY_BACKEND must be svix or direct, got %q", c.DeliveryBackendName)
	}
	if c.DeliveryBackend() == BackendSvix && c.SvixAuthToken == "" {
		p.add("SVIX_AUTH_TOKEN is required with DELIVERY_BACKEND=svix")
	}
	if _, err := delivery.ParseSchedule(c.DeliveryRetrySchedule); err != nil {
		p.add("DELIVERY_RETRY_SCHEDULE: %v", err)
	}
	if c.DeliveryTimeout <= 0 || c.DeliveryTimeout > MaxDeliveryTimeout {
		p.add("DELIVERY_TIMEOUT must be above 0 and at most %s (an attempt in progress when a replica dies is made again after DELIVERY_TIMEOUT and 30s), got %s",
			MaxDeliveryTimeout, c.DeliveryTimeout)
	}
	if c.DeliveryMaxInFlightPerEndpoint < 1 {
		p.add("DELIVERY_MAX_IN_FLIGHT_PER_ENDPOINT must be at least 1, got %d", c.DeliveryMaxInFlightPerEndpoint)
	}
	if c.DeliveryWorkers < 1 {
		p.add("DELIVERY_WORKERS must be at least 1, got %d", c.DeliveryWorkers)
	}
	if c.DeliveryDisableAfter < 0 {
		p.add("DELIVERY_DISABLE_AFTER must be 0 (never) or positive, got %s", c.DeliveryDisableAfter)
	}
	if c.SvixServerURL != "" {
		if u, err := url.Parse(c.SvixServerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("SVIX_SERVER_URL must be an http or https URL, got %q", c.SvixServerURL)
		}
	}
	positive(p, map[string]time.Duration{
		"SVIX_TIMEOUT":                c.SvixTimeout,
		"SVIX_RETRY_MAX_ELAPSED":      c.SvixRetryMaxElapsed,
		"SVIX_RETRY_INITIAL_INTERVAL": c.SvixRetryInitialInterval,
		"SVIX_RETRY_MAX_INTERVAL":     c.SvixRetryMaxInterval,
		"SVIX_RETRY_AFTER_MAX":        c.SvixRetryAfterMax,
		"REDIS_TIMEOUT":               c.RedisTimeout,
		"DEAD_LETTER_PUBLISH_TIMEOUT": c.DeadLetterPublishTimeout,
	})
	if c.SvixHTTPClient != "tuned" && c.SvixHTTPClient != "sdk-default" {
		p.add("SVIX_HTTP_CLIENT must be tuned or sdk-default, got %q", c.SvixHTTPClient)
	}
	if c.SvixRetryMaxAttempts < 1 {
		p.add("SVIX_RETRY_MAX_ATTEMPTS must be at least 1, got %d", c.SvixRetryMaxAttempts)
	}
	if c.SvixMaxConnsPerHost < 1 {
		p.add("SVIX_MAX_CONNS_PER_HOST must be at least 1, got %d", c.SvixMaxConnsPerHost)
	}
	if c.DedupTTL < 0 {
		p.add("DEDUP_TTL must not be negative (0 turns duplicate suppression off), got %s", c.DedupTTL)
	}
	if _, err := dedup.ParseKeyFields(c.DedupKeyFields); err != nil {
		p.add("DEDUP_KEY_FIELDS: %v", err)
	}
	if c.DedupWait < 0 {
		p.add("DEDUP_WAIT must not be negative (0 answers an event whose key is in flight at once), got %s", c.DedupWait)
	}
	checkTypePatterns(p, "FILTER_INCLUDE_TYPES", c.FilterIncludeTypes)
	checkTypePatterns(p, "FILTER_EXCLUDE_TYPES", c.FilterExcludeTypes)
	if c.DedupFailureMode != "open" && c.DedupFailureMode != "closed" {
		p.add("DEDUP_FAILURE_MODE must be open or closed, got %q", c.DedupFailureMode)
	}
	c.checkRedis(p)
	if c.DeadLetterEnabled() && c.PubSubProjectID == "" && !strings.HasPrefix(c.DeadLetterTopic, "projects/") {
		p.add("PUBSUB_PROJECT_ID is required when DEAD_LETTER_TOPIC is a topic ID, not a full projects/P/topics/T name")
	}
	if c.UnknownApplication != "forward" && c.UnknownApplication != "drop" {
		p.add("UNKNOWN_APPLICATION must be forward or drop, got %q", c.UnknownApplication)
	}
	if c.SentrySampleRate < 0 || c.SentrySampleRate > 1 {
		p.add("SENTRY_SAMPLE_RATE must be between 0 and 1, got %g", c.SentrySampleRate)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		p.add("LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		p.add("LOG_FORMAT must be json or text, got %q", c.LogFormat)
	}
}

// checkRedis checks how Redis is reached: exactly one of REDIS_URL
// (credentials and TLS in the URL), REDIS_CLUSTER_ADDRS and
// REDIS_SENTINEL_ADDRS (the last two with REDIS_USERNAME, REDIS_PASSWORD
// and REDIS_TLS; sentinels with REDIS_SENTINEL_MASTER,
// REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD).
func (c *Config) checkRedis(p *problems) {
	var ways []string
	if c.RedisURL != "" {
		ways = append(ways, "REDIS_URL")
	}
	if len(c.RedisClusterAddrs) > 0 {
		ways = append(ways, "REDIS_CLUSTER_ADDRS")
	}
	if len(c.RedisSentinelAddrs) > 0 {
		ways = append(ways, "REDIS_SENTINEL_ADDRS")
	}
	if len(ways) > 1 {
		p.add("%s are set; set only one: REDIS_URL for one server, REDIS_CLUSTER_ADDRS for a Redis Cluster, REDIS_SENTINEL_ADDRS for a master that Redis Sentinel watches",
			strings.Join(ways, " and "))
	}
	tls := c.RedisTLS
	if c.RedisURL != "" {
		opts, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			p.add("REDIS_URL: %v", err)
		} else {
			tls = opts.TLSConfig != nil
		}
		for _, name := range c.redisClusterSettings() {
			p.add("%s is for REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS; with REDIS_URL, put credentials in the URL and use rediss:// for TLS", name)
		}
	}
	checkAddrs(p, "REDIS_CLUSTER_ADDRS", c.RedisClusterAddrs)
	checkAddrs(p, "REDIS_SENTINEL_ADDRS", c.RedisSentinelAddrs)
	switch {
	case len(c.RedisSentinelAddrs) > 0 && c.RedisSentinelMaster == "":
		p.add("REDIS_SENTINEL_ADDRS needs REDIS_SENTINEL_MASTER, the name the sentinels know the master by (sentinel monitor NAME)")
	case len(c.RedisSentinelAddrs) == 0:
		for _, name := range c.redisSentinelSettings() {
			p.add("%s is set but REDIS_SENTINEL_ADDRS is not", name)
		}
	}
	if !c.RedisEnabled() {
		names := c.redisClusterSettings()
		if c.RedisTLSCAFile != "" {
			names = append(names, "REDIS_TLS_CA_FILE")
		}
		for _, name := range names {
			p.add("%s is set but none of REDIS_URL, REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS is", name)
		}
		return
	}
	if c.RedisTLSCAFile != "" && !tls {
		p.add("REDIS_TLS_CA_FILE needs TLS: a rediss:// REDIS_URL, or REDIS_TLS=true with REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS")
	}
}

// checkAddrs reports each of addrs, the setting name, that is not
// host:port.
func checkAddrs(p *problems, name string, addrs []string) {
	for _, addr := range addrs {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			p.add("%s must be host:port addresses separated by commas, got %q", name, addr)
		}
	}
}

// redisClusterSettings names the settings for REDIS_CLUSTER_ADDRS and
// REDIS_SENTINEL_ADDRS alone that are set.
func (c *Config) redisClusterSettings() []string {
	var names []string
	if c.RedisUsername != "" {
		names = append(names, "REDIS_USERNAME")
	}
	if c.RedisPassword != "" {
		names = append(names, "REDIS_PASSWORD")
	}
	if c.RedisTLS {
		names = append(names, "REDIS_TLS")
	}
	return names
}

// redisSentinelSettings names the settings for REDIS_SENTINEL_ADDRS alone
// that are set.
func (c *Config) redisSentinelSettings() []string {
	var names []string
	if c.RedisSentinelMaster != "" {
		names = append(names, "REDIS_SENTINEL_MASTER")
	}
	if c.RedisSentinelUsername != "" {
		names = append(names, "REDIS_SENTINEL_USERNAME")
	}
	if c.RedisSentinelPassword != "" {
		names = append(names, "REDIS_SENTINEL_PASSWORD")
	}
	return names
}

// positive reports each duration in durations that is not above zero.
func positive(p *problems, durations map[string]time.Duration) {
	for _, name := range sortedKeys(durations) {
		if durations[name] <= 0 {
			p.add("%s must be positive, got %s", name, durations[name])
		}
	}
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
	return variableName(f) + ": " + rest
}
