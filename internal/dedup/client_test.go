package dedup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/test/redistest"
)

// productionConfig is cfg with the timeouts Gwook runs with by default
// (REDIS_TIMEOUT 500ms, one retry, a 3s budget per command).
func productionConfig(cfg ClientConfig) ClientConfig {
	cfg.Timeout = 500 * time.Millisecond
	cfg.MaxRetries = 1
	cfg.CommandBudget = 3 * time.Second
	return cfg
}

// newClient returns NewClient(productionConfig(cfg)), closed when the test
// ends.
func newClient(t *testing.T, cfg ClientConfig) redis.UniversalClient {
	t.Helper()
	client, err := NewClient(productionConfig(cfg))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestRedisTLS(t *testing.T) {
	srv := redistest.StartTLS(t)
	client := newClient(t, ClientConfig{URL: srv.URL(), TLSCAFile: srv.CAFile})
	waitForPing(t, NewRedis(client))
	testDeduper(t, func(*testing.T) Deduper { return NewRedis(client) })
}

// TestRedisTLSVerifiesTheServer checks that the server's certificate is
// checked: against the system's authorities, another authority, and
// without TLS, nothing answers.
func TestRedisTLSVerifiesTheServer(t *testing.T) {
	srv := redistest.StartTLS(t)
	tests := []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"system authorities", ClientConfig{URL: srv.URL()}, "certificate"},
		{"another authority", ClientConfig{URL: srv.URL(), TLSCAFile: srv.OtherCAFile}, "certificate"},
		{"no TLS", ClientConfig{URL: "redis://" + srv.Addr + "/0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewRedis(newClient(t, tt.cfg))
			err := d.Ping(t.Context())
			t.Logf("Ping: %v", err)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Ping = %v, want an error mentioning %q", err, tt.want)
			}
			if c, err := d.Claim(t.Context(), testKey(t), "evt_a", longTTL); err == nil {
				t.Errorf("Claim = %+v, want an error", c)
			}
		})
	}
}

func TestNewClientErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"nothing", ClientConfig{}, "none of"},
		{"URL and cluster", ClientConfig{URL: "redis://r:6379/0", ClusterAddrs: []string{"r:7000"}}, "a URL and cluster addresses given together"},
		{"cluster and sentinels", ClientConfig{ClusterAddrs: []string{"r:7000"}, SentinelAddrs: []string{"s:26379"}, SentinelMaster: "m"}, "choose one"},
		{"sentinels without a master name", ClientConfig{SentinelAddrs: []string{"s:26379"}}, "without the master's name"},
		{"master name without sentinels", ClientConfig{URL: "redis://r:6379/0", SentinelMaster: "m"}, "without sentinel addresses"},
		{"sentinel password without sentinels", ClientConfig{ClusterAddrs: []string{"r:7000"}, SentinelPassword: "p"}, "without sentinel addresses"},
		{"sentinel username without sentinels", ClientConfig{URL: "redis://r:6379/0", SentinelUsername: "u"}, "without sentinel addresses"},
		{"bad URL", ClientConfig{URL: "http://r"}, "redis"},
		{"URL and password", ClientConfig{URL: "redis://r:6379/0", Password: "p"}, "in the URL"},
		{"URL and TLS", ClientConfig{URL: "redis://r:6379/0", TLS: true}, "in the URL"},
		{"CA file without TLS", ClientConfig{URL: "redis://r:6379/0", TLSCAFile: notPEM}, "TLS is off"},
		{"CA file without TLS, cluster", ClientConfig{ClusterAddrs: []string{"r:7000"}, TLSCAFile: notPEM}, "TLS is off"},
		{"CA file without TLS, sentinels", ClientConfig{SentinelAddrs: []string{"s:26379"}, SentinelMaster: "m", TLSCAFile: notPEM}, "TLS is off"},
		{"missing CA file", ClientConfig{URL: "rediss://r:6379/0", TLSCAFile: filepath.Join(dir, "missing.pem")}, "no such file"},
		{"CA file not PEM", ClientConfig{ClusterAddrs: []string{"r:7000"}, TLS: true, TLSCAFile: notPEM}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := NewClient(tt.cfg)
			if err == nil {
				client.Close()
				t.Fatal("NewClient succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewClient: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestNewClientKinds checks which client each configuration gets: a
// ClusterClient for cluster addresses, even a single seed (a managed
// cluster's discovery endpoint), and a Client for a URL or sentinels.
func TestNewClientKinds(t *testing.T) {
	for _, cfg := range []ClientConfig{{ClusterAddrs: []string{"r:7000"}}, {ClusterAddrs: []string{"r:7000", "s:7000"}, TLS: true}} {
		client := newClient(t, cfg)
		if _, ok := client.(*redis.ClusterClient); !ok {
			t.Errorf("NewClient(%+v) = %T, want *redis.ClusterClient", cfg, client)
		}
	}
	if client := newClient(t, ClientConfig{URL: "rediss://r:6379/0"}); client.(*redis.Client).Options().TLSConfig == nil {
		t.Error("NewClient for a rediss URL has no TLS")
	}
	client := newClient(t, ClientConfig{SentinelAddrs: []string{"s:26379"}, SentinelMaster: "m", TLS: true})
	if c, ok := client.(*redis.Client); !ok || c.Options().TLSConfig == nil {
		t.Errorf("NewClient for sentinels with TLS = %T, want a *redis.Client with TLS", client)
	}
}
