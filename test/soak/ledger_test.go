package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

func TestPlanRoles(t *testing.T) {
	const n = 2000
	p := newPlan("run", n, 40*time.Second, 7)
	want := map[role]int{sentTwice: 40, pairOneApp: 80, pairTwoApps: 80, filtered: 10, unique: n - 210}
	for r, c := range want {
		if p.roles[r] != c {
			t.Errorf("%d events are %s, want %d", p.roles[r], r, c)
		}
	}
	if !slices.IsSortedFunc(p.sends, func(a, b send) int { return int(a.at - b.at) }) {
		t.Error("sends are not in time order")
	}
	copies := make([]int, n)
	routes := map[int][]route{}
	for _, s := range p.sends {
		copies[s.event]++
		routes[s.event] = append(routes[s.event], s.via)
	}
	byKey := map[string][]int{}
	for i, e := range p.events {
		byKey[e.dedupKey()] = append(byKey[e.dedupKey()], i)
		wantCopies := 1
		if e.role == sentTwice {
			wantCopies = 2
		}
		if copies[i] != wantCopies {
			t.Errorf("%s (%s) is sent %d times, want %d", e.id, e.role, copies[i], wantCopies)
		}
		if !strings.Contains(string(e.body), `"id":"`+e.id+`"`) || !strings.Contains(string(e.body), `"user_id":"`+e.app+`"`) {
			t.Errorf("%s: body %s does not carry its id and application", e.id, e.body)
		}
	}
	if p.twiceRoute["direct+direct"] == 0 || p.twiceRoute["push+push"] == 0 || p.twiceRoute["direct+push"] == 0 {
		t.Errorf("events sent twice take routes %v, want all three pairs of routes", p.twiceRoute)
	}
	for key, members := range byKey {
		shared := p.events[members[0]].role == pairOneApp
		if shared != (len(members) == 2) || len(members) > 2 {
			t.Errorf("dedup key %q is held by %d events of role %s", key, len(members), p.events[members[0]].role)
		}
	}
	// Pairs in two applications share type, project and source only.
	sources := map[string][]plannedEvent{}
	for _, e := range p.events {
		if e.role == pairTwoApps {
			sources[e.source] = append(sources[e.source], e)
		}
	}
	for source, pair := range sources {
		if len(pair) != 2 || pair[0].app == pair[1].app {
			t.Errorf("source %s: pair in two applications is %+v", source, pair)
		}
	}

	again := newPlan("run", n, 40*time.Second, 7)
	if !slices.EqualFunc(p.sends, again.sends, func(a, b send) bool { return a == b }) {
		t.Error("the same seed drew another plan")
	}
	other := newPlan("run", n, 40*time.Second, 8)
	if slices.EqualFunc(p.sends, other.sends, func(a, b send) bool { return a == b }) {
		t.Error("another seed drew the same plan")
	}
}

// fixture is a run in which everything went right: every event at Svix once,
// except filtered ones and the second event of each same-key pair in one
// application, answered as a duplicate after the first reached Svix.
type fixture struct {
	plan   *plan
	t0     time.Time
	msgs   []svixserver.Message
	direct []directAnswer
	push   map[string][]pushAnswer
}

func newFixture() *fixture {
	f := &fixture{plan: newPlan("run", minEvents, 10*time.Second, 1), t0: time.Now(), push: map[string][]pushAnswer{}}
	f.direct = make([]directAnswer, len(f.plan.sends))
	leader := map[string]int{}
	for k, s := range f.plan.sends {
		e := f.plan.events[s.event]
		status, outcome := http.StatusAccepted, "forwarded"
		switch first, seen := leader[e.dedupKey()]; {
		case e.role == filtered:
			status, outcome = http.StatusOK, "filtered"
		case e.role == pairOneApp && seen && first != s.event:
			status, outcome = http.StatusConflict, "duplicate"
		case !seen:
			leader[e.dedupKey()] = s.event
			f.msgs = append(f.msgs, svixserver.Message{AppID: e.app, EventID: e.id, ReceivedAt: f.t0.Add(time.Second)})
		}
		if s.via == viaPush {
			f.push[e.id] = append(f.push[e.id], pushAnswer{status: http.StatusOK, outcome: outcome, at: f.t0.Add(2 * time.Second)})
		} else {
			f.direct[k] = directAnswer{status: status, at: f.t0.Add(2 * time.Second)}
		}
	}
	return f
}

func (f *fixture) ledger() *ledger { return newLedger(f.plan, f.msgs, f.direct, f.push, f.t0) }

// first returns the first event of role r sent via v (any route when v < 0)
// and the index of its send.
func (f *fixture) first(t *testing.T, r role, v route, follower bool) (int, int) {
	t.Helper()
	seen := map[string]bool{}
	for k, s := range f.plan.sends {
		e := f.plan.events[s.event]
		isFollower := seen[e.dedupKey()]
		seen[e.dedupKey()] = true
		if e.role == r && (v < 0 || s.via == v) && isFollower == follower {
			return s.event, k
		}
	}
	t.Fatalf("the plan has no %s event via %v (follower %v)", r, v, follower)
	return 0, 0
}

// unstore removes the messages of event i.
func (f *fixture) unstore(i int) {
	f.msgs = slices.DeleteFunc(f.msgs, func(m svixserver.Message) bool { return m.EventID == f.plan.events[i].id })
}

func TestLedgerAcceptsACleanRun(t *testing.T) {
	f := newFixture()
	l := f.ledger()
	if l.failed() {
		t.Fatalf("clean run failed: duplicated %v, lost %v, unsettled %v, stray %v", l.duplicated, l.lost, l.unsettled, l.stray)
	}
	p := f.plan
	if want := len(p.events) - p.roles[filtered] - p.roles[pairOneApp]/2; l.once != want {
		t.Errorf("once = %d, want %d", l.once, want)
	}
	if l.pairsOneDup != p.roles[pairOneApp]/2 || l.pairsBoth != 0 || l.filteredOut != p.roles[filtered] {
		t.Errorf("pairs %d/%d, filtered %d; want %d/0, %d", l.pairsOneDup, l.pairsBoth, l.filteredOut, p.roles[pairOneApp]/2, p.roles[filtered])
	}
}

func TestLedgerFindsEachFailure(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(t *testing.T, f *fixture) string // returns the event id expected in the list
		list  func(l *ledger) []finding
	}{
		{"pushed event answered as a duplicate of itself", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, unique, viaPush, false)
			f.unstore(i)
			id := f.plan.events[i].id
			f.push[id] = []pushAnswer{{status: http.StatusOK, outcome: "duplicate", at: f.t0}}
			return id
		}, func(l *ledger) []finding { return l.lost }},
		{"pushed event never answered 200", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, unique, viaPush, false)
			f.unstore(i)
			id := f.plan.events[i].id
			f.push[id] = []pushAnswer{{status: http.StatusServiceUnavailable, at: f.t0}}
			return id
		}, func(l *ledger) []finding { return l.unsettled }},
		{"producer got 409, event not at Svix", func(t *testing.T, f *fixture) string {
			i, k := f.first(t, unique, viaDirect, false)
			f.unstore(i)
			f.direct[k] = directAnswer{status: http.StatusConflict, at: f.t0}
			return f.plan.events[i].id
		}, func(l *ledger) []finding { return l.lost }},
		{"producer got 202, event not at Svix", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, unique, viaDirect, false)
			f.unstore(i)
			return f.plan.events[i].id
		}, func(l *ledger) []finding { return l.lost }},
		{"event sent twice, not at Svix", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, sentTwice, -1, false)
			f.unstore(i)
			return f.plan.events[i].id
		}, func(l *ledger) []finding { return l.lost }},
		{"pair in one application answered duplicate before its partner reached Svix", func(t *testing.T, f *fixture) string {
			i, k := f.first(t, pairOneApp, -1, true)
			id := f.plan.events[i].id
			if f.plan.sends[k].via == viaPush {
				f.push[id] = []pushAnswer{{status: http.StatusOK, outcome: "duplicate", at: f.t0}}
			} else {
				f.direct[k].at = f.t0
			}
			return id
		}, func(l *ledger) []finding { return l.lost }},
		{"pair in one application, neither at Svix", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, pairOneApp, -1, true)
			for j, e := range f.plan.events {
				if e.dedupKey() == f.plan.events[i].dedupKey() && j != i {
					f.unstore(j)
				}
			}
			return f.plan.events[i].id
		}, func(l *ledger) []finding { return l.lost }},
		{"pair in two applications answered duplicate", func(t *testing.T, f *fixture) string {
			i, k := f.first(t, pairTwoApps, -1, false)
			f.unstore(i)
			id := f.plan.events[i].id
			if f.plan.sends[k].via == viaPush {
				f.push[id] = []pushAnswer{{status: http.StatusOK, outcome: "duplicate", at: f.t0.Add(3 * time.Second)}}
			} else {
				f.direct[k] = directAnswer{status: http.StatusConflict, at: f.t0.Add(3 * time.Second)}
			}
			return id
		}, func(l *ledger) []finding { return l.lost }},
		{"producer gave up", func(t *testing.T, f *fixture) string {
			i, k := f.first(t, unique, viaDirect, false)
			f.unstore(i)
			f.direct[k] = directAnswer{status: http.StatusServiceUnavailable, gaveUp: true, at: f.t0}
			return f.plan.events[i].id
		}, func(l *ledger) []finding { return l.unsettled }},
		{"second message for an eventId", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, sentTwice, -1, false)
			e := f.plan.events[i]
			f.msgs = append(f.msgs, svixserver.Message{AppID: e.app, EventID: e.id, ReceivedAt: f.t0})
			return e.id
		}, func(l *ledger) []finding { return l.duplicated }},
		{"filtered event at Svix", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, filtered, -1, false)
			e := f.plan.events[i]
			f.msgs = append(f.msgs, svixserver.Message{AppID: e.app, EventID: e.id, ReceivedAt: f.t0})
			return e.id
		}, nil},
		{"message in another application", func(t *testing.T, f *fixture) string {
			i, _ := f.first(t, unique, -1, false)
			e := f.plan.events[i]
			f.msgs = append(f.msgs, svixserver.Message{AppID: "usr_other", EventID: e.id, ReceivedAt: f.t0})
			return e.id
		}, nil},
		{"message for no event of the run", func(t *testing.T, f *fixture) string {
			f.msgs = append(f.msgs, svixserver.Message{AppID: "usr_soak_0", EventID: "evt_unknown", ReceivedAt: f.t0})
			return "evt_unknown"
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			id := c.spoil(t, f)
			l := f.ledger()
			if !l.failed() {
				t.Fatal("the ledger found no failure")
			}
			named := slices.ContainsFunc(l.stray, func(s string) bool { return strings.HasPrefix(s, id+" ") })
			if c.list != nil {
				named = slices.ContainsFunc(c.list(l), func(f finding) bool { return f.id == id })
			}
			if !named {
				t.Errorf("%s is not named where expected (nil: stray) (duplicated %v, lost %v, unsettled %v, stray %v)",
					id, l.duplicated, l.lost, l.unsettled, l.stray)
			}
		})
	}
}
