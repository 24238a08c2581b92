package config

import (
	"slices"
	"strings"
	"testing"
)

func TestSubscriptions(t *testing.T) {
	c, err := loadEnv(with(map[string]string{
		"PUBSUB_PROJECT_ID":    "proj-1",
		"PUBSUB_SUBSCRIPTIONS": "sub-a, projects/other-proj/subscriptions/sub-b",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"projects/proj-1/subscriptions/sub-a", "projects/other-proj/subscriptions/sub-b"}
	if got := c.Subscriptions(); !slices.Equal(got, want) || !c.PullEnabled() {
		t.Errorf("Subscriptions() = %q, want %q", got, want)
	}
	c, err = loadEnv(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.PullEnabled() {
		t.Error("pulling without PUBSUB_SUBSCRIPTIONS")
	}
}

func TestPullProblems(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"PUBSUB_SUBSCRIPTIONS": "sub-a"},
			[]string{`PUBSUB_PROJECT_ID is required when PUBSUB_SUBSCRIPTIONS holds a subscription ID ("sub-a")`}},
		{map[string]string{"PUBSUB_PROJECT_ID": "p-1", "PUBSUB_SUBSCRIPTIONS": "projects/p-1/topics/t"},
			[]string{`PUBSUB_SUBSCRIPTIONS: entry 1 "projects/p-1/topics/t" is not a full subscription name`}},
		{map[string]string{"PUBSUB_PROJECT_ID": "p-1", "PUBSUB_SUBSCRIPTIONS": "ok-sub,,1sub,googsub,projects/P!/subscriptions/s-1"},
			[]string{"PUBSUB_SUBSCRIPTIONS: entry 2 is empty",
				`PUBSUB_SUBSCRIPTIONS: entry 3 "1sub" is not a subscription ID`,
				`PUBSUB_SUBSCRIPTIONS: entry 4 "googsub" is not a subscription ID`,
				`PUBSUB_SUBSCRIPTIONS: entry 5 "projects/P!/subscriptions/s-1" has a project that is not a project ID`}},
		{map[string]string{"PUBSUB_PROJECT_ID": "p-1", "PUBSUB_SUBSCRIPTIONS": "sub-a,projects/p-1/subscriptions/sub-a"},
			[]string{"PUBSUB_SUBSCRIPTIONS names projects/p-1/subscriptions/sub-a twice"}},
		{map[string]string{"PULL_MAX_OUTSTANDING_MESSAGES": "0", "PULL_MAX_OUTSTANDING_BYTES": "-1"},
			[]string{"PULL_MAX_OUTSTANDING_MESSAGES must be at least 1, got 0", "PULL_MAX_OUTSTANDING_BYTES must be at least 1, got -1"}},
		{map[string]string{"PUBSUB_PROJECT_ID": "p-1", "PUBSUB_SUBSCRIPTIONS": "sub-a", "SVIX_RETRY_MAX_ELAPSED": "11m", "DEDUP_TTL": "0",
			"HTTP_SERVER_WRITE_TIMEOUT": "1h", "HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT": "1h"},
			[]string{"the worst case of one request (11m0s = SVIX_RETRY_MAX_ELAPSED 11m0s) must be shorter than the lease extension of a pulled message (10m0s)"}},
	} {
		_, err := loadEnv(with(tc.env))
		got := problemsOf(err)
		if len(got) != len(tc.want) {
			t.Errorf("%v: problems %q, want %d starting %q", tc.env, got, len(tc.want), tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("%v: problem %q, want it to start %q", tc.env, got[i], w)
			}
		}
	}
}
