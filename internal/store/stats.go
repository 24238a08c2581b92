package store

import "time"

// StatsCounts counts events by how Gwook answered them.
type StatsCounts struct {
	Forwarded    int64
	Filtered     int64
	Duplicate    int64
	DeadLettered int64
	Rejected     int64
	Failed       int64
}

// Add adds o to c.
func (c *StatsCounts) Add(o StatsCounts) {
	c.Forwarded += o.Forwarded
	c.Filtered += o.Filtered
	c.Duplicate += o.Duplicate
	c.DeadLettered += o.DeadLettered
	c.Rejected += o.Rejected
	c.Failed += o.Failed
}

// StatsRow is what to add to the counts of one application in one minute.
type StatsRow struct {
	ApplicationID string
	// Minute is the start of the minute, in UTC, truncated to the minute.
	Minute time.Time
	Counts StatsCounts
}

// Granularity is the width of the buckets of a stats query.
type Granularity string

// The granularities.
const (
	Minute Granularity = "minute"
	Hour   Granularity = "hour"
	Day    Granularity = "day"
)
