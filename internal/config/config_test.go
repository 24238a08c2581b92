package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func loadEnv(env map[string]string) (*Config, error) {
	return Load(context.Background(), envconfig.MapLookuper(env))
}

func TestDefaults(t *testing.T) {
	c, err := loadEnv(map[string]string{"SVIX_AUTH_TOKEN": "sk", "AUTH_USERNAME": "admin", "AUTH_PASSWORD": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		HTTPPort: 4000, ReadTimeout: 10 * time.Second, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 20 * time.Second,
		IdleTimeout: 60 * time.Second, GracefulShutdownTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		MaxBodyBytes: 2 << 20, MaxEventBytes: 1 << 20, MaxInFlight: 48, AuthUsername: "admin", AuthPassword: "admin", AuthRealm: "gwook",
		SvixAuthToken: "sk", SvixMaxConnsPerHost: 100, SvixTimeout: 5 * time.Second, SvixRetryMaxAttempts: 5,
		SvixRetryMaxElapsed: 8 * time.Second, SvixRetryInitialInterval: 100 * time.Millisecond,
		SvixRetryMaxInterval: 2 * time.Second, SvixRetryAfterMax: 5 * time.Second, LogLevel: "info", LogFormat: "json",
	}
	if c.HTTPPort != want.HTTPPort || c.ReadTimeout != want.ReadTimeout || c.ReadHeaderTimeout != want.ReadHeaderTimeout ||
		c.WriteTimeout != want.WriteTimeout || c.IdleTimeout != want.IdleTimeout || c.GracefulShutdownTimeout != want.GracefulShutdownTimeout ||
		c.MaxHeaderBytes != want.MaxHeaderBytes || c.MaxBodyBytes != want.MaxBodyBytes || c.AuthRealm != want.AuthRealm ||
		c.MaxEventBytes != want.MaxEventBytes || c.MaxInFlight != want.MaxInFlight ||
		c.SvixMaxConnsPerHost != want.SvixMaxConnsPerHost || c.SvixTimeout != want.SvixTimeout ||
		c.SvixRetryMaxAttempts != want.SvixRetryMaxAttempts || c.SvixRetryMaxElapsed != want.SvixRetryMaxElapsed ||
		c.SvixRetryInitialInterval != want.SvixRetryInitialInterval || c.SvixRetryMaxInterval != want.SvixRetryMaxInterval ||
		c.SvixRetryAfterMax != want.SvixRetryAfterMax || c.LogLevel != want.LogLevel || c.LogFormat != want.LogFormat ||
		c.SvixDebug || c.DrainDelay != 0 {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
}

func TestMissingRequiredNamesEverything(t *testing.T) {
	_, err := loadEnv(map[string]string{})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, name := range []string{"SVIX_AUTH_TOKEN", "AUTH_USERNAME", "PUBSUB_PUSH_AUDIENCE", "PUBSUB_VERIFICATION_TOKEN"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not name %s:\n%s", name, msg)
		}
	}
	if strings.Count(msg, "\n  - ") != 2 {
		t.Errorf("want exactly two problems listed:\n%s", msg)
	}
}

func TestInvalidCombinations(t *testing.T) {
	base := map[string]string{"SVIX_AUTH_TOKEN": "sk", "PUBSUB_VERIFICATION_TOKEN": "tok"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"retry budget reaches write timeout", map[string]string{"SVIX_RETRY_MAX_ELAPSED": "20s"}, "(20s in all) must be below HTTP_SERVER_WRITE_TIMEOUT (20s)"},
		{"retry and dead-letter budgets reach write timeout", map[string]string{"DEAD_LETTER_TOPIC": "dlq", "PUBSUB_PROJECT_ID": "p", "DEAD_LETTER_PUBLISH_TIMEOUT": "12s"}, "(20s in all) must be below HTTP_SERVER_WRITE_TIMEOUT"},
		{"dead-letter topic ID without project", map[string]string{"DEAD_LETTER_TOPIC": "dlq"}, "PUBSUB_PROJECT_ID is required"},
		{"unknown dedup key field", map[string]string{"DEDUP_KEY_FIELDS": "type,colour"}, "DEDUP_KEY_FIELDS"},
		{"bad dedup failure mode", map[string]string{"DEDUP_FAILURE_MODE": "maybe"}, "DEDUP_FAILURE_MODE must be open or closed"},
		{"negative dedup TTL", map[string]string{"DEDUP_TTL": "-1s"}, "DEDUP_TTL must not be negative"},
		{"bad Redis URL", map[string]string{"REDIS_URL": "http://x"}, "REDIS_URL"},
		{"username without password", map[string]string{"AUTH_USERNAME": "admin"}, "AUTH_USERNAME and AUTH_PASSWORD must be set together"},
		{"audience without service account", map[string]string{"PUBSUB_PUSH_AUDIENCE": "https://x"}, "PUBSUB_PUSH_SERVICE_ACCOUNT is required"},
		{"service account without audience", map[string]string{"PUBSUB_PUSH_SERVICE_ACCOUNT": "sa@x"}, "PUBSUB_PUSH_AUDIENCE is required"},
		{"bad Svix URL", map[string]string{"SVIX_SERVER_URL": "localhost:8071"}, "SVIX_SERVER_URL must be an http or https URL"},
		{"zero attempts", map[string]string{"SVIX_RETRY_MAX_ATTEMPTS": "0"}, "SVIX_RETRY_MAX_ATTEMPTS must be at least 1"},
		{"negative timeout", map[string]string{"SVIX_TIMEOUT": "-1s"}, "SVIX_TIMEOUT must be positive"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL must be"},
		{"bad port", map[string]string{"HTTP_SERVER_PORT": "70000"}, "HTTP_SERVER_PORT must be between"},
		{"unparsable duration", map[string]string{"SVIX_TIMEOUT": "soon"}, "SVIX_TIMEOUT"},
		{"no request in flight", map[string]string{"MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT must be at least 1"},
		{"no event size", map[string]string{"MAX_EVENT_BYTES": "0"}, "MAX_EVENT_BYTES must be positive"},
		{"body limit below a push of the largest event", map[string]string{"MAX_BODY_BYTES": "1048576"},
			"MAX_BODY_BYTES (1048576) must hold a Pub/Sub push envelope of an event of MAX_EVENT_BYTES (1048576): at least 1660248"},
		{"body limit above a dead-letter message", map[string]string{"DEAD_LETTER_TOPIC": "dlq", "PUBSUB_PROJECT_ID": "p", "MAX_BODY_BYTES": "16777216"},
			"MAX_BODY_BYTES must be at most 9934464 with a dead-letter topic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadEnv(env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestReplayNeedsNoAuthMethod(t *testing.T) {
	if _, err := LoadReplay(context.Background(), envconfig.MapLookuper(map[string]string{"SVIX_AUTH_TOKEN": "sk"})); err != nil {
		t.Errorf("replay: %v", err)
	}
	_, err := LoadReplay(context.Background(), envconfig.MapLookuper(map[string]string{}))
	if err == nil || !strings.Contains(err.Error(), "SVIX_AUTH_TOKEN") || strings.Contains(err.Error(), "AUTH_USERNAME") {
		t.Errorf("replay without Svix token: %v", err)
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
