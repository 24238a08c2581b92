package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/gwook/gwook/test/svixserver"
)

// pushAnswer is what gwook answered one push, from its request log line.
type pushAnswer struct {
	status  int
	outcome string
	at      time.Time
}

// readPushAnswers reads gwook's request log lines (one JSON object per
// request) from the logs at paths and returns the answers to pushes by
// event id.
func readPushAnswers(paths []string) (map[string][]pushAnswer, error) {
	answers := map[string][]pushAnswer{}
	for _, path := range paths {
		if err := readLog(path, answers); err != nil {
			return nil, err
		}
	}
	return answers, nil
}

func readLog(path string, answers map[string][]pushAnswer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		var l struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Entry   string    `json:"entry"`
			EventID string    `json:"event_id"`
			Outcome string    `json:"outcome"`
			Status  int       `json:"status"`
		}
		if json.Unmarshal(lines.Bytes(), &l) != nil || l.Msg != "request" || l.Entry != "push" || l.EventID == "" {
			continue
		}
		answers[l.EventID] = append(answers[l.EventID], pushAnswer{status: l.Status, outcome: l.Outcome, at: l.Time})
	}
	return lines.Err()
}

// ledger is the verdict on every event of the run, from the messages Svix
// stored, the producers' answers and gwook's answers to pushes:
//
//   - an event is at Svix exactly once by eventId (in its application); or
//   - it was acknowledged as a duplicate (a producer's 409, or a push
//     answered 200 with outcome "duplicate") and another event with its
//     dedup key (application, type, project, source) had reached Svix
//     before that answer (only same-key pairs in one application share a
//     key, so only they can end so);
//   - or it was filtered, and is not at Svix.
//
// Anything else is a failure: a second message for one eventId, a message
// for no event of the run or in the wrong application, and an event that is
// not at Svix although it was acknowledged (lost) or never was (unsettled).
// A push counts as acknowledged when gwook's log shows it answered 200 (the
// emulator acks on 200). Unsettled fails the run too: every event must be at
// Svix or a proven duplicate by the end, when the producers have stopped and
// Pub/Sub, which redelivers a nacked push within seconds, has had time to.
type ledger struct {
	once        int // events at Svix exactly once
	pairsBoth   int // same-key pairs in one application with both events at Svix
	pairsOneDup int // same-key pairs in one application with one at Svix and one a duplicate
	filteredOut int // filtered events, not at Svix

	duplicated []finding // events with more than one message
	lost       []finding // acknowledged and not at Svix
	unsettled  []finding // never acknowledged and not at Svix
	stray      []string  // messages for no event of the run, in the wrong application, or of a filtered event
}

// finding is a failed event and what the soak knows of it.
type finding struct {
	id     string
	role   role
	detail string
}

func (f finding) String() string { return f.id + " (" + f.role.String() + f.detail + ")" }

// failed reports whether the ledger holds any failure.
func (l *ledger) failed() bool {
	return len(l.duplicated)+len(l.lost)+len(l.unsettled)+len(l.stray) > 0
}

// newLedger judges every event of p. direct holds the producers' answers,
// by send index; push holds gwook's answers to pushes, by event id.
func newLedger(p *plan, msgs []svixserver.Message, direct []directAnswer, push map[string][]pushAnswer, started time.Time) *ledger {
	l := &ledger{}
	index := make(map[string]int, len(p.events))
	for i, e := range p.events {
		index[e.id] = i
	}
	count := make([]int, len(p.events))
	delivered := make([]time.Time, len(p.events)) // when its message reached Svix
	for _, m := range msgs {
		i, ok := index[m.EventID]
		switch {
		case !ok:
			l.stray = append(l.stray, fmt.Sprintf("%s (not an event of this run)", m.EventID))
		case m.AppID != p.events[i].app:
			l.stray = append(l.stray, fmt.Sprintf("%s (in application %s, not %s)", m.EventID, m.AppID, p.events[i].app))
		default:
			count[i]++
			delivered[i] = m.ReceivedAt
		}
	}
	// The first delivery of each dedup key.
	keyDelivered := map[string]time.Time{}
	for i, e := range p.events {
		if count[i] > 0 {
			k := e.dedupKey()
			if t, ok := keyDelivered[k]; !ok || delivered[i].Before(t) {
				keyDelivered[k] = delivered[i]
			}
		}
	}

	answers := make([][]directAnswer, len(p.events))
	pushed := make([]bool, len(p.events))
	for k, s := range p.sends {
		if s.via == viaDirect {
			answers[s.event] = append(answers[s.event], direct[k])
		} else {
			pushed[s.event] = true
		}
	}

	provenDuplicate := make([]bool, len(p.events))
	for i, e := range p.events {
		switch {
		case count[i] > 1:
			l.duplicated = append(l.duplicated, finding{e.id, e.role, fmt.Sprintf("; %d messages", count[i])})
		case e.role == filtered:
			if count[i] == 0 {
				l.filteredOut++
			} else {
				l.stray = append(l.stray, e.id+" (of a filtered type)")
			}
		case count[i] == 1:
			l.once++
		default:
			dupAt := firstDuplicateAnswer(answers[i], push[e.id])
			otherAt, other := keyDelivered[e.dedupKey()]
			if !dupAt.IsZero() && other && !dupAt.Before(otherAt) {
				provenDuplicate[i] = true
				continue
			}
			why := finding{e.id, e.role, describe(answers[i], pushed[i], push[e.id], dupAt, other, otherAt, started)}
			if pushAcked(push[e.id]) || acknowledgedDirectly(answers[i]) {
				l.lost = append(l.lost, why)
			} else {
				l.unsettled = append(l.unsettled, why)
			}
		}
	}
	// Same-key pairs in one application: both at Svix, or one at Svix and
	// one a duplicate of it.
	pairs := map[string][]int{}
	for i, e := range p.events {
		if e.role == pairOneApp {
			pairs[e.dedupKey()] = append(pairs[e.dedupKey()], i)
		}
	}
	for _, members := range pairs {
		switch a, b := members[0], members[1]; {
		case count[a] == 1 && count[b] == 1:
			l.pairsBoth++
		case count[a] == 1 && provenDuplicate[b], count[b] == 1 && provenDuplicate[a]:
			l.pairsOneDup++
		}
	}
	return l
}

// firstDuplicateAnswer is when the event was first acknowledged as a
// duplicate (a 409 to a producer, or a push answered 200 with outcome
// duplicate); zero if never.
func firstDuplicateAnswer(direct []directAnswer, push []pushAnswer) time.Time {
	var first time.Time
	earlier := func(t time.Time) {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	for _, a := range direct {
		if a.status == http.StatusConflict && !a.gaveUp {
			earlier(a.at)
		}
	}
	for _, a := range push {
		if a.status == http.StatusOK && a.outcome == "duplicate" {
			earlier(a.at)
		}
	}
	return first
}

// pushAcked reports whether gwook answered a push of the event 200.
func pushAcked(answers []pushAnswer) bool {
	for _, a := range answers {
		if a.status == http.StatusOK {
			return true
		}
	}
	return false
}

func acknowledgedDirectly(answers []directAnswer) bool {
	for _, a := range answers {
		if a.acknowledged() {
			return true
		}
	}
	return false
}

// describe says, for an event missing at Svix, what gwook answered for it.
func describe(direct []directAnswer, pushed bool, push []pushAnswer, dupAt time.Time, other bool, otherAt time.Time, started time.Time) string {
	since := func(t time.Time) string { return fmt.Sprintf("%.1fs", t.Sub(started).Seconds()) }
	var why string
	for _, a := range direct {
		switch {
		case a.gaveUp:
			why += fmt.Sprintf("; producer gave up at %s (last status %d)", since(a.at), a.status)
		default:
			why += fmt.Sprintf("; producer got %d at %s", a.status, since(a.at))
		}
	}
	var acked *pushAnswer
	for k := range push {
		if push[k].status == http.StatusOK {
			acked = &push[k]
			break
		}
	}
	switch {
	case acked != nil:
		why += fmt.Sprintf("; push answered 200 %s at %s", acked.outcome, since(acked.at))
	case len(push) > 0:
		last := push[len(push)-1]
		why += fmt.Sprintf("; push never answered 200 (last: %d %s)", last.status, last.outcome)
	case pushed:
		why += "; push never answered"
	}
	switch {
	case !dupAt.IsZero() && !other:
		why += "; no other event with its key is at Svix"
	case !dupAt.IsZero():
		why += fmt.Sprintf("; its partner reached Svix only at %s", since(otherAt))
	}
	return why
}
