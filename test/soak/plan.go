package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// role is the part an event plays in the soak, which decides what the
// ledger accepts for it.
type role int

const (
	// unique: the only event with its dedup key. It must be at Svix.
	unique role = iota
	// sentTwice: the same event (same id) sent twice. It must be at Svix
	// once: its second copy is never a duplicate of the first.
	sentTwice
	// pairOneApp: one of two distinct events with the same dedup key in one
	// application. It must be at Svix, or be answered as a duplicate after
	// its partner reached Svix.
	pairOneApp
	// pairTwoApps: same type, project and source as its partner but another
	// application (user_id), so its dedup key is its own: it must be at Svix.
	pairTwoApps
	// filtered: of a type gwook is configured to drop. It must not be at Svix.
	filtered
)

func (r role) String() string {
	return [...]string{"unique", "sent twice", "same-key pair, one application",
		"same-key pair, two applications", "filtered"}[r]
}

// route is how a copy of an event reaches gwook.
type route int

const (
	viaPush   route = iota // published to the topic the push subscription reads
	viaDirect              // POSTed by a producer
)

func (r route) String() string { return [...]string{"push", "direct"}[r] }

// Event fields the soak uses; filteredType is in gwook's FILTER_EXCLUDE_TYPES.
const (
	eventType    = "user.signed_up"
	filteredType = "soak.ignored"
	eventProject = "acme-web"
	applications = 8 // user_ids the events are spread over
)

// plannedEvent is one event of the run.
type plannedEvent struct {
	id, app, source, typ string
	role                 role
	body                 []byte
}

// send is one copy of an event, sent at an offset from the start of the
// traffic.
type send struct {
	event int
	via   route
	at    time.Duration
}

// plan is what the run sends, and when.
type plan struct {
	events []plannedEvent
	sends  []send // by time
	// Counts of each role, and of each route pair for events sent twice
	// (direct+direct, push+push, direct+push).
	roles      [filtered + 1]int
	twiceRoute map[string]int
}

// twiceRoutes are the routes of the two copies of an event sent twice.
var twiceRoutes = [][2]route{{viaDirect, viaDirect}, {viaPush, viaPush}, {viaDirect, viaPush}}

// minEvents is the smallest run in which every role has an event.
const minEvents = 100

// newPlan draws the run's n events from seed: about 2% are sent twice
// (as many direct+direct, push+push and direct+push), 4% are same-key
// pairs in one application, 4% same-type-project-source pairs in two
// applications, 0.5% are filtered, and the rest are unique. Events are
// paced evenly over spread; the second copy or member of a pair follows the
// first at once, within 500 ms, or 1 to 5 s later, a third of the time
// each. Every other draw (which route an event takes) comes from seed too,
// so that a run can be repeated.
func newPlan(run string, n int, spread time.Duration, seed int64) *plan {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x50a4))
	p := &plan{events: make([]plannedEvent, n), twiceRoute: map[string]int{}}
	slot := func(i int) time.Duration { return spread * time.Duration(i) / time.Duration(n) }
	later := func() time.Duration {
		switch rng.IntN(3) {
		case 0:
			return 0
		case 1:
			return time.Duration(rng.Int64N(int64(500 * time.Millisecond)))
		default:
			return time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))
		}
	}
	anyRoute := func() route { return route(rng.IntN(2)) }

	order := rng.Perm(n) // events in the order roles are handed out
	next := func() int { i := order[0]; order = order[1:]; return i }
	take := func(count int) []int {
		out := make([]int, count)
		for k := range out {
			out[k] = next()
		}
		return out
	}
	twice, pairsOne, pairsTwo := n*2/100, n*2/100, n*2/100
	nFiltered := max(1, n/200)

	for k, i := range take(twice) {
		p.define(run, i, sentTwice, i%applications)
		r := twiceRoutes[k%len(twiceRoutes)]
		first, second := r[0], r[1]
		p.twiceRoute[first.String()+"+"+second.String()]++
		p.sends = append(p.sends, send{i, first, slot(i)}, send{i, second, slot(i) + later()})
	}
	for _, r := range []role{pairOneApp, pairTwoApps} {
		count := pairsOne
		if r == pairTwoApps {
			count = pairsTwo
		}
		for range count {
			a, b := next(), next()
			a, b = min(a, b), max(a, b)
			app := a % applications
			p.define(run, a, r, app)
			if r == pairTwoApps {
				app = (app + 1) % applications
			}
			p.define(run, b, r, app)
			// The pair shares type, project and source.
			p.events[b].source = p.events[a].source
			p.sends = append(p.sends, send{a, anyRoute(), slot(a)}, send{b, anyRoute(), slot(a) + later()})
		}
	}
	for _, i := range take(nFiltered) {
		p.define(run, i, filtered, i%applications)
		p.sends = append(p.sends, send{i, anyRoute(), slot(i)})
	}
	for _, i := range order {
		p.define(run, i, unique, i%applications)
		p.sends = append(p.sends, send{i, anyRoute(), slot(i)})
	}
	for i := range p.events {
		e := &p.events[i]
		e.body = eventBody(e, i)
		p.roles[e.role]++
	}
	slices.SortStableFunc(p.sends, func(a, b send) int { return int(a.at - b.at) })
	return p
}

// define sets event i's id, role, application and own source.
func (p *plan) define(run string, i int, r role, app int) {
	p.events[i] = plannedEvent{id: eventID(run, i), app: "usr_soak_" + strconv.Itoa(app),
		source: "soak-" + run + "-" + strconv.Itoa(i), typ: eventType, role: r}
	if r == filtered {
		p.events[i].typ = filteredType
	}
}

// eventID is the id of event i of run.
func eventID(run string, i int) string { return "evt_soak_" + run + "_" + strconv.Itoa(i) }

// eventBody is e, event i, shaped like test/events/event-01.json.
func eventBody(e *plannedEvent, i int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"source":%q,"project":%q,`+
		`"user_id":%q,"time":"2026-03-02T08:15:42Z","data":{"email":"maria.lopez@example.com","plan":"pro","n":%d}}`,
		e.id, e.typ, e.source, eventProject, e.app, i)
}

// dedupKey is the event's dedup key as gwook derives it by default:
// type, project and source, within the application.
func (e *plannedEvent) dedupKey() string {
	return e.app + "\x00" + e.typ + "\x00" + eventProject + "\x00" + e.source
}
