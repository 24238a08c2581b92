package dedup

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/test/redistest"
)

// clusterStore returns a Redis store on the shared Redis Cluster, through
// NewClient as Gwook builds it, and a plain client of the cluster for
// looking behind the store.
func clusterStore(t *testing.T, addrs []string) (*Redis, *redis.ClusterClient) {
	t.Helper()
	admin := redistest.Cluster(t)
	return NewRedis(newClient(t, ClientConfig{ClusterAddrs: addrs})), admin
}

func TestRedisCluster(t *testing.T) {
	d, _ := clusterStore(t, redistest.ClusterAddrs())
	testDeduper(t, func(*testing.T) Deduper { return d })
}

// TestRedisClusterOneSeed reaches the whole cluster from one address, as
// through a managed cluster's discovery endpoint.
func TestRedisClusterOneSeed(t *testing.T) {
	d, _ := clusterStore(t, redistest.ClusterAddrs()[:1])
	testDeduper(t, func(*testing.T) Deduper { return d })
}

// TestRedisClusterKeysSpread claims keys of every master: each script
// touches its one key only, so any key works wherever its slot lives, and
// the record and its TTL are on the key's master.
func TestRedisClusterKeysSpread(t *testing.T) {
	d, admin := clusterStore(t, redistest.ClusterAddrs())
	ctx := t.Context()
	const lease = 30 * time.Second
	masters := map[string]int{}
	for i := range 64 {
		key, id := testKey(t), fmt.Sprintf("evt_%d", i)
		c := claim(t, d, key, id, lease)
		if c.Status != Claimed {
			t.Fatalf("Claim(%q) = %+v, want Claimed", key, c)
		}
		if i%2 == 0 {
			mustCommit(t, d, c, longTTL)
			mustFind(t, d, key, "evt_other", Duplicate, id)
		} else {
			mustFind(t, d, key, "evt_other", InFlight, id)
		}
		master, err := admin.MasterForKey(ctx, key)
		if err != nil {
			t.Fatalf("MasterForKey(%q): %v", key, err)
		}
		masters[master.Options().Addr]++
		// Read on the key's master itself, not through the cluster client.
		want, maxTTL := "in_flight:"+id, lease
		if i%2 == 0 {
			want, maxTTL = "delivered:"+id, longTTL
		}
		if got, err := master.Get(ctx, key).Result(); err != nil || got != want {
			t.Errorf("GET %s on its master %s = %q, %v; want %q", key, master.Options().Addr, got, err, want)
		}
		if got, err := master.PTTL(ctx, key).Result(); err != nil || got <= 0 || got > maxTTL {
			t.Errorf("PTTL %s on its master = %v, %v; want within (0, %v]", key, got, err, maxTTL)
		}
	}
	t.Logf("keys per master: %v", masters)
	if len(masters) < 3 {
		t.Errorf("64 keys landed on %d masters (%v), want all 3", len(masters), masters)
	}
}

// clusterNode is a line of CLUSTER NODES.
type clusterNode struct {
	id, addr, master string
	isMaster, ok     bool
}

// clusterNodes reads CLUSTER NODES from the node at addr.
func clusterNodes(ctx context.Context, addr string) ([]clusterNode, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	out, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var nodes []clusterNode
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		flags := f[2]
		addr, _, _ := strings.Cut(f[1], "@")
		nodes = append(nodes, clusterNode{
			id: f[0], addr: addr, master: f[3],
			isMaster: strings.Contains(flags, "master"),
			ok:       !strings.Contains(flags, "fail") && f[7] == "connected",
		})
	}
	return nodes, nil
}

// replicaOf returns the address of a connected replica of the master at
// masterAddr, as the node at masterAddr sees the cluster.
func replicaOf(ctx context.Context, masterAddr string) (string, error) {
	nodes, err := clusterNodes(ctx, masterAddr)
	if err != nil {
		return "", err
	}
	var id string
	for _, n := range nodes {
		if n.addr == masterAddr && n.isMaster {
			id = n.id
		}
	}
	for _, n := range nodes {
		if id != "" && n.master == id && n.ok {
			return n.addr, nil
		}
	}
	return "", fmt.Errorf("no connected replica of master %s (%s) in CLUSTER NODES", masterAddr, id)
}

// clusterWorkers is how many goroutines claim during the failover.
const clusterWorkers = 8

// failoverTimeout bounds the failover: from CLUSTER FAILOVER to the replica
// serving as master and claims succeeding again.
const failoverTimeout = 20 * time.Second

// TestRedisClusterFailover fails the master of a run of keys over to its
// replica in the middle of a run of claims and commits, and checks what a
// user relies on: a claim or commit that was acknowledged is neither lost
// nor granted twice, a command that could not be answered is an error (which
// the pipeline treats as Redis down, by DEDUP_FAILURE_MODE), and claims
// succeed again soon after the switch.
//
// The failover is a manual one, CLUSTER FAILOVER sent to the replica
// without FORCE or TAKEOVER: the master stops taking writes, the replica
// catches up with everything the master acknowledged, and only then takes
// over. That is the switch an operator or a managed service's maintenance
// makes, it loses no acknowledged write, and the cluster keeps three masters
// with a replica each, so other tests and the next run find it whole. (A
// master that crashes can lose the writes it acknowledged just before,
// since replication is asynchronous; see the README.)
func TestRedisClusterFailover(t *testing.T) {
	addrs := redistest.ClusterAddrs()
	d, admin := clusterStore(t, addrs)
	ctx := t.Context()

	// Every key of the run has the hash tag of probe, so that all live in
	// the slot of the master that fails over.
	probe := fmt.Sprintf("gwook:dedup:test:failover:%d", time.Now().UnixNano())
	master, err := admin.MasterForKey(ctx, "{"+probe+"}")
	if err != nil {
		t.Fatalf("MasterForKey: %v", err)
	}
	oldMaster := master.Options().Addr
	replica, err := replicaOf(ctx, oldMaster)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failing over master %s to its replica %s", oldMaster, replica)

	type result struct {
		key        string
		start, end time.Time
		a, b       Claim
		aErr, bErr error
		committed  bool
		commitErr  error
	}
	var (
		mu      sync.Mutex
		results []result
		next    atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	// Workers claim fresh keys without pause, so that claims are in flight
	// when the master stops taking writes and when the replica takes over.
	// Every other claim is committed before the second event's claim.
	for range clusterWorkers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1)
				res := result{key: fmt.Sprintf("{%s}:%d", probe, i), start: time.Now()}
				res.a, res.aErr = d.Claim(ctx, res.key, fmt.Sprintf("evt_a%d", i), longTTL)
				if res.aErr == nil && res.a.Status == Claimed && i%2 == 0 {
					res.commitErr = commit(d, res.a, longTTL)
					res.committed = res.commitErr == nil
				}
				res.b, res.bErr = d.Claim(ctx, res.key, fmt.Sprintf("evt_b%d", i), longTTL)
				res.end = time.Now()
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		})
	}
	stopWorkers := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkers()
	// count returns how many results started after since and had no error.
	count := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if !r.start.Before(since) && r.aErr == nil && r.bErr == nil && r.commitErr == nil {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(failoverTimeout)
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, failoverTimeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	begin := time.Now()
	waitFor("100 claims before the failover", func() bool { return count(begin) >= 100 })
	r := redis.NewClient(&redis.Options{Addr: replica, MaxRetries: -1})
	err = r.Do(ctx, "CLUSTER", "FAILOVER").Err()
	r.Close()
	if err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", replica, err)
	}
	failoverAt := time.Now()
	waitFor("the replica becoming master", func() bool {
		r, err := redistest.Role(ctx, replica)
		return err == nil && r == "master"
	})
	switchedAt := time.Now()
	waitFor("100 claims after the switch", func() bool { return count(switchedAt) >= 100 })
	stopWorkers()

	var errs, during int
	var firstErr, lastErr, recoveredAt time.Time
	for _, res := range results {
		if res.start.Before(switchedAt) && res.end.After(failoverAt) {
			during++
		}
		failed := false
		for _, err := range []error{res.aErr, res.bErr, res.commitErr} {
			if err != nil {
				failed = true
				errs++
				if firstErr.IsZero() || res.start.Before(firstErr) {
					firstErr = res.start
				}
				if res.end.After(lastErr) {
					lastErr = res.end
				}
			}
		}
		if !failed && res.start.After(switchedAt) && (recoveredAt.IsZero() || res.end.Before(recoveredAt)) {
			recoveredAt = res.end
		}
		if res.aErr != nil && res.a != (Claim{}) {
			t.Errorf("Claim(%s) returned %+v with the error %v, want no answer", res.key, res.a, res.aErr)
		}
	}
	t.Logf("%d keys, %d of them in flight during the switch; replica master %v after CLUSTER FAILOVER, a claim succeeded %v after it; %d errors",
		len(results), during, switchedAt.Sub(failoverAt), recoveredAt.Sub(failoverAt), errs)
	if errs > 0 {
		t.Logf("errors from %v to %v after CLUSTER FAILOVER", firstErr.Sub(failoverAt), lastErr.Sub(failoverAt))
	}
	if during == 0 {
		t.Error("no claim was in flight between CLUSTER FAILOVER and the switch")
	}

	// Every acknowledged answer holds after the switch.
	for _, res := range results {
		if res.aErr == nil && res.a.Status != Claimed {
			t.Errorf("Claim(%s, evt_a) on a fresh key = %+v, want Claimed", res.key, res.a)
		}
		aHeld := res.aErr == nil && res.a.Status == Claimed
		if aHeld && res.bErr == nil && res.b.Status == Claimed {
			t.Errorf("%s was granted twice: to evt_a %+v and to evt_b %+v", res.key, res.a, res.b)
		}
		if !aHeld {
			continue
		}
		want := InFlight
		if res.committed {
			want = Duplicate
		}
		c, err := d.Claim(ctx, res.key, "evt_c", longTTL)
		switch {
		case err != nil:
			t.Errorf("Claim(%s, evt_c) after the switch: %v", res.key, err)
		case c.Status != want || c.Holder != res.a.EventID:
			t.Errorf("Claim(%s, evt_c) after the switch = %+v, want %s held by %s: an acknowledged write was lost", res.key, c, want, res.a.EventID)
		}
	}

	// Leave the cluster whole: the old master is now the new one's replica
	// and every node sees every slot served.
	if err := redistest.WaitClusterOK(ctx, addrs); err != nil {
		t.Fatalf("the cluster after the failover: %v", err)
	}
	waitRole(t, oldMaster, "slave")
}

// waitRole polls ROLE on the node at addr until it is want.
func waitRole(t *testing.T, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(failoverTimeout)
	for {
		got, err := redistest.Role(t.Context(), addr)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ROLE on %s = %q, %v after %v; want %s", addr, got, err, failoverTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
