package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gwook/gwook/internal/store"
)

// maxStatsBuckets bounds the buckets one stats answer may span: a week of
// minutes, or 416 days of hours.
const maxStatsBuckets = 10_080

// defaultStatsSpan is the span of a stats query without since, per
// granularity.
var defaultStatsSpan = map[store.Granularity]time.Duration{
	store.Minute: time.Hour,
	store.Hour:   24 * time.Hour,
	store.Day:    30 * 24 * time.Hour,
}

var granularityWidth = map[store.Granularity]time.Duration{
	store.Minute: time.Minute,
	store.Hour:   time.Hour,
	store.Day:    24 * time.Hour,
}

// statsCounts are the counts of one bucket or of a whole answer.
type statsCounts struct {
	Forwarded    int64 `json:"forwarded" doc:"handed to the delivery backend"`
	Filtered     int64 `json:"filtered" doc:"dropped by a filter, global or the application's"`
	Duplicate    int64 `json:"duplicate" doc:"suppressed by deduplication"`
	DeadLettered int64 `json:"dead_lettered" doc:"put on the dead-letter topic"`
	Rejected     int64 `json:"rejected" doc:"refused for good by Svix"`
	Failed       int64 `json:"failed" doc:"direct-delivery messages that gave up after their last retry, when they gave up"`
}

func statsCountsOf(c store.StatsCounts) statsCounts {
	return statsCounts{Forwarded: c.Forwarded, Filtered: c.Filtered, Duplicate: c.Duplicate,
		DeadLettered: c.DeadLettered, Rejected: c.Rejected, Failed: c.Failed}
}

type statsBucket struct {
	Start  time.Time   `json:"start"`
	Counts statsCounts `json:"counts"`
}

type statsOut struct {
	Granularity string        `json:"granularity" enum:"minute,hour,day"`
	Since       time.Time     `json:"since" doc:"the start of the first bucket asked for: since rounded down to the granularity"`
	Until       time.Time     `json:"until" doc:"the end of the last bucket asked for (exclusive)"`
	Buckets     []statsBucket `json:"buckets" nullable:"false" doc:"oldest first; buckets without events are left out"`
	Totals      statsCounts   `json:"totals"`
}

type statsOutput struct {
	Body statsOut
}

type statsQuery struct {
	Since       time.Time `query:"since" doc:"RFC 3339; default: until less an hour (minute), a day (hour) or 30 days (day)"`
	Until       time.Time `query:"until" doc:"RFC 3339, exclusive; default: now"`
	Granularity string    `query:"granularity" enum:"minute,hour,day" default:"hour"`
}

type appStatsInput struct {
	AppID       string    `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Since       time.Time `query:"since" doc:"RFC 3339; default: until less an hour (minute), a day (hour) or 30 days (day)"`
	Until       time.Time `query:"until" doc:"RFC 3339, exclusive; default: now"`
	Granularity string    `query:"granularity" enum:"minute,hour,day" default:"hour"`
}

func (s *server) registerStats() {
	huma.Register(s.api, operation(http.MethodGet, "/applications/{app_id}/stats", "get-application-stats",
		"Count an application's events by outcome over time", http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *appStatsInput) (*statsOutput, error) {
			if _, err := authorize(ctx, readApp, in.AppID); err != nil {
				return nil, err
			}
			if !s.Catalog.HasApplication(in.AppID) {
				return nil, notFound(ctx, "application", in.AppID)
			}
			return s.stats(ctx, in.AppID, statsQuery{Since: in.Since, Until: in.Until, Granularity: in.Granularity})
		})
	huma.Register(s.api, operation(http.MethodGet, "/stats", "get-stats",
		"Count every application's events by outcome over time", http.StatusOK),
		func(ctx context.Context, in *statsQuery) (*statsOutput, error) {
			if _, err := authorize(ctx, readAll, ""); err != nil {
				return nil, err
			}
			return s.stats(ctx, "", *in)
		})
}

// stats answers a stats query of the application appID, or of every
// application for "".
func (s *server) stats(ctx context.Context, appID string, in statsQuery) (*statsOutput, error) {
	g := store.Granularity(in.Granularity)
	width := granularityWidth[g]
	until := in.Until
	if until.IsZero() {
		until = time.Now()
	}
	since := in.Since
	if since.IsZero() {
		since = until.Add(-defaultStatsSpan[g])
	}
	since = since.UTC().Truncate(width)
	until = until.UTC()
	switch {
	case !until.After(since):
		return nil, invalidField(ctx, "until", "after_since", "until must be after since (rounded down to the "+in.Granularity+")")
	case until.Sub(since) > maxStatsBuckets*width:
		return nil, invalidField(ctx, "since", "max_buckets",
			"the query spans more than 10080 buckets of a "+in.Granularity+": narrow since and until, or take a wider granularity")
	}
	buckets, err := s.Store.QueryStats(ctx, store.StatsQuery{ApplicationID: appID, Since: since, Until: until, Granularity: g})
	if err != nil {
		return nil, s.storeError(ctx, err, "application", appID)
	}
	out := statsOut{Granularity: in.Granularity, Since: since, Until: until, Buckets: make([]statsBucket, 0, len(buckets))}
	var totals store.StatsCounts
	for _, b := range buckets {
		out.Buckets = append(out.Buckets, statsBucket{Start: utc(b.Start), Counts: statsCountsOf(b.Counts)})
		totals.Add(b.Counts)
	}
	out.Totals = statsCountsOf(totals)
	return &statsOutput{Body: out}, nil
}
