package dedup

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/internal/batch"
)

// Redis runs each script atomically: no other command sees the key between
// a script's read and its write. A missing key reads as false.

// ClaimLua is the Lua source of Claim (exported for test/bench/rediscmp,
// which runs it on other clients). KEYS[1] is the key, ARGV[1] the event
// id, ARGV[2] the lease in milliseconds. It returns {answer, holder, pttl}:
// answer 1 is claimed, 2 claimed by the same event (own), 3 duplicate, 4 in
// flight; holder and pttl are the other event's id and remaining lease.
const ClaimLua = `
local v = redis.call("GET", KEYS[1])
if not v then
	redis.call("SET", KEYS[1], "in_flight:" .. ARGV[1], "PX", ARGV[2])
	return {1, "", 0}
end
if v == "in_flight:" .. ARGV[1] then
	redis.call("PEXPIRE", KEYS[1], ARGV[2])
	return {2, "", 0}
end
if v == "delivered:" .. ARGV[1] then
	return {2, "", 0}
end
local sep = string.find(v, ":", 1, true)
if sep then
	local state, holder = string.sub(v, 1, sep - 1), string.sub(v, sep + 1)
	if state == "delivered" then
		return {3, holder, 0}
	end
	if state == "in_flight" then
		return {4, holder, redis.call("PTTL", KEYS[1])}
	end
end
return redis.error_reply("unexpected dedup record")
`

// CommitLua is the Lua source of Commit. KEYS[1] is the key, ARGV[1] the
// event id, ARGV[2] the window in milliseconds. It returns 1 when it wrote,
// 0 when another event holds the key.
const CommitLua = `
local v = redis.call("GET", KEYS[1])
if not v or v == "in_flight:" .. ARGV[1] or v == "delivered:" .. ARGV[1] then
	redis.call("SET", KEYS[1], "delivered:" .. ARGV[1], "PX", ARGV[2])
	return 1
end
return 0
`

var (
	claimScript  = redis.NewScript(ClaimLua)
	commitScript = redis.NewScript(CommitLua)
)

// releaseScript is Release. KEYS[1] is the key, ARGV[1] the event id. It
// deletes the key only while it is in flight for that event.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == "in_flight:" .. ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// Redis is a Deduper whose records live in Redis, so that every replica
// connected to the same server sees them. A record is a string key holding
// "in_flight:<event id>" or "delivered:<event id>" (the states hold no
// colon, so the first colon ends the state whatever the event id holds);
// the key's TTL is the lease or the window. Each step is one Lua script, so a step re-sent by the
// client after a timeout (go-redis retries) finds the record its first
// sending wrote and gives the same answer for the same event.
//
// Steps that callers ask for at the same time share a round trip: a few
// writers each send, as one pipeline, every step waiting when they become
// free (internal/batch), so under load one write and one read carry many
// claims and commits instead of one each. A lone step is sent at once.
type Redis struct {
	client redis.UniversalClient
	steps  *batch.Batcher[scriptCall, scriptResult]
}

var _ Deduper = (*Redis)(nil)

// The pipelines of a Redis store: pipelineWriters of them on the wire at
// once, each of at most maxPipeline steps. The client's command budget
// (ClientConfig.CommandBudget) ends a pipeline long before
// pipelineTimeout, which only bounds a client built without one.
const (
	pipelineWriters = 2
	maxPipeline     = 64
	pipelineTimeout = 30 * time.Second
)

// NewRedis returns a Redis deduper on client. The client stays the caller's
// to configure and close; Close stops the deduper's writers.
func NewRedis(client redis.UniversalClient) *Redis {
	r := &Redis{client: client}
	r.steps = batch.New(pipelineWriters, maxPipeline, maxPipeline, nil, pipelineTimeout, r.runScripts)
	return r
}

// Close stops the writers, after the pipelines on the wire, as long as ctx
// allows. A step asked for after Close fails.
func (r *Redis) Close(ctx context.Context) {
	r.steps.Close(ctx)
}

// scriptCall is one run of a script on one key.
type scriptCall struct {
	script *redis.Script
	key    string
	args   []any
}

// scriptResult is a script's reply, or its own error.
type scriptResult struct {
	reply any
	err   error
}

// run runs script on key with args in the next pipeline, and returns its
// reply.
func (r *Redis) run(ctx context.Context, script *redis.Script, key string, args ...any) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	res, err := r.steps.Do(ctx, scriptCall{script: script, key: key, args: args})
	if err == nil {
		err = res.err
	}
	if err != nil {
		cmd.SetErr(err)
	} else {
		cmd.SetVal(res.reply)
	}
	return cmd
}

// runScripts sends calls as one pipeline of EVALSHA and returns each
// reply or error; a script Redis does not have yet (NOSCRIPT, after a
// restart or a failover) is sent again alone with its body. It never
// fails as a whole, so the batcher does not send the calls again one by
// one.
func (r *Redis) runScripts(ctx context.Context, calls []scriptCall) ([]scriptResult, error) {
	out := make([]scriptResult, len(calls))
	if len(calls) == 1 {
		c := calls[0]
		out[0].reply, out[0].err = c.script.Run(ctx, r.client, []string{c.key}, c.args...).Result()
		return out, nil
	}
	cmds := make([]*redis.Cmd, len(calls))
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, []string{c.key}, c.args...)
		}
		return nil
	})
	for i, cmd := range cmds {
		out[i].reply, out[i].err = cmd.Result()
		if redis.HasErrorPrefix(out[i].err, "NOSCRIPT") {
			c := calls[i]
			out[i].reply, out[i].err = c.script.Run(ctx, r.client, []string{c.key}, c.args...).Result()
		}
	}
	return out, nil
}

// Claim asks for key on behalf of eventID (see Deduper.Claim).
func (r *Redis) Claim(ctx context.Context, key, eventID string, lease time.Duration) (Claim, error) {
	lease, err := checkClaim(eventID, lease)
	if err != nil {
		return Claim{}, err
	}
	vals, err := r.run(ctx, claimScript, key, eventID, lease.Milliseconds()).Slice()
	if err != nil {
		return Claim{}, fmt.Errorf("dedup: redis: claim %s: %w", key, err)
	}
	var (
		answer, pttl int64
		holder       string
		ok           = len(vals) == 3
	)
	if ok {
		answer, ok = vals[0].(int64)
	}
	if ok {
		holder, ok = vals[1].(string)
	}
	if ok {
		pttl, ok = vals[2].(int64)
	}
	c := Claim{Key: key, EventID: eventID}
	switch {
	case !ok:
		return Claim{}, fmt.Errorf("dedup: redis: claim %s: unexpected reply %v", key, vals)
	case answer == 1:
		c.Status = Claimed
	case answer == 2:
		c.Status, c.Own = Claimed, true
	case answer == 3:
		c.Status, c.Holder = Duplicate, holder
	case answer == 4:
		c.Status, c.Holder, c.Remaining = InFlight, holder, time.Duration(max(pttl, 0))*time.Millisecond
	default:
		return Claim{}, fmt.Errorf("dedup: redis: claim %s: unexpected answer %d", key, answer)
	}
	return c, nil
}

// Commit marks key delivered by c.EventID for ttl (see Deduper.Commit).
func (r *Redis) Commit(ctx context.Context, c Claim, ttl time.Duration) error {
	ttl, err := checkCommit(c, ttl)
	if err != nil {
		return err
	}
	wrote, err := r.run(ctx, commitScript, c.Key, c.EventID, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("dedup: redis: commit %s: %w", c.Key, err)
	}
	if wrote == 0 {
		return ErrNotHeld
	}
	return nil
}

// Release deletes c.Key while it is in flight for c.EventID.
func (r *Redis) Release(ctx context.Context, c Claim) error {
	if c.Status != Claimed {
		return nil
	}
	if err := r.run(ctx, releaseScript, c.Key, c.EventID).Err(); err != nil {
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
