package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

// faultLog is when each scheduled fault happened and what it did.
type faultLog struct {
	redisAt, redisDowntime     time.Duration // Redis restart
	pauseAt, pause, pingWaited time.Duration // CLIENT PAUSE, and how long a PING then waited
	termAt, termDowntime       time.Duration // SIGTERM and restart
	killAt, killDowntime       time.Duration // SIGKILL and restart
	killPending                int64         // Svix calls in flight at the SIGKILL
}

// result is what the soak saw and the verdict on it.
type result struct {
	opts    options
	plan    *plan
	traffic *trafficStats
	svix    *svixserver.Server
	faults  *faultLog
	elapsed time.Duration

	beforeReplay, afterReplay int
	replayRuns                int
	replayOutput              string

	ledger     *ledger
	ledgerPath string // where every failure is listed
}

// ok reports whether the ledger holds no failure and no eventId was sent to
// Svix under a second idempotency key (Svix's 409).
func (r *result) ok() bool {
	return !r.ledger.failed() && r.svix.Tally().ByStatus[http.StatusConflict] == 0
}

func (r *result) String() string {
	var b strings.Builder
	p, d, t, f, l := r.plan, r.traffic.direct, r.svix.Tally(), r.faults, r.ledger
	line := func(name string, format string, args ...any) {
		fmt.Fprintf(&b, "  %-34s %s\n", name, fmt.Sprintf(format, args...))
	}
	s := func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
	fmt.Fprintf(&b, "\nsoak: %d events in %s (seed %d)\n", r.opts.events, r.elapsed.Round(time.Second), r.opts.seed)
	line("events", "%d unique, %d sent twice (%d direct+direct, %d push+push, %d direct+push),",
		p.roles[unique], p.roles[sentTwice], p.twiceRoute["direct+direct"], p.twiceRoute["push+push"], p.twiceRoute["direct+push"])
	line("", "%d same-key pairs in one application, %d in two applications, %d filtered",
		p.roles[pairOneApp]/2, p.roles[pairTwoApps]/2, p.roles[filtered])
	line("published to Pub/Sub (push)", "%d", r.traffic.published)
	line("POSTed directly", "%d: %d accepted (202), %d filtered (200), %d dead-lettered (429/500), %d duplicate (409),",
		r.traffic.directSends, d.accepted.Load(), d.filtered.Load(), d.deadLettered.Load(), d.duplicate.Load())
	line("", "%d rejected, %d gave up; %d retries", d.rejected.Load(), d.gaveUp.Load(), d.retries.Load())
	line("Svix message creations", "%d: %d answered 500, %d answered 429, %d slow (%s), %d conflicts (409)",
		r.svix.Attempts(), t.ByStatus[http.StatusInternalServerError], t.ByStatus[http.StatusTooManyRequests], t.Delayed, r.opts.slow,
		t.ByStatus[http.StatusConflict])
	line("Redis restarted", "at %s, down %s", s(f.redisAt), s(f.redisDowntime))
	line("Redis paused (CLIENT PAUSE ALL)", "at %s for %s; a PING waited %s (REDIS_TIMEOUT %s)", s(f.pauseAt), s(f.pause), s(f.pingWaited), redisTimeout)
	line("gwook SIGTERM and restart", "at %s, down %s", s(f.termAt), s(f.termDowntime))
	line("gwook SIGKILL and restart", "at %s with %d Svix calls in flight, down %s", s(f.killAt), f.killPending, s(f.killDowntime))
	line("delivered before the replay", "%d", r.beforeReplay)
	line("dead-lettered, then replayed", "%d delivered by %d replay run(s); first run said:", r.afterReplay-r.beforeReplay, r.replayRuns)
	for l := range strings.Lines(r.replayOutput) {
		fmt.Fprintf(&b, "      %s", l)
	}
	b.WriteString("\n")
	line("at Svix exactly once", "%d of %d events (all but filtered ones and duplicates)", l.once, len(p.events))
	line("same-key pairs in one application", "%d: %d one at Svix and one a duplicate of it, %d both at Svix",
		p.roles[pairOneApp]/2, l.pairsOneDup, l.pairsBoth)
	line("filtered, not at Svix", "%d of %d", l.filteredOut, p.roles[filtered])
	line("duplicates (second message)", "%s", summarize(l.duplicated))
	line("lost (acknowledged, not at Svix)", "%s", summarize(l.lost))
	line("never acknowledged, not at Svix", "%s", summarize(l.unsettled))
	line("stray messages", "%d%s", len(l.stray), sample(l.stray))
	if l.failed() {
		fmt.Fprintf(&b, "  every failure is listed in %s\n", r.ledgerPath)
	}
	return b.String()
}

// shownPerRole is how many failed events of each role the summary names.
const shownPerRole = 3

// summarize counts fs by role and names a few of each role.
func summarize(fs []finding) string {
	if len(fs) == 0 {
		return "0"
	}
	byRole := map[role][]finding{}
	for _, f := range fs {
		byRole[f.role] = append(byRole[f.role], f)
	}
	out := fmt.Sprintf("%d:", len(fs))
	for r := unique; r <= filtered; r++ {
		if len(byRole[r]) == 0 {
			continue
		}
		out += fmt.Sprintf("\n    %d %s", len(byRole[r]), r)
		for _, f := range byRole[r][:min(len(byRole[r]), shownPerRole)] {
			out += "\n      " + f.String()
		}
	}
	return out
}

// sample names a few of ids, one a line.
func sample(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	out := ":"
	for _, id := range ids[:min(len(ids), shownPerRole)] {
		out += "\n      " + id
	}
	if len(ids) > shownPerRole {
		out += fmt.Sprintf("\n      and %d more", len(ids)-shownPerRole)
	}
	return out
}

// writeLedger writes every failure of l to path, one a line.
func writeLedger(path string, l *ledger) error {
	var b strings.Builder
	for _, list := range []struct {
		name string
		fs   []finding
	}{{"duplicated", l.duplicated}, {"lost", l.lost}, {"never acknowledged", l.unsettled}} {
		for _, f := range list.fs {
			fmt.Fprintf(&b, "%s: %s\n", list.name, f)
		}
	}
	for _, s := range l.stray {
		fmt.Fprintf(&b, "stray: %s\n", s)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
