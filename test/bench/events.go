package main

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
)

// Body kinds: a raw event as a producer POSTs it, or the same event inside
// a Pub/Sub push envelope.
const (
	bodyRaw  = "raw"
	bodyPush = "push"
)

// Credentials gwook is started with; the generator uses them.
const (
	authUser  = "bench"
	authPass  = "bench-password"
	pushToken = "bench-push-token"
	svixToken = "sk_bench"
)

// apps is how many Svix applications (user_id values) the events spread over.
const apps = 16

// events makes events that are unique on id and on the default dedup key
// (type, project, source) for this run and every other: run is a per-run
// prefix and n counts up.
type events struct {
	run string
	n   atomic.Uint64
}

// raw returns a new event, shaped like test/events/event-01.json.
func (e *events) raw() []byte { return e.event(e.n.Add(1)) }

// event returns event number n.
func (e *events) event(n uint64) []byte {
	b := make([]byte, 0, 384)
	b = append(b, `{"id":"evt_`...)
	b = append(b, e.run...)
	b = append(b, '_')
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `","type":"user.signed_up","source":"bench-`...)
	b = append(b, e.run...)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `","project":"acme-web","user_id":"usr_bench_`...)
	b = strconv.AppendUint(b, n%apps, 10)
	b = append(b, `","time":"2026-03-02T08:15:42Z","data":{"email":"maria.lopez@example.com","name":"María López",`+
		`"plan":"pro","referral_code":null,"marketing_opt_in":false,"signup_method":"google_oauth","n":`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `}}`...)
	return b
}

// push returns a new event wrapped in a Pub/Sub push envelope.
func (e *events) push() []byte {
	n := e.n.Add(1)
	ev := e.event(n)
	b := make([]byte, 0, 160+base64.StdEncoding.EncodedLen(len(ev)))
	b = append(b, `{"message":{"data":"`...)
	b = base64.StdEncoding.AppendEncode(b, ev)
	b = append(b, `","messageId":"`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `","publishTime":"2026-03-02T08:15:43Z","attributes":{}},"subscription":"projects/bench/subscriptions/bench"}`...)
	return b
}

// request describes the requests of one body kind against one base URL.
type request struct {
	url    string
	header http.Header
	body   func() []byte
}

// newRequest returns how to POST events of kind to base/notifications:
// raw events with Basic auth, push envelopes with the verification token.
func newRequest(e *events, base, kind string) request {
	h := http.Header{"Content-Type": {"application/json"}}
	u := base + "/notifications"
	if kind == bodyPush {
		return request{url: u + "?token=" + url.QueryEscape(pushToken), header: h, body: e.push}
	}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(authUser+":"+authPass)))
	return request{url: u, header: h, body: e.raw}
}
