package dedup

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/test/redistest"
)

// newRedisClient returns a client for url that is closed when the test ends,
// and fails the test unless the server answers PING within 2 seconds.
func newRedisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parsing Redis URL %q: %v", url, err)
	}
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer PING: %v; start it with `scripts/test-services start` or run `make test` (set REDIS_URL for another server)", url, err)
	}
	return client
}

func TestRedisShared(t *testing.T) {
	client := newRedisClient(t, redistest.SharedURL())
	testDeduper(t, func(*testing.T) Deduper { return NewRedis(client) })
}

func TestRedisPrivate(t *testing.T) {
	client := newRedisClient(t, redistest.Start(t).URL())
	testDeduper(t, func(*testing.T) Deduper { return NewRedis(client) })
}

func TestRedisStoresTokenWithTTL(t *testing.T) {
	client := newRedisClient(t, redistest.SharedURL())
	d := NewRedis(client)
	ttl := 1500 * time.Millisecond
	c := mustClaim(t, d, testKey(t), ttl)

	if got, err := client.Get(t.Context(), c.Key).Result(); err != nil || got != c.Token {
		t.Errorf("GET %s = %q, %v; want the token %q", c.Key, got, err, c.Token)
	}
	if got, err := client.PTTL(t.Context(), c.Key).Result(); err != nil || got <= 0 || got > ttl {
		t.Errorf("PTTL %s = %v, %v; want within (0, %v]", c.Key, got, err, ttl)
	}
	mustRelease(t, d, c)
	if n, err := client.Exists(t.Context(), c.Key).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS %s after Release = %d, %v; want 0", c.Key, n, err)
	}
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{
		Addr:          srv.Addr,
		DialTimeout:   200 * time.Millisecond,
		ReadTimeout:   200 * time.Millisecond,
		WriteTimeout:  200 * time.Millisecond,
		PoolTimeout:   200 * time.Millisecond,
		MaxRetries:    -1, // go-redis reads 0 as its default of 3
		DialerRetries: 1,
	})
	t.Cleanup(func() { client.Close() })
	d := NewRedis(client)
	held := mustClaim(t, d, testKey(t), longTTL)

	srv.Stop(t)
	if c, err := d.Claim(t.Context(), testKey(t), longTTL); err == nil || errors.Is(err, ErrDuplicate) {
		t.Errorf("Claim while Redis is down = %+v, %v; want an error other than ErrDuplicate", c, err)
	}
	if err := d.Release(t.Context(), held); err == nil {
		t.Error("Release while Redis is down = nil, want an error")
	}
	if err := d.Ping(t.Context()); err == nil {
		t.Error("Ping while Redis is down = nil, want an error")
	}

	srv.Restart(t)
	deadline := time.Now().Add(pollTimeout)
	for {
		err := d.Ping(t.Context())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping still fails %v after Redis restarted: %v", pollTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	key := testKey(t)
	mustClaim(t, d, key, longTTL)
	mustBeDuplicate(t, d, key)
}
