package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

// result is what the soak saw and the verdict on it.
type result struct {
	opts    options
	traffic *trafficStats
	svix    *svixserver.Server
	elapsed time.Duration

	redisAt, redisDowntime time.Duration
	gwookAt, gwookDowntime time.Duration

	beforeReplay, afterReplay int
	replayRuns                int
	replayOutput              string

	once       int      // events with exactly one message
	lost       []string // events with none
	duplicated []string // events with more than one
	unknown    int      // messages for no event of this run
}

// tally counts the messages Svix stored for each event of run.
func (r *result) tally(msgs []svixserver.Message, run string) {
	count := make(map[string]int, len(msgs))
	for _, m := range msgs {
		count[m.EventID]++
	}
	r.once, r.lost, r.duplicated, r.unknown = 0, nil, nil, len(msgs)
	for i := range r.opts.events {
		id := eventID(run, i)
		c := count[id]
		r.unknown -= c
		switch {
		case c == 0:
			r.lost = append(r.lost, id)
		case c == 1:
			r.once++
		default:
			r.duplicated = append(r.duplicated, id)
		}
	}
}

// ok reports whether every event was delivered exactly once and nothing
// else was: no loss, no duplicate, no stray message, and no second message
// creation for an eventId under another idempotency key (Svix's 409).
func (r *result) ok() bool {
	return len(r.lost) == 0 && len(r.duplicated) == 0 && r.unknown == 0 && r.svix.Tally().ByStatus[http.StatusConflict] == 0
}

func (r *result) String() string {
	var b strings.Builder
	d, t := r.traffic.direct, r.svix.Tally()
	line := func(name string, format string, args ...any) {
		fmt.Fprintf(&b, "  %-32s %s\n", name, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "\nsoak: %d events in %s (fault seed %d)\n", r.opts.events, r.elapsed.Round(time.Second), r.opts.seed)
	line("published to Pub/Sub (push)", "%d", r.traffic.published)
	line("POSTed directly", "%d: %d accepted (202), %d dead-lettered (429/500), %d duplicate (409), %d rejected, %d gave up; %d retries",
		r.opts.events/2, d.accepted.Load(), d.deadLettered.Load(), d.duplicate.Load(), d.rejected.Load(), d.gaveUp.Load(), d.retries.Load())
	line("Svix message creations", "%d: %d answered 500, %d answered 429, %d slow (%s), %d conflicts (409)",
		r.svix.Attempts(), t.ByStatus[http.StatusInternalServerError], t.ByStatus[http.StatusTooManyRequests], t.Delayed, r.opts.slow,
		t.ByStatus[http.StatusConflict])
	line("Redis restarted", "at %s, down %s", r.redisAt.Round(time.Second), r.redisDowntime.Round(time.Millisecond))
	line("gwook SIGTERM and restart", "at %s, down %s", r.gwookAt.Round(time.Second), r.gwookDowntime.Round(time.Millisecond))
	line("delivered before the replay", "%d", r.beforeReplay)
	line("dead-lettered, then replayed", "%d delivered by %d replay run(s); first run said:", r.afterReplay-r.beforeReplay, r.replayRuns)
	for l := range strings.Lines(r.replayOutput) {
		fmt.Fprintf(&b, "      %s", l)
	}
	b.WriteString("\n")
	line("delivered exactly once", "%d of %d", r.once, r.opts.events)
	line("duplicates", "%d%s", len(r.duplicated), sample(r.duplicated))
	line("lost", "%d%s", len(r.lost), sample(r.lost))
	line("stray messages", "%d", r.unknown)
	return b.String()
}

// sample names a few of ids.
func sample(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " (" + strings.Join(ids[:min(len(ids), 5)], ", ") + ")"
}
