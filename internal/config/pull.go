package config

import (
	"regexp"
	"strings"
	"time"
)

// PullMaxExtension is how long the Pub/Sub client keeps extending the ack
// deadline of a pulled message that Gwook still holds (its lease
// extension, ReceiveSettings.MaxExtension). The request budget must be
// shorter, so that no message is redelivered while it is being processed,
// whatever the subscription's own ack deadline.
const PullMaxExtension = 10 * time.Minute

// subscriptionID is the form of a Pub/Sub subscription ID: 3 to 255
// characters, starting with a letter, of letters, digits and - _ . ~ + %.
var subscriptionID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)

// projectID is the form of a Google Cloud project ID (lenient: a domain-
// scoped project has a colon and a dot).
var projectID = regexp.MustCompile(`^[a-z][a-z0-9\-.:]{1,61}[a-z0-9]$`)

// PullEnabled reports whether Gwook consumes subscriptions by streaming
// pull (PUBSUB_SUBSCRIPTIONS).
func (c *Config) PullEnabled() bool { return len(c.PubSubSubscriptions) > 0 }

// Subscriptions are the subscriptions of PUBSUB_SUBSCRIPTIONS as full
// names: an ID is in PUBSUB_PROJECT_ID.
func (c *Config) Subscriptions() []string {
	names := make([]string, 0, len(c.PubSubSubscriptions))
	for _, s := range c.PubSubSubscriptions {
		s = strings.TrimSpace(s)
		if !strings.HasPrefix(s, "projects/") {
			s = "projects/" + c.PubSubProjectID + "/subscriptions/" + s
		}
		names = append(names, s)
	}
	return names
}

// checkPull checks PUBSUB_SUBSCRIPTIONS, its flow control, and that the
// client's lease extension outlasts the processing of a message.
func (c *Config) checkPull(p *problems) {
	if c.PullMaxOutstandingMessages < 1 {
		p.add("PULL_MAX_OUTSTANDING_MESSAGES must be at least 1, got %d", c.PullMaxOutstandingMessages)
	}
	if c.PullMaxOutstandingBytes < 1 {
		p.add("PULL_MAX_OUTSTANDING_BYTES must be at least 1, got %d", c.PullMaxOutstandingBytes)
	}
	if !c.PullEnabled() {
		return
	}
	for i, raw := range c.PubSubSubscriptions {
		s := strings.TrimSpace(raw)
		if problem := subscriptionProblem(s); problem != "" {
			p.add("PUBSUB_SUBSCRIPTIONS: entry %d %s", i+1, problem)
			continue
		}
		if !strings.HasPrefix(s, "projects/") && c.PubSubProjectID == "" {
			p.add("PUBSUB_PROJECT_ID is required when PUBSUB_SUBSCRIPTIONS holds a subscription ID (%q), not a full projects/P/subscriptions/S name", s)
		}
	}
	names := c.Subscriptions()
	unique := map[string]bool{}
	for _, n := range names {
		if unique[n] {
			p.add("PUBSUB_SUBSCRIPTIONS names %s twice", n)
		}
		unique[n] = true
	}
	if c.RequestBudget() >= PullMaxExtension {
		p.add("the worst case of one request (%s) must be shorter than the lease extension of a pulled message (%s), "+
			"or Pub/Sub redelivers a message Gwook still holds", describe(c.requestBudgetTerms()), PullMaxExtension)
	}
}

// subscriptionProblem says what is wrong with s as a subscription ID or a
// full projects/P/subscriptions/S name, or "".
func subscriptionProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	id := s
	if strings.HasPrefix(s, "projects/") {
		parts := strings.Split(s, "/")
		if len(parts) != 4 || parts[2] != "subscriptions" {
			return quoted(s) + " is not a full subscription name, projects/PROJECT/subscriptions/ID"
		}
		if !projectID.MatchString(parts[1]) {
			return quoted(s) + " has a project that is not a project ID"
		}
		id = parts[3]
	}
	if !subscriptionID.MatchString(id) || strings.HasPrefix(id, "goog") {
		return quoted(s) + " is not a subscription ID: 3 to 255 letters, digits and - _ . ~ + %, starting with a letter, not with goog"
	}
	return ""
}
