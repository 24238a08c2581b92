package dedup

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientConfig says how to reach the Redis behind the Redis store: one
// server (URL) or a Redis Cluster (ClusterAddrs), never both.
type ClientConfig struct {
	// URL is a redis:// or rediss:// (TLS) URL of one server, credentials
	// and database included, as go-redis's ParseURL reads it.
	URL string
	// ClusterAddrs are host:port seeds of a Redis Cluster: the client asks
	// them for the cluster's layout and then talks to every master. One is
	// enough; more let the client start while a seed is down.
	ClusterAddrs []string
	// Username and Password authenticate to a cluster's nodes (ACL user,
	// or the password alone). A URL carries its own.
	Username, Password string
	// TLS turns TLS on for a cluster's nodes. A URL turns it on with the
	// rediss scheme.
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
// ClusterClient for ClusterAddrs. The caller closes it.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	var client redis.UniversalClient
	switch {
	case cfg.URL != "" && len(cfg.ClusterAddrs) > 0:
		return nil, errors.New("dedup: redis: a URL and cluster addresses both given; choose one")
	case cfg.URL != "":
		if cfg.TLS || cfg.Username != "" || cfg.Password != "" {
			return nil, errors.New("dedup: redis: with a URL, TLS (rediss://) and credentials go in the URL")
		}
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
	case len(cfg.ClusterAddrs) > 0:
		opts := &redis.UniversalOptions{
			Addrs: cfg.ClusterAddrs,
			// A ClusterClient even for a single seed (a managed cluster's
			// discovery endpoint), which NewUniversalClient would otherwise
			// take for a single server.
			IsClusterMode:         true,
			Username:              cfg.Username,
			Password:              cfg.Password,
			DialTimeout:           cfg.Timeout,
			ReadTimeout:           cfg.Timeout,
			WriteTimeout:          cfg.Timeout,
			PoolTimeout:           cfg.Timeout,
			MaxRetries:            cfg.MaxRetries,
			ContextTimeoutEnabled: true,
		}
		if cfg.TLS {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err := trustCA(opts.TLSConfig, cfg.TLSCAFile); err != nil {
			return nil, err
		}
		client = redis.NewUniversalClient(opts)
	default:
		return nil, errors.New("dedup: redis: neither a URL nor cluster addresses given")
	}
	if cfg.CommandBudget > 0 {
		client.AddHook(commandDeadline(cfg.CommandBudget))
	}
	return client, nil
}

// trustCA makes tc trust only the certificate authorities in the PEM file
// caFile. An empty caFile leaves tc alone (the system's authorities); a
// caFile without TLS (tc nil) is an error, not silently ignored.
func trustCA(tc *tls.Config, caFile string) error {
	if caFile == "" {
		return nil
	}
	if tc == nil {
		return errors.New("dedup: redis: a CA file is given but TLS is off (use rediss://, or TLS with cluster addresses)")
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
