package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/gwook/gwook/internal/dedup"
)

// RedisMaxRetries is the dedup store's go-redis MaxRetries: a command whose
// try fails on the network or times out is tried once more.
const RedisMaxRetries = 1

// redisPhasesPerTry are the steps of one try of a Redis command that
// REDIS_TIMEOUT bounds each: dialling (when the pool has no idle
// connection), writing the command and reading the reply.
const redisPhasesPerTry = 3

// RedisCommandBudget is the longest one command to the dedup store may
// take when Redis is the store (REDIS_URL, REDIS_CLUSTER_ADDRS or
// REDIS_SENTINEL_ADDRS): RedisMaxRetries+1 tries, each a dial, a write
// and a read bounded by REDIS_TIMEOUT (3s with the default 500ms). Gwook's
// Redis client puts this deadline on every command, so a slow Redis (a
// full pool, dial retries, a reply that never comes) cannot stretch it.
// A cluster's redirects (MOVED, ASK), asking the sentinels for the master
// before a dial, and retries during a failover stay within it too. It is 0
// without Redis: the in-process store does not wait.
func (c *Config) RedisCommandBudget() time.Duration {
	if !c.RedisEnabled() {
		return 0
	}
	return (RedisMaxRetries + 1) * redisPhasesPerTry * c.RedisTimeout
}

// SendBudget is the longest an event holds its dedup claim in flight: the
// claim command, every attempt at Svix (SVIX_RETRY_MAX_ELAPSED, which Svix's
// sender enforces as a deadline) or the enqueue of direct delivery
// (EnqueueTimeout), and the release or commit of the claim.
// A claim still in flight after it belongs to a holder that is gone, and
// DEDUP_TTL must be longer.
func (c *Config) SendBudget() time.Duration {
	return sum(c.sendBudgetTerms())
}

// RequestBudget is the worst case of one event from its arrival to its
// answer: the dedup claim, the bounded wait for another event holding
// the same key (DEDUP_WAIT), every attempt at Svix, the release of the
// claim after a failed send (the answer does not wait for a commit), and
// the dead-letter publish. The dedup terms count only
// when duplicate suppression is on, the publish only with a dead-letter
// topic. HTTP_SERVER_WRITE_TIMEOUT and HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT
// must be longer, and so must the push subscription's ack deadline.
func (c *Config) RequestBudget() time.Duration {
	return sum(c.requestBudgetTerms())
}

// ShutdownBudget is the longest a shutdown takes from SIGTERM: the drain
// delay, the graceful shutdown of requests in flight, with direct delivery
// the webhook attempts in progress, and the last write of the stats held
// in memory. A pod's terminationGracePeriodSeconds must
// be longer.
func (c *Config) ShutdownBudget() time.Duration {
	return sum(c.shutdownBudgetTerms())
}

// DeliveryStopTimeout is how long a shutdown waits for the webhook attempts
// in progress (direct delivery) before it cuts them off; an attempt cut off
// is made again by the next replica that runs.
const DeliveryStopTimeout = 5 * time.Second

func (c *Config) shutdownBudgetTerms() []budgetTerm {
	terms := []budgetTerm{
		{"HTTP_SERVER_DRAIN_DELAY", c.DrainDelay},
		{"HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT", c.GracefulShutdownTimeout},
	}
	if c.Direct() {
		terms = append(terms, budgetTerm{"the webhook attempts in progress", DeliveryStopTimeout})
	}
	return append(terms, budgetTerm{"the last stats write", StatsFlushTimeout})
}

// DescribeShutdownBudget is ShutdownBudget with its terms, for messages.
func (c *Config) DescribeShutdownBudget() string { return describe(c.shutdownBudgetTerms()) }

// budgetTerm is one term of a budget, named for an operator.
type budgetTerm struct {
	name string
	d    time.Duration
}

// EnqueueTimeout bounds handing one event to Gwook's own delivery: the
// transaction that stores its message and delivery jobs.
const EnqueueTimeout = 5 * time.Second

// backendTerm is the handing of one event to the delivery backend: every
// attempt at Svix, or the enqueue transaction of direct delivery.
func (c *Config) backendTerm() budgetTerm {
	if c.Direct() {
		return budgetTerm{"the enqueue (direct delivery)", EnqueueTimeout}
	}
	return budgetTerm{"SVIX_RETRY_MAX_ELAPSED", c.SvixRetryMaxElapsed}
}

func (c *Config) sendBudgetTerms() []budgetTerm {
	if !c.DedupEnabled() {
		return []budgetTerm{c.backendTerm()}
	}
	return []budgetTerm{
		c.claimTerm(),
		c.backendTerm(),
		{"the claim's release", dedup.SettleTimeout},
	}
}

func (c *Config) requestBudgetTerms() []budgetTerm {
	var terms []budgetTerm
	if c.DedupEnabled() {
		terms = append(terms, c.claimTerm(), budgetTerm{"DEDUP_WAIT", c.DedupWait})
	}
	terms = append(terms, c.backendTerm())
	if c.DedupEnabled() {
		terms = append(terms, budgetTerm{"the claim's release", dedup.SettleTimeout})
	}
	if c.DeadLetterEnabled() {
		terms = append(terms, budgetTerm{"DEAD_LETTER_PUBLISH_TIMEOUT", c.DeadLetterPublishTimeout})
	}
	return terms
}

func (c *Config) claimTerm() budgetTerm {
	if !c.RedisEnabled() {
		return budgetTerm{"the dedup claim (in-process)", 0}
	}
	return budgetTerm{fmt.Sprintf("the dedup claim (%d tries × dial, write and read × REDIS_TIMEOUT %s)",
		RedisMaxRetries+1, c.RedisTimeout), c.RedisCommandBudget()}
}

func sum(terms []budgetTerm) time.Duration {
	var total time.Duration
	for _, t := range terms {
		total += t.d
	}
	return total
}

// describe writes terms and their sum for an error message, such as
// "13s = SVIX_RETRY_MAX_ELAPSED 8s + DEAD_LETTER_PUBLISH_TIMEOUT 5s".
func describe(terms []budgetTerm) string {
	parts := make([]string, 0, len(terms))
	for _, t := range terms {
		if t.d > 0 {
			parts = append(parts, t.name+" "+t.d.String())
		}
	}
	return sum(terms).String() + " = " + strings.Join(parts, " + ")
}

// checkBudgets reports the timeouts that are shorter than the work they
// must cover.
func (c *Config) checkBudgets(p *problems) {
	request := describe(c.requestBudgetTerms())
	if c.RequestBudget() >= c.WriteTimeout {
		p.add("HTTP_SERVER_WRITE_TIMEOUT (%s) must be longer than the worst case of one request (%s), "+
			"or answers are cut off while Gwook still works on them", c.WriteTimeout, request)
	}
	if c.RequestBudget() >= c.GracefulShutdownTimeout {
		p.add("HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT (%s) must be longer than the worst case of one request (%s), "+
			"or a shutdown cuts off requests in flight", c.GracefulShutdownTimeout, request)
	}
	if c.DedupEnabled() && c.DedupTTL <= c.SendBudget() {
		p.add("DEDUP_TTL (%s) must be longer than the send budget (%s), the longest an event holds its dedup claim, "+
			"or set it to 0 to turn duplicate suppression off", c.DedupTTL, describe(c.sendBudgetTerms()))
	}
}
