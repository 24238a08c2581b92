package redistest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultClusterAddrs are the nodes of the Redis Cluster that
// scripts/test-services starts by default (REDIS_CLUSTER_PORT 7001).
const DefaultClusterAddrs = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003,127.0.0.1:7004,127.0.0.1:7005,127.0.0.1:7006"

// ClusterAddrs returns the nodes of the shared Redis Cluster (three masters,
// three replicas): GWOOK_TEST_REDIS_CLUSTER_ADDRS when set
// (scripts/test-services prints it), else DefaultClusterAddrs.
func ClusterAddrs() []string {
	return envAddrs("GWOOK_TEST_REDIS_CLUSTER_ADDRS", DefaultClusterAddrs)
}

// envAddrs returns the comma-separated addresses in the environment
// variable name, or those of def when it is not set.
func envAddrs(name, def string) []string {
	addrs := os.Getenv(name)
	if addrs == "" {
		addrs = def
	}
	return strings.Split(addrs, ",")
}

// clusterTimeout bounds how long the shared cluster may take to answer,
// and to report every slot served.
const clusterTimeout = 30 * time.Second

// Cluster returns a client of the shared Redis Cluster, closed when the
// test ends, once every node reports cluster_state:ok. It fails the test,
// saying how to start the cluster, when the cluster does not answer or is
// not ok: tests that need it never skip.
func Cluster(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	addrs := ClusterAddrs()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { client.Close() })
	if err := WaitClusterOK(context.Background(), addrs); err != nil {
		tb.Fatalf("redistest: the Redis Cluster at %s is not usable: %v; start it with `scripts/test-services start` or run `make test` (set GWOOK_TEST_REDIS_CLUSTER_ADDRS for another cluster)",
			strings.Join(addrs, ","), err)
	}
	return client
}

// WaitClusterOK waits until every node in addrs answers and reports
// cluster_state:ok, for at most 30 seconds.
func WaitClusterOK(ctx context.Context, addrs []string) error {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	var last error
	for {
		last = clusterOK(ctx, addrs)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", clusterTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clusterOK asks each node in addrs for CLUSTER INFO.
func clusterOK(ctx context.Context, addrs []string) error {
	for _, addr := range addrs {
		node := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
		info, err := node.ClusterInfo(ctx).Result()
		node.Close()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state is not ok", addr)
		}
	}
	return nil
}
