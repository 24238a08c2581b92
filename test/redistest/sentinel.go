package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultSentinelAddrs is the Redis Sentinel that scripts/test-services
// starts by default (REDIS_SENTINEL_PORT 7011: the master on 7011, its
// replica on 7012, the Sentinel on 7013).
const DefaultSentinelAddrs = "127.0.0.1:7013"

// DefaultSentinelMaster is the name the shared Sentinel knows its master by.
const DefaultSentinelMaster = "gwook-test"

// SentinelAddrs returns the addresses of the shared Redis Sentinel:
// GWOOK_TEST_REDIS_SENTINEL_ADDRS when set (scripts/test-services prints
// it), else DefaultSentinelAddrs.
func SentinelAddrs() []string {
	return envAddrs("GWOOK_TEST_REDIS_SENTINEL_ADDRS", DefaultSentinelAddrs)
}

// SentinelMaster returns the name the shared Sentinel knows its master by:
// GWOOK_TEST_REDIS_SENTINEL_MASTER when set, else DefaultSentinelMaster.
func SentinelMaster() string {
	if name := os.Getenv("GWOOK_TEST_REDIS_SENTINEL_MASTER"); name != "" {
		return name
	}
	return DefaultSentinelMaster
}

// sentinelTimeout bounds how long the shared Sentinel may take to name a
// master that answers and to see a replica of it, as after a failover.
const sentinelTimeout = 30 * time.Second

// Sentinel returns a client of the first shared Sentinel, closed when the
// test ends, once WaitSentinelOK holds. It fails the test, saying how to
// start the Sentinel, when it does not answer or does not get there: tests
// that need it never skip.
func Sentinel(tb testing.TB) *redis.SentinelClient {
	tb.Helper()
	addrs := SentinelAddrs()
	client := redis.NewSentinelClient(&redis.Options{Addr: addrs[0], MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	tb.Cleanup(func() { client.Close() })
	if _, err := WaitSentinelOK(context.Background(), client, SentinelMaster()); err != nil {
		tb.Fatalf("redistest: the Redis Sentinel at %s (master %s) is not usable: %v; start it with `scripts/test-services start` or run `make test` (set GWOOK_TEST_REDIS_SENTINEL_ADDRS and GWOOK_TEST_REDIS_SENTINEL_MASTER for another one)",
			addrs[0], SentinelMaster(), err)
	}
	return client
}

// WaitSentinelOK waits until sentinel names a master for name that answers
// ROLE as a master, and sees a replica of it in good health, one a failover
// can promote; for at most 30 seconds. It returns the master's address.
func WaitSentinelOK(ctx context.Context, sentinel *redis.SentinelClient, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, sentinelTimeout)
	defer cancel()
	for {
		master, err := sentinelOK(ctx, sentinel, name)
		if err == nil {
			return master, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("after %v: %w", sentinelTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sentinelOK asks sentinel for the master of name, the master for its
// role, and sentinel for the master's replicas.
func sentinelOK(ctx context.Context, sentinel *redis.SentinelClient, name string) (string, error) {
	addr, err := sentinel.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s: %w", name, err)
	}
	if len(addr) != 2 {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s = %q, want a host and a port", name, addr)
	}
	master := net.JoinHostPort(addr[0], addr[1])
	if role, err := Role(ctx, master); err != nil || role != "master" {
		return "", fmt.Errorf("the master %s answers ROLE with %q, %v", master, role, err)
	}
	replicas, err := sentinel.Replicas(ctx, name).Result()
	if err != nil {
		return "", fmt.Errorf("SENTINEL REPLICAS %s: %w", name, err)
	}
	for _, r := range replicas {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			return master, nil
		}
	}
	return "", fmt.Errorf("the sentinel sees no replica of %s in good health: %v", master, replicas)
}

// Role returns the first element of ROLE on the server at addr: master or
// slave.
func Role(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", errors.New("empty ROLE reply")
	}
	s, _ := v[0].(string)
	return s, nil
}
