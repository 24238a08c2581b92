package dedup

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientConfig says how to reach the Redis behind the Redis store: one
// server (URL), a Redis Cluster (ClusterAddrs) or a master that Redis
// Sentinel watches (SentinelAddrs), exactly one of them.
type ClientConfig struct {
	// URL is a redis:// or rediss:// (TLS) URL of one server, credentials
	// and database included, as go-redis's ParseURL reads it.
	URL string
	// ClusterAddrs are host:port seeds of a Redis Cluster: the client asks
	// them for the cluster's layout and then talks to every master. One is
	// enough; more let the client start while a seed is down.
	ClusterAddrs []string
	// SentinelAddrs are host:port addresses of Redis Sentinels: the client
	// asks them where the master named SentinelMaster is, and follows it
	// to the replica they promote when it fails over. One is enough; more
	// let the client find the master while a sentinel is down.
	SentinelAddrs []string
	// SentinelMaster is the name the sentinels know the master by (their
	// sentinel monitor NAME); with SentinelAddrs only.
	SentinelMaster string
	// SentinelUsername is the ACL user of the sentinels themselves, when
	// they require one of their own; with SentinelAddrs only.
	SentinelUsername string
	// SentinelPassword authenticates to the sentinels themselves, when
	// they require a password of their own; with SentinelAddrs only.
	SentinelPassword string
	// Username and Password authenticate to a cluster's nodes, or to the
	// master and replicas behind sentinels (ACL user, or the password
	// alone). A URL carries its own.
	Username, Password string
	// TLS turns TLS on for a cluster's nodes, or for the sentinels and the
	// servers behind them. A URL turns it on with the rediss scheme.
	TLS bool
	// TLSCAFile is a PEM file of the certificate authorities that sign the
	// server's certificate, trusted instead of the system's; with TLS only.
	TLSCAFile string

	// Timeout bounds each dial, write and read.
	Timeout time.Duration
	// MaxRetries is how many times a command that failed on the network is
	// tried again.
	MaxRetries int
	// CommandBudget, when positive, is the deadline put on every command,
	// retries, redirects and pool waits included.
	CommandBudget time.Duration
}

// NewClient returns a go-redis client for cfg: a Client for a URL, a
// ClusterClient for ClusterAddrs, and for SentinelAddrs a failover Client,
// which asks the sentinels for the master. The caller closes it.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	if err := checkClientConfig(cfg); err != nil {
		return nil, err
	}
	var client redis.UniversalClient
	if cfg.URL != "" {
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("dedup: redis: %w", err)
		}
		if err := trustCA(opts.TLSConfig, cfg.TLSCAFile); err != nil {
			return nil, err
		}
		opts.DialTimeout = cfg.Timeout
		opts.ReadTimeout = cfg.Timeout
		opts.WriteTimeout = cfg.Timeout
		opts.PoolTimeout = cfg.Timeout
		opts.MaxRetries = cfg.MaxRetries
		// Every command ends by its deadline, whatever go-redis does inside
		// it (pool waits, dial retries, the connection handshake, the retry).
		opts.ContextTimeoutEnabled = true
		client = redis.NewClient(opts)
	} else {
		opts := &redis.UniversalOptions{
			Username:              cfg.Username,
			Password:              cfg.Password,
			DialTimeout:           cfg.Timeout,
			ReadTimeout:           cfg.Timeout,
			WriteTimeout:          cfg.Timeout,
			PoolTimeout:           cfg.Timeout,
			MaxRetries:            cfg.MaxRetries,
			ContextTimeoutEnabled: true,
		}
		if len(cfg.ClusterAddrs) > 0 {
			opts.Addrs = cfg.ClusterAddrs
			// A ClusterClient even for a single seed (a managed cluster's
			// discovery endpoint), which NewUniversalClient would otherwise
			// take for a single server.
			opts.IsClusterMode = true
		} else {
			// With a master name, NewUniversalClient returns a failover
			// Client: every command goes to the master the sentinels name.
			opts.Addrs = cfg.SentinelAddrs
			opts.MasterName = cfg.SentinelMaster
			opts.SentinelUsername = cfg.SentinelUsername
			opts.SentinelPassword = cfg.SentinelPassword
		}
		if cfg.TLS {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err := trustCA(opts.TLSConfig, cfg.TLSCAFile); err != nil {
			return nil, err
		}
		client = redis.NewUniversalClient(opts)
	}
	if cfg.CommandBudget > 0 {
		client.AddHook(commandDeadline(cfg.CommandBudget))
	}
	return client, nil
}

// checkClientConfig reports a cfg that does not name exactly one way to
// reach Redis, or gives settings that way does not use.
func checkClientConfig(cfg ClientConfig) error {
	var ways []string
	if cfg.URL != "" {
		ways = append(ways, "a URL")
	}
	if len(cfg.ClusterAddrs) > 0 {
		ways = append(ways, "cluster addresses")
	}
	if len(cfg.SentinelAddrs) > 0 {
		ways = append(ways, "sentinel addresses")
	}
	switch {
	case len(ways) == 0:
		return errors.New("dedup: redis: none of a URL, cluster addresses or sentinel addresses given")
	case len(ways) > 1:
		return fmt.Errorf("dedup: redis: %s given together; choose one", strings.Join(ways, " and "))
	case cfg.URL != "" && (cfg.TLS || cfg.Username != "" || cfg.Password != ""):
		return errors.New("dedup: redis: with a URL, TLS (rediss://) and credentials go in the URL")
	case len(cfg.SentinelAddrs) > 0 && cfg.SentinelMaster == "":
		return errors.New("dedup: redis: sentinel addresses given without the master's name")
	case len(cfg.SentinelAddrs) == 0 && (cfg.SentinelMaster != "" || cfg.SentinelUsername != "" || cfg.SentinelPassword != ""):
		return errors.New("dedup: redis: a sentinel master name, username or password given without sentinel addresses")
	}
	return nil
}

// trustCA makes tc trust only the certificate authorities in the PEM file
// caFile. An empty caFile leaves tc alone (the system's authorities); a
// caFile without TLS (tc nil) is an error, not silently ignored.
func trustCA(tc *tls.Config, caFile string) error {
	if caFile == "" {
		return nil
	}
	if tc == nil {
		return errors.New("dedup: redis: a CA file is given but TLS is off (use rediss://, or TLS with cluster or sentinel addresses)")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("dedup: redis: reading the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("dedup: redis: the CA file %s holds no PEM certificate", caFile)
	}
	tc.RootCAs = pool
	return nil
}

// commandDeadline is a go-redis hook that bounds every command, and every
// pipeline, with its retries and redirects, by a deadline.
type commandDeadline time.Duration

func (d commandDeadline) DialHook(next redis.DialHook) redis.DialHook { return next }

func (d commandDeadline) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(d))
		defer cancel()
		return next(ctx, cmd)
	}
}

func (d commandDeadline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(d))
		defer cancel()
		return next(ctx, cmds)
	}
}
