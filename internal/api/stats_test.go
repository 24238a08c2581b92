package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
)

func TestStats(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		h.createApp("app_1")
		h.createApp("app_2")
		// Two minutes of one hour, and a minute of the next day.
		day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
		m1, m2, m3 := day.Add(10*time.Hour+5*time.Minute), day.Add(10*time.Hour+6*time.Minute), day.Add(24*time.Hour+time.Minute)
		err := st.AddStats(context.Background(), []store.StatsRow{
			{ApplicationID: "app_1", Minute: m1, Counts: store.StatsCounts{Forwarded: 3, Filtered: 1}},
			{ApplicationID: "app_1", Minute: m2, Counts: store.StatsCounts{Duplicate: 2, DeadLettered: 1, Rejected: 1}},
			{ApplicationID: "app_1", Minute: m3, Counts: store.StatsCounts{Forwarded: 7}},
			{ApplicationID: "app_2", Minute: m1, Counts: store.StatsCounts{Forwarded: 10}},
		})
		if err != nil {
			t.Fatal(err)
		}
		q := func(path, since, until, granularity string) map[string]any {
			t.Helper()
			v := url.Values{"since": {since}, "until": {until}, "granularity": {granularity}}
			return h.must(http.StatusOK, h.admin, http.MethodGet, path+"?"+v.Encode(), nil).json(t)
		}
		rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
		since, until := rfc(day), rfc(day.Add(48*time.Hour))

		for _, tc := range []struct {
			name, path, granularity string
			starts                  []time.Time
			totals                  string
		}{
			{"minutes of one application", "/api/v1/applications/app_1/stats", "minute", []time.Time{m1, m2, m3},
				`{"dead_lettered":1,"duplicate":2,"failed":0,"filtered":1,"forwarded":10,"rejected":1}`},
			{"hours", "/api/v1/applications/app_1/stats", "hour", []time.Time{day.Add(10 * time.Hour), day.Add(24 * time.Hour)},
				`{"dead_lettered":1,"duplicate":2,"failed":0,"filtered":1,"forwarded":10,"rejected":1}`},
			{"days", "/api/v1/applications/app_1/stats", "day", []time.Time{day, day.Add(24 * time.Hour)},
				`{"dead_lettered":1,"duplicate":2,"failed":0,"filtered":1,"forwarded":10,"rejected":1}`},
			{"every application", "/api/v1/stats", "hour", []time.Time{day.Add(10 * time.Hour), day.Add(24 * time.Hour)},
				`{"dead_lettered":1,"duplicate":2,"failed":0,"filtered":1,"forwarded":20,"rejected":1}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := q(tc.path, since, until, tc.granularity)
				buckets := got["buckets"].([]any)
				if len(buckets) != len(tc.starts) {
					t.Fatalf("%d buckets, want %d: %v", len(buckets), len(tc.starts), got)
				}
				for i, b := range buckets {
					if start := b.(map[string]any)["start"]; start != rfc(tc.starts[i]) {
						t.Errorf("bucket %d starts %v, want %s", i, start, rfc(tc.starts[i]))
					}
				}
				if totals := toJSON(t, got["totals"]); totals != tc.totals {
					t.Errorf("totals %s, want %s", totals, tc.totals)
				}
			})
		}

		// since is rounded down to the granularity; until is exclusive.
		got := q("/api/v1/applications/app_1/stats", rfc(m1.Add(30*time.Second)), rfc(m2), "minute")
		if toJSON(t, got["buckets"]) != `[{"counts":{"dead_lettered":0,"duplicate":0,"failed":0,"filtered":1,"forwarded":3,"rejected":0},"start":"`+rfc(m1)+`"}]` {
			t.Errorf("since within m1, until m2: %v", got)
		}
		if got["since"] != rfc(m1) {
			t.Errorf("since %v, want it rounded down to %s", got["since"], rfc(m1))
		}

		// Defaults: the last day by hour.
		if got := h.must(http.StatusOK, h.admin, http.MethodGet, "/api/v1/applications/app_2/stats", nil).json(t); got["granularity"] != "hour" {
			t.Errorf("default granularity: %v", got)
		}

		// Scopes and errors.
		other := h.token(store.NewToken{Name: "other", Scopes: []string{"manage"}, ApplicationID: "app_2"})
		h.must(http.StatusNotFound, other, http.MethodGet, "/api/v1/applications/app_1/stats", nil)
		h.must(http.StatusOK, other, http.MethodGet, "/api/v1/applications/app_2/stats", nil)
		h.must(http.StatusForbidden, other, http.MethodGet, "/api/v1/stats", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/app_9/stats", nil)
		for _, bad := range []url.Values{
			{"granularity": {"week"}},
			{"since": {"yesterday"}},
			{"since": {rfc(m2)}, "until": {rfc(m1)}, "granularity": {"minute"}},
			{"since": {rfc(day.AddDate(0, 0, -30))}, "until": {rfc(day)}, "granularity": {"minute"}},
		} {
			h.must(http.StatusBadRequest, h.admin, http.MethodGet, "/api/v1/stats?"+bad.Encode(), nil)
		}
	})
}
