package dedup

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// releaseScript deletes KEYS[1] only while its value is the token ARGV[1],
// so that a caller never removes a claim it does not hold. Redis runs a
// script atomically: no other command sees the key between GET and DEL.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// Redis is a Deduper whose claims live in Redis, so that every replica
// connected to the same server sees them. A claim is the key holding its
// token, set with SET NX PX; the key's TTL is the claim's.
type Redis struct {
	client redis.UniversalClient
}

var _ Deduper = (*Redis)(nil)

// NewRedis returns a Redis deduper on client. The client stays the caller's
// to configure and close.
func NewRedis(client redis.UniversalClient) *Redis {
	return &Redis{client: client}
}

// Claim takes key for ttl with SET key token NX PX ttl.
func (r *Redis) Claim(ctx context.Context, key string, ttl time.Duration) (Claim, error) {
	ttl, err := claimTTL(ttl)
	if err != nil {
		return Claim{}, err
	}
	c := Claim{Key: key, Token: newToken()}
	ok, err := r.client.SetNX(ctx, key, c.Token, ttl).Result()
	if err != nil {
		return Claim{}, fmt.Errorf("dedup: redis: claim %s: %w", key, err)
	}
	if !ok {
		return Claim{}, ErrDuplicate
	}
	return c, nil
}

// Release deletes c.Key if it still holds c.Token, in one Lua script.
func (r *Redis) Release(ctx context.Context, c Claim) error {
	if c.Token == "" {
		return nil
	}
	if err := releaseScript.Run(ctx, r.client, []string{c.Key}, c.Token).Err(); err != nil {
		return fmt.Errorf("dedup: redis: release %s: %w", c.Key, err)
	}
	return nil
}

// Ping sends PING to Redis.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("dedup: redis: ping: %w", err)
	}
	return nil
}
