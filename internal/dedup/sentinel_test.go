package dedup

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/test/redistest"
)

// sentinelStore returns a Redis store on the master that the shared Redis
// Sentinel watches, through NewClient as Gwook builds it, and a client of
// the Sentinel for looking behind the store.
func sentinelStore(t *testing.T) (*Redis, *redis.SentinelClient) {
	t.Helper()
	sentinel := redistest.Sentinel(t)
	client := newClient(t, ClientConfig{SentinelAddrs: redistest.SentinelAddrs(), SentinelMaster: redistest.SentinelMaster()})
	return NewRedis(client), sentinel
}

func TestRedisSentinel(t *testing.T) {
	d, _ := sentinelStore(t)
	testDeduper(t, func(*testing.T) Deduper { return d })
}

// sentinelFailoverTimeout bounds each step of the failover: SENTINEL
// FAILOVER being accepted, the Sentinel naming the replica master, and
// claims succeeding through the client again.
const sentinelFailoverTimeout = 20 * time.Second

// TestRedisSentinelFailover fails the master over to its replica with
// SENTINEL FAILOVER and checks that the same client follows: claims and
// commits made before are still there, and new ones succeed on the new
// master. A client of the master's address alone would be left with a
// replica that refuses writes.
//
// The failover leaves the old master a replica of the new one, so that the
// next run finds a master with a replica, on the other server.
func TestRedisSentinelFailover(t *testing.T) {
	d, sentinel := sentinelStore(t)
	ctx := t.Context()
	name := redistest.SentinelMaster()
	oldMaster, err := redistest.WaitSentinelOK(ctx, sentinel, name)
	if err != nil {
		t.Fatal(err)
	}

	// Before: a delivered key and a key in flight.
	delivered, inFlight := testKey(t), testKey(t)
	mustCommit(t, d, mustClaim(t, d, delivered, "evt_a", false), longTTL)
	mustFind(t, d, delivered, "evt_b", Duplicate, "evt_a")
	mustClaim(t, d, inFlight, "evt_c", false)
	// Both are on the master the Sentinel names, and replication is
	// asynchronous: wait until the replica has them, so that the failover
	// cannot lose them.
	for key, want := range map[string]string{delivered: "delivered:evt_a", inFlight: "in_flight:evt_c"} {
		if got := getOn(t, oldMaster, key); got != want {
			t.Fatalf("GET %s on the master %s = %q, want %q", key, oldMaster, got, want)
		}
		waitReplicated(t, sentinel, name, key, want)
	}

	// SENTINEL FAILOVER is refused while the Sentinel sees no replica to
	// promote or another failover is in progress (a run just before).
	deadline := time.Now().Add(sentinelFailoverTimeout)
	for {
		err := sentinel.Failover(ctx, name).Err()
		if err == nil {
			break
		}
		refused := strings.HasPrefix(err.Error(), "NOGOODSLAVE") || strings.HasPrefix(err.Error(), "INPROG")
		if !refused || time.Now().After(deadline) {
			t.Fatalf("SENTINEL FAILOVER %s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	failoverAt := time.Now()
	var newMaster string
	for deadline := failoverAt.Add(sentinelFailoverTimeout); ; {
		addr, err := sentinel.GetMasterAddrByName(ctx, name).Result()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) != oldMaster {
			newMaster = net.JoinHostPort(addr[0], addr[1])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel still names %v (%v) as master of %s %v after SENTINEL FAILOVER", addr, err, name, sentinelFailoverTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	switchedAt := time.Now()

	// The client follows. Until it hears of the switch (the Sentinel's
	// +switch-master), it still sends commands to the old master, which
	// takes writes until the Sentinel makes it a replica, and loses them
	// then; while it changes, commands may fail. Claim fresh keys until one
	// is written on the new master.
	var after string
	var c Claim
	var failed, elsewhere int
	for deadline := switchedAt.Add(sentinelFailoverTimeout); ; {
		after = testKey(t)
		c, err = d.Claim(ctx, after, "evt_d", longTTL)
		if err == nil && getOn(t, newMaster, after) == "in_flight:evt_d" {
			break
		}
		if err != nil {
			failed++
		} else {
			elsewhere++
		}
		if time.Now().After(deadline) {
			t.Fatalf("no claim reached the new master %s within %v after the Sentinel named it: %d failed (the last: %v), %d were answered but not written there",
				newMaster, sentinelFailoverTimeout, failed, err, elsewhere)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("master %s → %s: the Sentinel named it %v after SENTINEL FAILOVER, a claim reached it %v after that (meanwhile %d claims failed, %d went elsewhere)",
		oldMaster, newMaster, switchedAt.Sub(failoverAt), time.Since(switchedAt), failed, elsewhere)
	if c.Status != Claimed {
		t.Fatalf("Claim(%s, evt_d) on a fresh key after the failover = %+v, want Claimed", after, c)
	}
	mustCommit(t, d, c, longTTL)
	mustFind(t, d, after, "evt_e", Duplicate, "evt_d")
	if got := getOn(t, newMaster, after); got != "delivered:evt_d" {
		t.Errorf("GET %s on the new master %s = %q, want delivered:evt_d", after, newMaster, got)
	}
	// What was written before the failover holds on the new master.
	mustFind(t, d, delivered, "evt_f", Duplicate, "evt_a")
	mustCommit(t, d, mustClaim(t, d, inFlight, "evt_c", true), longTTL)
	mustFind(t, d, inFlight, "evt_g", Duplicate, "evt_c")

	// Leave a master with a replica for the next run: the old master
	// becomes the new one's.
	if _, err := redistest.WaitSentinelOK(ctx, sentinel, name); err != nil {
		t.Fatalf("the Sentinel after the failover: %v", err)
	}
	waitRole(t, oldMaster, "slave")
}

// getOn reads key on the server at addr itself, not through the store's
// client.
func getOn(t *testing.T, addr, key string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	v, err := c.Get(t.Context(), key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("GET %s on %s: %v", key, addr, err)
	}
	return v
}

// waitReplicated polls the replicas in good health that the Sentinel knows
// for name until each holds want at key.
func waitReplicated(t *testing.T, sentinel *redis.SentinelClient, name, key, want string) {
	t.Helper()
	replicas, err := sentinel.Replicas(t.Context(), name).Result()
	if err != nil {
		t.Fatalf("SENTINEL REPLICAS %s: %v", name, err)
	}
	var addrs []string
	for _, r := range replicas {
		if r["flags"] == "slave" {
			addrs = append(addrs, net.JoinHostPort(r["ip"], r["port"]))
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("SENTINEL REPLICAS %s = %v, want a replica in good health", name, replicas)
	}
	deadline := time.Now().Add(pollTimeout)
	for _, addr := range addrs {
		for {
			got := getOn(t, addr, key)
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s on the replica %s = %q after %v, want %q", key, addr, got, pollTimeout, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestRedisSentinelACL reaches the master through a Sentinel that lets the
// client in as an ACL user of its own, with the same user on the master:
// claims and commits work with the right password, and a wrong sentinel
// password is refused. The shared Sentinel's default user needs no
// password, so the test also checks that the client came in as the user.
func TestRedisSentinelACL(t *testing.T) {
	sentinel := redistest.Sentinel(t)
	user, password, master := sentinelACLUser(t, sentinel)
	cfg := ClientConfig{
		SentinelAddrs: redistest.SentinelAddrs(), SentinelMaster: redistest.SentinelMaster(),
		SentinelUsername: user, SentinelPassword: password, Username: user, Password: password,
	}

	t.Run("right password", func(t *testing.T) {
		d := NewRedis(newClient(t, cfg))
		key := testKey(t)
		mustCommit(t, d, mustClaim(t, d, key, "evt_a", false), longTTL)
		mustFind(t, d, key, "evt_b", Duplicate, "evt_a")
		for _, addr := range []string{redistest.SentinelAddrs()[0], master} {
			if !connectedAs(t, addr, user) {
				t.Errorf("CLIENT LIST on %s shows no connection of user %s", addr, user)
			}
		}
	})

	t.Run("wrong sentinel password", func(t *testing.T) {
		wrong := cfg
		wrong.SentinelPassword = rand.Text()
		d := NewRedis(newClient(t, wrong))
		c, err := d.Claim(t.Context(), testKey(t), "evt_a", longTTL)
		t.Logf("Claim: %v", err)
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("Claim = %+v, %v; want the Sentinel's authentication failure, WRONGPASS", c, err)
		}
		for _, secret := range []string{wrong.SentinelPassword, password} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error %q shows a password", err)
			}
		}
	})
}

// sentinelACLUser adds an ACL user with a random name and password to the
// shared Sentinel and to both servers behind it (ACLs are not replicated,
// and a failover may swap the two), and deletes it when the test ends. It
// returns the user, its password and the master's address. The default
// users stay as they are: other tests use them.
func sentinelACLUser(t *testing.T, sentinel *redis.SentinelClient) (user, password, master string) {
	t.Helper()
	ctx := t.Context()
	name := redistest.SentinelMaster()
	master, err := redistest.WaitSentinelOK(ctx, sentinel, name)
	if err != nil {
		t.Fatal(err)
	}
	replicas, err := sentinel.Replicas(ctx, name).Result()
	if err != nil {
		t.Fatalf("SENTINEL REPLICAS %s: %v", name, err)
	}
	addrs := []string{redistest.SentinelAddrs()[0], master}
	for _, r := range replicas {
		addrs = append(addrs, net.JoinHostPort(r["ip"], r["port"]))
	}
	user, password = "gwook-test-"+rand.Text(), rand.Text()
	for _, addr := range addrs {
		// Keys for the store, channels for the client's subscription to
		// the Sentinel's +switch-master.
		if err := aclOn(ctx, addr, "SETUSER", user, "on", ">"+password, "+@all", "~*", "&*"); err != nil {
			t.Fatalf("ACL SETUSER %s on %s: %v", user, addr, err)
		}
		t.Cleanup(func() {
			if err := aclOn(context.Background(), addr, "DELUSER", user); err != nil {
				t.Errorf("ACL DELUSER %s on %s: %v", user, addr, err)
			}
		})
	}
	return user, password, master
}

// aclOn runs ACL with args on the server or Sentinel at addr.
func aclOn(ctx context.Context, addr string, args ...any) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	return c.Do(ctx, append([]any{"ACL"}, args...)...).Err()
}

// connectedAs reports whether CLIENT LIST on the server or Sentinel at
// addr shows a connection of user.
func connectedAs(t *testing.T, addr, user string) bool {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	list, err := c.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST on %s: %v", addr, err)
	}
	return strings.Contains(list, " user="+user+" ")
}
