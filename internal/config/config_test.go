package config

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func loadEnv(env map[string]string) (*Config, error) {
	return Load(context.Background(), envconfig.MapLookuper(env))
}

// base is the smallest configuration the server accepts.
var base = map[string]string{"SVIX_AUTH_TOKEN": "sk", "PUBSUB_VERIFICATION_TOKEN": "tok"}

// with returns base with the variables of envs added or replaced, the
// last one winning.
func with(envs ...map[string]string) map[string]string {
	out := maps.Clone(base)
	for _, env := range envs {
		maps.Copy(out, env)
	}
	return out
}

// problemsOf returns the problems listed in err, one per line.
func problemsOf(err error) []string {
	if err == nil {
		return nil
	}
	_, list, _ := strings.Cut(err.Error(), "\n  - ")
	return strings.Split(list, "\n  - ")
}

func TestDefaults(t *testing.T) {
	c, err := loadEnv(map[string]string{"SVIX_AUTH_TOKEN": "sk", "AUTH_USERNAME": "admin", "AUTH_PASSWORD": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		HTTPPort: 4000, ReadTimeout: 10 * time.Second, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 60 * time.Second, GracefulShutdownTimeout: 30 * time.Second, MaxHeaderBytes: 64 << 10,
		MaxBodyBytes: 2 << 20, MaxEventBytes: 1 << 20, MaxInFlight: 1024, MaxInFlightBytes: 48 << 20, MetricsPort: 9090, AuthUsername: "admin", AuthPassword: "admin", AuthRealm: "gwook",
		SvixAuthToken: "sk", SvixMaxConnsPerHost: 100, SvixTimeout: 5 * time.Second, SvixRetryMaxAttempts: 5,
		SvixRetryMaxElapsed: 8 * time.Second, SvixRetryInitialInterval: 100 * time.Millisecond,
		SvixRetryMaxInterval: 2 * time.Second, SvixRetryAfterMax: 5 * time.Second, SvixHTTPClient: "tuned",
		RedisTimeout: 500 * time.Millisecond, DedupTTL: time.Minute, DedupKeyFields: []string{"type", "project", "source"},
		DedupFailureMode: "open", DedupWait: time.Second, DeadLetterPublishTimeout: 5 * time.Second,
		PullMaxOutstandingMessages: 100, PullMaxOutstandingBytes: 64 << 20,
		SentryEnvironment: "production", SentrySampleRate: 1, DataDir: "./data", UnknownApplication: "forward",
		DeliveryTimeout: 15 * time.Second, DeliveryRetrySchedule: "5s,5m,30m,2h,5h,10h,10h", DeliveryMaxInFlightPerEndpoint: 10,
		DeliveryWorkers: 100, DeliveryDisableAfter: 5 * 24 * time.Hour, MessageRetention: 30 * 24 * time.Hour, StatsFlushInterval: 10 * time.Second, StatsRetention: 30 * 24 * time.Hour,
		LogLevel: "info", LogFormat: "json",
	}
	// %+v prints every field, and a nil slice like an empty one.
	if got, want := fmt.Sprintf("%+v", *c), fmt.Sprintf("%+v", want); got != want {
		t.Errorf("defaults:\n got %s\nwant %s", got, want)
	}
}

// TestBackendChoice checks DELIVERY_BACKEND's default: Svix with a Svix
// token, Gwook's own delivery without one, so that an empty environment
// starts (API tokens from the database always authenticate producers).
func TestBackendChoice(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, BackendDirect},
		{map[string]string{"SVIX_AUTH_TOKEN": "sk"}, BackendSvix},
		{map[string]string{"SVIX_AUTH_TOKEN": "sk", "DELIVERY_BACKEND": "direct"}, BackendDirect},
	} {
		c, err := loadEnv(tc.env)
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if got := c.DeliveryBackend(); got != tc.want {
			t.Errorf("%v: backend %s, want %s", tc.env, got, tc.want)
		}
	}
	_, err := loadEnv(map[string]string{"DELIVERY_BACKEND": "svix"})
	if problems := problemsOf(err); len(problems) != 1 || !strings.Contains(problems[0], "SVIX_AUTH_TOKEN is required with DELIVERY_BACKEND=svix") {
		t.Errorf("Svix without a token: %v", err)
	}
}

// TestInvalidCombinations checks that each broken setting yields exactly
// the problems expected, on a base that is valid on its own.
func TestInvalidCombinations(t *testing.T) {
	if _, err := loadEnv(base); err != nil {
		t.Fatalf("the base configuration is refused: %v", err)
	}
	redisAndDLQ := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0", "DEAD_LETTER_TOPIC": "dlq", "PUBSUB_PROJECT_ID": "p"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // each problem, in order, by a part of its text
	}{
		{"request budget reaches the write timeout", with(redisAndDLQ, map[string]string{"HTTP_SERVER_WRITE_TIMEOUT": "18s"}), []string{"HTTP_SERVER_WRITE_TIMEOUT (18s) must be longer than the worst case of one request (18s = " +
			"the dedup claim (2 tries × dial, write and read × REDIS_TIMEOUT 500ms) 3s + DEDUP_WAIT 1s + " +
			"SVIX_RETRY_MAX_ELAPSED 8s + the claim's release 1s + DEAD_LETTER_PUBLISH_TIMEOUT 5s), " +
			"or answers are cut off while Gwook still works on them"}},
		{"request budget reaches the graceful shutdown timeout", map[string]string{"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT": "10s"},
			[]string{"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT (10s) must be longer than the worst case of one request " +
				"(10s = DEDUP_WAIT 1s + SVIX_RETRY_MAX_ELAPSED 8s + the claim's release 1s), or a shutdown cuts off requests in flight"}},
		{"retry budget past both timeouts", map[string]string{"SVIX_RETRY_MAX_ELAPSED": "29s"},
			[]string{"HTTP_SERVER_WRITE_TIMEOUT (30s) must be longer than the worst case of one request (31s = ",
				"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT (30s) must be longer"}},
		{"dead-letter publish counts only with a topic", map[string]string{"DEAD_LETTER_PUBLISH_TIMEOUT": "25s"}, nil},
		{"dead-letter publish with a topic", map[string]string{"DEAD_LETTER_PUBLISH_TIMEOUT": "20s", "DEAD_LETTER_TOPIC": "projects/p/topics/d"},
			[]string{"(30s = DEDUP_WAIT 1s + SVIX_RETRY_MAX_ELAPSED 8s + the claim's release 1s + DEAD_LETTER_PUBLISH_TIMEOUT 20s)",
				"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT (30s)"}},
		{"no dedup terms with suppression off", map[string]string{"DEDUP_TTL": "0", "SVIX_RETRY_MAX_ELAPSED": "29s", "DEDUP_WAIT": "20s"}, nil},
		{"dedup TTL within the send budget", map[string]string{"DEDUP_TTL": "9s"},
			[]string{"DEDUP_TTL (9s) must be longer than the send budget (9s = SVIX_RETRY_MAX_ELAPSED 8s + the claim's release 1s)"}},
		{"dedup TTL within the send budget with Redis", map[string]string{"DEDUP_TTL": "12s", "REDIS_URL": "redis://r:6379/0"},
			[]string{"DEDUP_TTL (12s) must be longer than the send budget (12s = the dedup claim (2 tries × dial, write and read × REDIS_TIMEOUT 500ms) 3s + SVIX_RETRY_MAX_ELAPSED 8s + the claim's release 1s)"}},
		{"dedup TTL just above the send budget", map[string]string{"DEDUP_TTL": "10s"}, nil},
		{"negative dedup wait", map[string]string{"DEDUP_WAIT": "-1s"}, []string{"DEDUP_WAIT must not be negative"}},
		{"dead-letter topic ID without project", map[string]string{"DEAD_LETTER_TOPIC": "dlq"}, []string{"PUBSUB_PROJECT_ID is required"}},
		{"unknown dedup key field", map[string]string{"DEDUP_KEY_FIELDS": "type,colour"}, []string{"DEDUP_KEY_FIELDS"}},
		{"bad dedup failure mode", map[string]string{"DEDUP_FAILURE_MODE": "maybe"}, []string{"DEDUP_FAILURE_MODE must be open or closed"}},
		{"negative dedup TTL", map[string]string{"DEDUP_TTL": "-1s"}, []string{"DEDUP_TTL must not be negative"}},
		{"bad Redis URL", map[string]string{"REDIS_URL": "http://x"}, []string{"REDIS_URL"}},
		{"Redis URL and cluster", map[string]string{"REDIS_URL": "redis://r:6379/0", "REDIS_CLUSTER_ADDRS": "a:7000,b:7000"},
			[]string{"REDIS_URL and REDIS_CLUSTER_ADDRS are set; set only one: REDIS_URL for one server, REDIS_CLUSTER_ADDRS for a Redis Cluster, REDIS_SENTINEL_ADDRS for a master that Redis Sentinel watches"}},
		{"Redis URL and sentinels", map[string]string{"REDIS_URL": "redis://r:6379/0", "REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_SENTINEL_MASTER": "m"},
			[]string{"REDIS_URL and REDIS_SENTINEL_ADDRS are set; set only one"}},
		{"cluster and sentinels", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000", "REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_SENTINEL_MASTER": "m"},
			[]string{"REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS are set; set only one"}},
		{"all three ways to Redis", map[string]string{"REDIS_URL": "redis://r:6379/0", "REDIS_CLUSTER_ADDRS": "a:7000", "REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_SENTINEL_MASTER": "m"},
			[]string{"REDIS_URL and REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS are set; set only one"}},
		{"sentinels without a master name", map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379,s2:26379"},
			[]string{"REDIS_SENTINEL_ADDRS needs REDIS_SENTINEL_MASTER, the name the sentinels know the master by (sentinel monitor NAME)"}},
		{"master name without sentinels", map[string]string{"REDIS_SENTINEL_MASTER": "m"},
			[]string{"REDIS_SENTINEL_MASTER is set but REDIS_SENTINEL_ADDRS is not"}},
		{"sentinel settings with a Redis URL", map[string]string{"REDIS_URL": "redis://r:6379/0", "REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_USERNAME": "sentinel-user", "REDIS_SENTINEL_PASSWORD": "secret-password"},
			[]string{"REDIS_SENTINEL_MASTER is set but REDIS_SENTINEL_ADDRS is not", "REDIS_SENTINEL_USERNAME is set but REDIS_SENTINEL_ADDRS is not", "REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINEL_ADDRS is not"}},
		{"sentinel username without sentinels", map[string]string{"REDIS_SENTINEL_USERNAME": "sentinel-user"},
			[]string{"REDIS_SENTINEL_USERNAME is set but REDIS_SENTINEL_ADDRS is not"}},
		{"sentinel address without port", map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379,s2", "REDIS_SENTINEL_MASTER": "m"},
			[]string{`REDIS_SENTINEL_ADDRS must be host:port addresses separated by commas, got "s2"`}},
		{"sentinels with credentials, TLS and a CA file", map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379,s2:26379,s3:26379", "REDIS_SENTINEL_MASTER": "m",
			"REDIS_SENTINEL_USERNAME": "sentinel-user", "REDIS_SENTINEL_PASSWORD": "sentinel-password", "REDIS_USERNAME": "u", "REDIS_PASSWORD": "p", "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": "/ca.pem"}, nil},
		{"CA file without TLS, sentinels", map[string]string{"REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_SENTINEL_MASTER": "m", "REDIS_TLS_CA_FILE": "/ca.pem"},
			[]string{"REDIS_TLS_CA_FILE needs TLS: a rediss:// REDIS_URL, or REDIS_TLS=true with REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS"}},
		{"cluster address without port", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000,b"},
			[]string{`REDIS_CLUSTER_ADDRS must be host:port addresses separated by commas, got "b"`}},
		{"cluster settings with a Redis URL", map[string]string{"REDIS_URL": "rediss://r:6379/0", "REDIS_USERNAME": "u", "REDIS_PASSWORD": "secret-password", "REDIS_TLS": "true"},
			[]string{"REDIS_USERNAME is for REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS", "REDIS_PASSWORD is for REDIS_CLUSTER_ADDRS", "REDIS_TLS is for REDIS_CLUSTER_ADDRS"}},
		{"Redis settings without Redis", map[string]string{"REDIS_PASSWORD": "secret-password", "REDIS_TLS_CA_FILE": "/ca.pem"},
			[]string{"REDIS_PASSWORD is set but none of REDIS_URL, REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS is", "REDIS_TLS_CA_FILE is set but none of"}},
		{"CA file without TLS, URL", map[string]string{"REDIS_URL": "redis://r:6379/0", "REDIS_TLS_CA_FILE": "/ca.pem"}, []string{"REDIS_TLS_CA_FILE needs TLS"}},
		{"CA file without TLS, cluster", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000", "REDIS_TLS_CA_FILE": "/ca.pem"}, []string{"REDIS_TLS_CA_FILE needs TLS"}},
		{"CA file with rediss", map[string]string{"REDIS_URL": "rediss://r:6379/0", "REDIS_TLS_CA_FILE": "/ca.pem"}, nil},
		{"cluster with TLS and a CA file", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000", "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": "/ca.pem", "REDIS_PASSWORD": "p"}, nil},
		{"username without password", map[string]string{"AUTH_USERNAME": "admin"}, []string{"AUTH_USERNAME and AUTH_PASSWORD must be set together"}},
		{"audience without service account", map[string]string{"PUBSUB_PUSH_AUDIENCE": "https://x"}, []string{"PUBSUB_PUSH_SERVICE_ACCOUNT is required"}},
		{"service account without audience", map[string]string{"PUBSUB_PUSH_SERVICE_ACCOUNT": "sa@x"}, []string{"PUBSUB_PUSH_AUDIENCE is required"}},
		{"bad Svix URL", map[string]string{"SVIX_SERVER_URL": "localhost:8071"}, []string{"SVIX_SERVER_URL must be an http or https URL"}},
		{"zero attempts", map[string]string{"SVIX_RETRY_MAX_ATTEMPTS": "0"}, []string{"SVIX_RETRY_MAX_ATTEMPTS must be at least 1"}},
		{"negative timeout", map[string]string{"SVIX_TIMEOUT": "-1s"}, []string{"SVIX_TIMEOUT must be positive"}},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL must be"}},
		{"bad port", map[string]string{"HTTP_SERVER_PORT": "70000"}, []string{"HTTP_SERVER_PORT must be between"}},
		{"unparsable duration", map[string]string{"SVIX_TIMEOUT": "soon"},
			[]string{`SVIX_TIMEOUT: "soon" is not a duration; use a number with a unit, e.g. 30s or 500ms`}},
		{"no request in flight", map[string]string{"MAX_IN_FLIGHT": "0"}, []string{"MAX_IN_FLIGHT must be at least 1"}},
		{"in-flight bytes below one body", map[string]string{"MAX_IN_FLIGHT_BYTES": "1048576"},
			[]string{"MAX_IN_FLIGHT_BYTES (1048576) must be at least MAX_BODY_BYTES (2097152)"}},
		{"no event size", map[string]string{"MAX_EVENT_BYTES": "0"}, []string{"MAX_EVENT_BYTES must be positive"}},
		{"body limit below a push of the largest event", map[string]string{"MAX_BODY_BYTES": "1048576"},
			[]string{"MAX_BODY_BYTES (1048576) must hold a Pub/Sub push envelope of an event of MAX_EVENT_BYTES (1048576): at least 1660248"}},
		{"unknown backend", map[string]string{"DELIVERY_BACKEND": "sqs"}, []string{`DELIVERY_BACKEND must be svix or direct, got "sqs"`}},
		{"bad retry schedule", map[string]string{"DELIVERY_RETRY_SCHEDULE": "5s,soon"}, []string{"DELIVERY_RETRY_SCHEDULE: "}},
		{"delivery timeout too long", map[string]string{"DELIVERY_TIMEOUT": "45s"}, []string{"DELIVERY_TIMEOUT must be above 0 and at most 30s"}},
		{"no attempt per endpoint", map[string]string{"DELIVERY_MAX_IN_FLIGHT_PER_ENDPOINT": "0"}, []string{"DELIVERY_MAX_IN_FLIGHT_PER_ENDPOINT must be at least 1"}},
		{"no delivery worker", map[string]string{"DELIVERY_WORKERS": "0"}, []string{"DELIVERY_WORKERS must be at least 1"}},
		{"disable after below 0", map[string]string{"DELIVERY_DISABLE_AFTER": "-1h"}, []string{"DELIVERY_DISABLE_AFTER must be 0 (never) or positive"}},
		{"no stats flush interval", map[string]string{"STATS_FLUSH_INTERVAL": "0s"}, []string{"STATS_FLUSH_INTERVAL must be positive"}},
		{"stats kept less than a day", map[string]string{"STATS_RETENTION": "12h"},
			[]string{"STATS_RETENTION must be between 24h0m0s and 9600h0m0s"}},
		{"stats kept longer than day rows", map[string]string{"STATS_RETENTION": "10000h"}, []string{"STATS_RETENTION must be between"}},
		{"messages kept less than a day", map[string]string{"MESSAGE_RETENTION": "23h"},
			[]string{"MESSAGE_RETENTION must be between 24h0m0s and 9600h0m0s (how long direct delivery keeps a message, its deliveries and attempts, " +
				"counted from when it was accepted; one still being delivered is kept until it is done), got 23h0m0s"}},
		{"messages kept longer than 400 days", map[string]string{"MESSAGE_RETENTION": "9601h"}, []string{"MESSAGE_RETENTION must be between"}},
		{"messages kept a day", map[string]string{"MESSAGE_RETENTION": "24h"}, nil},
		{"messages kept 400 days", map[string]string{"MESSAGE_RETENTION": "9600h"}, nil},
		{"message retention not a duration", map[string]string{"MESSAGE_RETENTION": "30d"}, []string{`MESSAGE_RETENTION: "30d" is not a duration`}},
		{"two Firehose keys, for rotation", map[string]string{"FIREHOSE_ACCESS_KEYS": "old-firehose-key-0001, new-firehose-key-0002"}, nil},
		{"a short Firehose key", map[string]string{"FIREHOSE_ACCESS_KEYS": "old-firehose-key-0001,short"},
			[]string{"FIREHOSE_ACCESS_KEYS: key 2 of 2 is 5 bytes; each must be 16 to 4096 bytes (the key itself is not shown)"}},
		{"an empty Firehose key", map[string]string{"FIREHOSE_ACCESS_KEYS": "old-firehose-key-0001,"},
			[]string{"FIREHOSE_ACCESS_KEYS: key 2 of 2 is 0 bytes"}},
		{"body limit above a dead-letter message", map[string]string{"DEAD_LETTER_TOPIC": "dlq", "PUBSUB_PROJECT_ID": "p", "MAX_BODY_BYTES": "16777216"},
			[]string{"MAX_BODY_BYTES must be at most 9934464 with a dead-letter topic"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadEnv(with(tc.env))
			got := problemsOf(err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d: %v", len(got), len(tc.want), err)
			}
			for i, want := range tc.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d is %q, want it to contain %q", i, got[i], want)
				}
			}
		})
	}
}

func TestBudgets(t *testing.T) {
	redis := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0"}
	dlq := map[string]string{"DEAD_LETTER_TOPIC": "projects/p/topics/d"}
	// Each configuration loads with the default timeouts: they fit.
	for _, tc := range []struct {
		name                 string
		env                  map[string]string
		redis, send, request time.Duration
	}{
		{"defaults, in-process dedup", base, 0, 9 * time.Second, 10 * time.Second},
		{"Redis", with(redis), 3 * time.Second, 12 * time.Second, 13 * time.Second},
		{"Redis and a dead-letter topic", with(redis, dlq), 3 * time.Second, 12 * time.Second, 18 * time.Second},
		{"Redis Cluster", with(map[string]string{"REDIS_CLUSTER_ADDRS": "127.0.0.1:7001"}), 3 * time.Second, 12 * time.Second, 13 * time.Second},
		{"Redis Sentinel", with(map[string]string{"REDIS_SENTINEL_ADDRS": "127.0.0.1:7013", "REDIS_SENTINEL_MASTER": "gwook-test"}),
			3 * time.Second, 12 * time.Second, 13 * time.Second},
		{"faster Redis", with(redis, map[string]string{"REDIS_TIMEOUT": "100ms"}),
			600 * time.Millisecond, 9600 * time.Millisecond, 10600 * time.Millisecond},
		{"no dedup, dead-letter topic", with(redis, dlq, map[string]string{"DEDUP_TTL": "0"}), 3 * time.Second, 8 * time.Second, 13 * time.Second},
		{"longer dedup wait", with(map[string]string{"DEDUP_WAIT": "4s"}), 0, 9 * time.Second, 13 * time.Second},
		{"direct delivery", with(map[string]string{"DELIVERY_BACKEND": "direct"}), 0, 6 * time.Second, 7 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadEnv(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.RedisCommandBudget(); got != tc.redis {
				t.Errorf("RedisCommandBudget() = %s, want %s", got, tc.redis)
			}
			if got := c.SendBudget(); got != tc.send {
				t.Errorf("SendBudget() = %s, want %s", got, tc.send)
			}
			if got := c.RequestBudget(); got != tc.request {
				t.Errorf("RequestBudget() = %s, want %s", got, tc.request)
			}
			want := c.DrainDelay + c.GracefulShutdownTimeout + StatsFlushTimeout
			if c.Direct() {
				want += DeliveryStopTimeout
			}
			if got := c.ShutdownBudget(); got != want {
				t.Errorf("ShutdownBudget() = %s, want %s", got, want)
			}
			// The write timeout also covers reading the body, which the
			// read timeout bounds: the defaults leave room for both.
			if c.RequestBudget()+c.ReadTimeout >= c.WriteTimeout {
				t.Errorf("request budget %s + HTTP_SERVER_READ_TIMEOUT %s is not below HTTP_SERVER_WRITE_TIMEOUT %s",
					c.RequestBudget(), c.ReadTimeout, c.WriteTimeout)
			}
		})
	}
}

// TestUnreadableValuesInWords checks that every value that cannot be read
// is reported at once, by name, with the value given and the form
// expected, and that the other checks still run (with the default in
// place of what could not be read).
func TestUnreadableValuesInWords(t *testing.T) {
	_, err := loadEnv(with(map[string]string{
		"HTTP_SERVER_WRITE_TIMEOUT": "20",
		"HTTP_SERVER_PORT":          "four thousand",
		"MAX_BODY_BYTES":            "1e6",
		"SVIX_DEBUG":                "yes please",
		"SENTRY_SAMPLE_RATE":        "most",
		"SVIX_RETRY_MAX_ELAPSED":    strings.Repeat("9", 100),
		"LOG_LEVEL":                 "loud",
	}))
	want := []string{
		`HTTP_SERVER_PORT: "four thousand" is not a whole number (or is out of range); use e.g. 4000`,
		`HTTP_SERVER_WRITE_TIMEOUT: "20" is not a duration; use a number with a unit, e.g. 30s or 500ms`,
		`MAX_BODY_BYTES: "1e6" is not a whole number (or is out of range); use e.g. 4000`,
		`SVIX_DEBUG: "yes please" is not a boolean; use true or false`,
		`SVIX_RETRY_MAX_ELAPSED: "` + strings.Repeat("9", 61) + `…" is not a duration; use a number with a unit, e.g. 30s or 500ms`,
		`SENTRY_SAMPLE_RATE: "most" is not a number; use e.g. 0.25`,
		`LOG_LEVEL must be debug, info, warn or error, got "loud"`,
	}
	if got := problemsOf(err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, raw := range []string{"strconv", "invalid syntax", "time: "} {
		if strings.Contains(err.Error(), raw) {
			t.Errorf("the error has Go's own wording %q:\n%v", raw, err)
		}
	}
}

func TestTypeFilterPatterns(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"user.deleted", nil},
		{"billing.*,user.signed_up, internal.audit ", nil},
		{"a-b_c.D9", nil},
		{"billing*", []string{`"billing*" is not a pattern Gwook understands; a prefix is an event type followed by .*`}},
		{"*", []string{`"*" is not a pattern`}},
		{".*", []string{`".*" is not a pattern`}},
		{"user.*.created", []string{`"user.*.created" is not a pattern`}},
		{"user deleted", []string{`"user deleted" is not an event type; event types are 1 to 256 letters, digits, '-', '_' and '.'`}},
		{"user.deleted,,billing.*", []string{"an entry is empty"}},
		{"ok.type,user/deleted,bad*", []string{`"user/deleted" is not an event type`, `"bad*" is not a pattern`}},
		{strings.Repeat("a", 257), []string{"is not an event type"}},
	} {
		for _, name := range []string{"FILTER_INCLUDE_TYPES", "FILTER_EXCLUDE_TYPES"} {
			t.Run(name+"="+tc.value[:min(len(tc.value), 20)], func(t *testing.T) {
				_, err := loadEnv(with(map[string]string{name: tc.value}))
				got := problemsOf(err)
				if len(got) != len(tc.want) {
					t.Fatalf("got %d problems, want %d: %v", len(got), len(tc.want), err)
				}
				for i, want := range tc.want {
					if !strings.HasPrefix(got[i], name+": ") || !strings.Contains(got[i], want) {
						t.Errorf("problem %q, want %s: ...%s...", got[i], name, want)
					}
				}
			})
		}
	}
	// The replay command applies the same filters, so it checks them too.
	_, err := LoadReplay(context.Background(), envconfig.MapLookuper(map[string]string{"SVIX_AUTH_TOKEN": "sk", "FILTER_EXCLUDE_TYPES": "x*"}))
	if len(problemsOf(err)) != 1 || !strings.Contains(err.Error(), "FILTER_EXCLUDE_TYPES") {
		t.Errorf("replay with a bad filter: %v", err)
	}
}

func TestReplayNeedsNoAuthMethod(t *testing.T) {
	if _, err := LoadReplay(context.Background(), envconfig.MapLookuper(map[string]string{"SVIX_AUTH_TOKEN": "sk"})); err != nil {
		t.Errorf("replay: %v", err)
	}
	_, err := LoadReplay(context.Background(), envconfig.MapLookuper(map[string]string{"DELIVERY_BACKEND": "svix"}))
	if err == nil || !strings.Contains(err.Error(), "SVIX_AUTH_TOKEN") || strings.Contains(err.Error(), "AUTH_USERNAME") {
		t.Errorf("replay without Svix token: %v", err)
	}
	// Replay serves nothing: the HTTP timeouts do not bind it.
	if _, err := LoadReplay(context.Background(), envconfig.MapLookuper(map[string]string{"SVIX_AUTH_TOKEN": "sk", "HTTP_SERVER_WRITE_TIMEOUT": "1s"})); err != nil {
		t.Errorf("replay with a short write timeout: %v", err)
	}
}

func TestValidateMatchesLoad(t *testing.T) {
	c, err := loadEnv(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() on a loaded configuration: %v", err)
	}
	c.WriteTimeout = time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "HTTP_SERVER_WRITE_TIMEOUT (1s)") {
		t.Errorf("Validate() with a 1s write timeout: %v", err)
	}
	if err := c.ValidateReplay(); err != nil {
		t.Errorf("ValidateReplay() with a 1s write timeout: %v", err)
	}
}

func TestDeadLetterTopicAsFullName(t *testing.T) {
	c, err := loadEnv(map[string]string{"SVIX_AUTH_TOKEN": "sk", "PUBSUB_VERIFICATION_TOKEN": "t", "DEAD_LETTER_TOPIC": "projects/p1/topics/dlq"})
	if err != nil || !c.DeadLetterEnabled() || !c.DedupEnabled() || c.DedupFailureMode != "open" ||
		strings.Join(c.DedupKeyFields, ",") != "type,project,source" || c.DedupTTL != time.Minute {
		t.Errorf("config %+v, err %v", c, err)
	}
}

func TestEachAuthMethodAloneIsEnough(t *testing.T) {
	for _, env := range []map[string]string{
		{"AUTH_USERNAME": "a", "AUTH_PASSWORD": "b"},
		{"PUBSUB_PUSH_AUDIENCE": "https://x", "PUBSUB_PUSH_SERVICE_ACCOUNT": "sa@x"},
		{"PUBSUB_VERIFICATION_TOKEN": "t"},
	} {
		env["SVIX_AUTH_TOKEN"] = "sk"
		if _, err := loadEnv(env); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

func TestDefaultBodyLimitHoldsAPushOfTheLargestEvent(t *testing.T) {
	c, err := loadEnv(map[string]string{"SVIX_AUTH_TOKEN": "sk", "PUBSUB_VERIFICATION_TOKEN": "t",
		"DEAD_LETTER_TOPIC": "dlq", "PUBSUB_PROJECT_ID": "p"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBodyBytes < PushEnvelopeBytes(c.MaxEventBytes) || c.MaxBodyBytes > MaxDeadLetterBodyBytes {
		t.Errorf("MAX_BODY_BYTES %d: want between %d and %d", c.MaxBodyBytes, PushEnvelopeBytes(c.MaxEventBytes), MaxDeadLetterBodyBytes)
	}
}

func TestVariables(t *testing.T) {
	vars := Variables()
	for name, want := range map[string]string{
		"HTTP_SERVER_PORT": "4000",
		"DEDUP_KEY_FIELDS": "type,project,source", // a default with commas
		"AUTH_USERNAME":    "",                    // no default
		"MAX_IN_FLIGHT":    "1024",
	} {
		if got, ok := vars[name]; !ok || got != want {
			t.Errorf("Variables()[%s] = %q, %v; want %q", name, got, ok, want)
		}
	}
	if n := reflect.TypeFor[Config]().NumField(); len(vars) != n {
		t.Errorf("%d variables for %d fields", len(vars), n)
	}
}

func TestFirehoseKeysAreReadTrimmedAndNeverShown(t *testing.T) {
	c, err := loadEnv(with(map[string]string{"FIREHOSE_ACCESS_KEYS": " old-firehose-key-0001 ,new-firehose-key-0002"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"old-firehose-key-0001", "new-firehose-key-0002"}; !reflect.DeepEqual(c.FirehoseAccessKeys, want) {
		t.Errorf("FirehoseAccessKeys = %q, want %q", c.FirehoseAccessKeys, want)
	}
	const short = "tiny-secret"
	_, err = loadEnv(with(map[string]string{"FIREHOSE_ACCESS_KEYS": short}))
	if err == nil || strings.Contains(err.Error(), short) {
		t.Errorf("a short key: %v; want an error that does not repeat the key", err)
	}
}
