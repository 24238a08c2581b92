package app_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/httpapi"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/redistest"
	"github.com/gwook/gwook/test/svixserver"
)

// eventWithKey returns a valid event whose dedup key (type, project,
// source) is made from tag, with its own id.
func eventWithKey(tag, id string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"type":"user.signed_up","source":"src-%s","project":"proj-%s","user_id":"usr_1","time":"2026-01-02T15:04:05Z","data":{}}`,
		id, tag, tag))
}

// uniqueTag keeps keys apart between tests and runs sharing one Redis.
func uniqueTag(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

func TestDuplicateSuppression(t *testing.T) {
	for _, store := range []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"memory", func(*testing.T) map[string]string { return nil }},
		{"redis", func(*testing.T) map[string]string { return map[string]string{"REDIS_URL": redistest.SharedURL()} }},
		{"redis with TLS", func(t *testing.T) map[string]string {
			srv := redistest.StartTLS(t)
			return map[string]string{"REDIS_URL": srv.URL(), "REDIS_TLS_CA_FILE": srv.CAFile}
		}},
		{"redis cluster", func(t *testing.T) map[string]string {
			redistest.Cluster(t) // fails the test, saying how to start it, unless the cluster is up
			return map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(redistest.ClusterAddrs(), ",")}
		}},
		{"redis sentinel", func(t *testing.T) map[string]string {
			redistest.Sentinel(t) // fails the test, saying how to start it, unless the Sentinel is up
			return map[string]string{"REDIS_SENTINEL_ADDRS": strings.Join(redistest.SentinelAddrs(), ","), "REDIS_SENTINEL_MASTER": redistest.SentinelMaster()}
		}},
	} {
		t.Run(store.name, func(t *testing.T) {
			g := gwooktest.Start(t, store.env(t), app.Options{})
			tag := uniqueTag(t)

			if r := g.Direct(t, eventWithKey(tag, "evt_a1")); r.Status != http.StatusAccepted {
				t.Fatalf("first: %d %s", r.Status, r.Body)
			}
			// Another event with the same type, project and source inside the
			// window, after the first was delivered: suppressed, 409 to a
			// producer, 200 to a push.
			r := g.Direct(t, eventWithKey(tag, "evt_a2"))
			if r.Status != http.StatusConflict {
				t.Fatalf("second: %d %s", r.Status, r.Body)
			}
			if p := problemOf(t, r); p.Layer != httpapi.LayerGwook || p.Outcome != "duplicate" || p.SvixStatus != 0 {
				t.Errorf("problem %+v", p)
			}
			if r := g.Push(t, eventWithKey(tag, "evt_a3")); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"duplicate"`)) {
				t.Errorf("push: %d %s", r.Status, r.Body)
			}
			if n := g.Svix.Attempts(); n != 1 {
				t.Errorf("Svix got %d requests, want 1", n)
			}
			// The first event again (a producer's retry) is not a duplicate
			// of itself: it goes to Svix, whose idempotency key answers as
			// the first time and keeps it to one message.
			if r := g.Direct(t, eventWithKey(tag, "evt_a1")); r.Status != http.StatusAccepted {
				t.Errorf("first again: %d %s", r.Status, r.Body)
			}
			if n := len(g.Svix.Messages()); n != 1 {
				t.Errorf("Svix has %d messages, want 1", n)
			}
			// A different key passes.
			if r := g.Direct(t, eventWithKey(tag+"-other", "evt_b1")); r.Status != http.StatusAccepted {
				t.Errorf("other key: %d %s", r.Status, r.Body)
			}
		})
	}
}

func TestFailedSendReleasesTheClaim(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"SVIX_RETRY_MAX_ATTEMPTS": "2", "REDIS_URL": redistest.SharedURL()}, app.Options{})
	tag := uniqueTag(t)
	for _, fail := range []svixserver.Response{{Status: 500}, {Status: 429}, {Status: 422}} {
		g.Svix.SetDefault(fail)
		if r := g.Direct(t, eventWithKey(tag, "evt_r1")); r.Status < 400 {
			t.Fatalf("Svix %d: got %d", fail.Status, r.Status)
		}
	}
	// Every failed attempt gave the key back, so the retry goes through.
	g.Svix.SetDefault(svixserver.Response{})
	if r := g.Direct(t, eventWithKey(tag, "evt_r1")); r.Status != http.StatusAccepted {
		t.Fatalf("retry after failures: %d %s", r.Status, r.Body)
	}
	if n := len(g.Svix.MessagesFor("evt_r1")); n != 1 {
		t.Errorf("Svix has %d messages", n)
	}
}

func TestDedupWindowExpires(t *testing.T) {
	// The window must outlast the send budget (200ms + the claim's release, 1s).
	g := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "1500ms", "SVIX_RETRY_MAX_ELAPSED": "200ms"}, app.Options{})
	tag := uniqueTag(t)
	if r := g.Direct(t, eventWithKey(tag, "evt_w1")); r.Status != http.StatusAccepted {
		t.Fatalf("first: %d", r.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 2; ; i++ {
		r := g.Direct(t, eventWithKey(tag, fmt.Sprintf("evt_w%d", i)))
		if r.Status == http.StatusAccepted {
			break
		}
		if r.Status != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("status %d after the window should have passed", r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDedupOff(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0"}, app.Options{})
	tag := uniqueTag(t)
	for i := range 3 {
		if r := g.Direct(t, eventWithKey(tag, fmt.Sprintf("evt_o%d", i))); r.Status != http.StatusAccepted {
			t.Fatalf("event %d: %d", i, r.Status)
		}
	}
}

func TestRedisGoingAway(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		mode       string
		wantStatus int
		wantSvix   int
		wantReady  string // /ready with Redis down
	}{
		{"open", http.StatusAccepted, 1, `200 {"checks":{"database":"ok","redis":"down`},
		{"closed", http.StatusServiceUnavailable, 0, `503 {"checks":{"database":"ok","redis":"down`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			g := gwooktest.Start(t, map[string]string{"REDIS_URL": srv.URL(), "REDIS_TIMEOUT": "200ms", "DEDUP_FAILURE_MODE": tc.mode}, app.Options{})
			tag := uniqueTag(t)
			if r := g.Direct(t, eventWithKey(tag, "evt_up")); r.Status != http.StatusAccepted {
				t.Fatalf("with Redis up: %d %s", r.Status, r.Body)
			}
			if code, body := get(t, g.URL+"/ready"); code != 200 || !strings.Contains(body, `"redis":"ok"`) {
				t.Errorf("/ready: %d %s", code, body)
			}

			srv.Stop(t)
			defer srv.Restart(t)
			r := g.Direct(t, eventWithKey(tag+"-down", "evt_down"))
			if r.Status != tc.wantStatus {
				t.Fatalf("with Redis down: %d %s", r.Status, r.Body)
			}
			if n := len(g.Svix.MessagesFor("evt_down")); n != tc.wantSvix {
				t.Errorf("Svix has %d messages for the event, want %d", n, tc.wantSvix)
			}
			if tc.mode == "closed" {
				if p := problemOf(t, r); p.Layer != httpapi.LayerGwook || p.Outcome != "dedup_unavailable" {
					t.Errorf("problem %+v", p)
				}
			}
			if code, body := get(t, g.URL+"/ready"); !strings.HasPrefix(fmt.Sprint(code, " ", body), tc.wantReady) {
				t.Errorf("/ready with Redis down: %d %s, want %s...", code, body, tc.wantReady)
			}
			// Failures are logged once per interval, not once per request.
			for i := range 3 {
				g.Direct(t, eventWithKey(tag+"-down", fmt.Sprintf("evt_more%d", i)))
			}
			if n := strings.Count(g.Logs.String(), `"msg":"dedup store failed"`); n != 1 {
				t.Errorf("dedup failure logged %d times, want once", n)
			}
		})
	}
}

// keyOf returns the dedup key of body, an event from eventWithKey, with the
// default key fields, as gwook derives it.
func keyOf(t *testing.T, body []byte) string {
	t.Helper()
	m := ingest.Decode(http.Header{}, body, 0)
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	return dedup.Key(m.Event.UserID, &m.Event, dedup.DefaultKeyFields)
}

// wantTryAgain fails the test unless r is the in-flight answer: 503 from
// gwook, outcome in_flight, and for a producer a Retry-After of at least a
// second and at most the lease.
func wantTryAgain(t *testing.T, r gwooktest.Reply, producer bool, lease time.Duration) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s, want 503", r.Status, r.Body)
	}
	if p := problemOf(t, r); p.Layer != httpapi.LayerGwook || p.Outcome != "in_flight" {
		t.Errorf("problem %+v", p)
	}
	if !producer {
		return
	}
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > lease {
		t.Errorf("Retry-After %q, want whole seconds in [1, %v]", r.Header.Get("Retry-After"), lease)
	}
}

func TestRedeliveryAfterACrashIsDelivered(t *testing.T) {
	// The default send budget: SVIX_RETRY_MAX_ELAPSED + 2 × REDIS_TIMEOUT.
	const lease = 9 * time.Second
	url := redistest.SharedURL()
	g := gwooktest.Start(t, map[string]string{"REDIS_URL": url, "DEDUP_WAIT": "0"}, app.Options{})
	tag := uniqueTag(t)
	body := eventWithKey(tag, "evt_c1")

	// A replica claimed evt_c1 and died during its Svix call: the claim is
	// left in flight.
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	if c, err := dedup.NewRedis(client).Claim(t.Context(), keyOf(t, body), "evt_c1", lease); err != nil || c.Status != dedup.Claimed {
		t.Fatalf("claim of the crashed replica: %+v, %v", c, err)
	}

	// Another event with the key is neither a duplicate nor sent: try again.
	wantTryAgain(t, g.Push(t, eventWithKey(tag, "evt_c2")), false, lease)
	wantTryAgain(t, g.Direct(t, eventWithKey(tag, "evt_c2")), true, lease)
	// The redelivery of evt_c1 is the same event: delivered, not a
	// duplicate of itself.
	if r := g.Push(t, body); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"forwarded"`)) {
		t.Fatalf("redelivery: %d %s", r.Status, r.Body)
	}
	if n := len(g.Svix.MessagesFor("evt_c1")); n != 1 {
		t.Errorf("Svix has %d messages for the event, want 1", n)
	}
	// Now that it is delivered, the other event is a duplicate.
	if r := g.Direct(t, eventWithKey(tag, "evt_c2")); r.Status != http.StatusConflict {
		t.Errorf("other event after the delivery: %d %s", r.Status, r.Body)
	}
	if n := len(g.Svix.MessagesFor("evt_c2")); n != 0 {
		t.Errorf("Svix has %d messages for the other event, want 0", n)
	}
	got := scrape(t, g)
	for name, want := range map[string]float64{
		`gwook_dedup_claims_total{result=own}`:       1,
		`gwook_dedup_claims_total{result=in_flight}`: 2,
		`gwook_dedup_claims_total{result=duplicate}`: 1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

func TestEventWhoseKeyIsInFlight(t *testing.T) {
	// The lease is the send budget: SVIX_RETRY_MAX_ELAPSED and the claim's
	// settling, and with Redis the claim command's own budget too.
	for _, store := range []struct {
		name  string
		env   map[string]string
		lease time.Duration
	}{
		{"memory", map[string]string{"DEDUP_WAIT": "0"}, 9 * time.Second},
		{"redis", map[string]string{"DEDUP_WAIT": "0", "REDIS_URL": redistest.SharedURL()}, 12 * time.Second},
	} {
		lease := store.lease
		t.Run(store.name, func(t *testing.T) {
			g := gwooktest.Start(t, store.env, app.Options{})
			tag := uniqueTag(t)
			g.Svix.Script(svixserver.Response{Delay: time.Second})
			first := make(chan gwooktest.Reply, 1)
			go func() { first <- g.Direct(t, eventWithKey(tag, "evt_f1")) }()
			waitForSvixAttempts(t, g, 1)

			wantTryAgain(t, g.Direct(t, eventWithKey(tag, "evt_f2")), true, lease)
			wantTryAgain(t, g.Push(t, eventWithKey(tag, "evt_f2")), false, lease)
			if r := <-first; r.Status != http.StatusAccepted {
				t.Fatalf("first: %d %s", r.Status, r.Body)
			}
			// Delivered now: the second is a duplicate (409, push 200).
			if r := g.Direct(t, eventWithKey(tag, "evt_f2")); r.Status != http.StatusConflict {
				t.Errorf("second after the first was delivered: %d %s", r.Status, r.Body)
			}
			if r := g.Push(t, eventWithKey(tag, "evt_f2")); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"duplicate"`)) {
				t.Errorf("push after the first was delivered: %d %s", r.Status, r.Body)
			}
			if n := len(g.Svix.MessagesFor("evt_f2")); n != 0 {
				t.Errorf("Svix has %d messages for the second event, want 0", n)
			}
			got := scrape(t, g)
			for name, want := range map[string]float64{
				`gwook_events_total{entry=direct,outcome=in_flight}`: 1,
				`gwook_events_total{entry=push,outcome=in_flight}`:   1,
				`gwook_dedup_claims_total{result=in_flight}`:         2,
				`gwook_dedup_claims_total{result=duplicate}`:         2,
			} {
				if got[name] != want {
					t.Errorf("%s = %v, want %v", name, got[name], want)
				}
			}
		})
	}
}

func TestEventWaitsForTheHoldersOutcome(t *testing.T) {
	for _, tc := range []struct {
		name   string
		holder svixserver.Response
		want   int // the waiting producer's status
	}{
		{"holder delivered", svixserver.Response{Delay: 300 * time.Millisecond}, http.StatusConflict},
		{"holder failed", svixserver.Response{Delay: 300 * time.Millisecond, Status: http.StatusUnprocessableEntity}, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gwooktest.Start(t, map[string]string{"DEDUP_WAIT": "5s", "REDIS_URL": redistest.SharedURL()}, app.Options{})
			tag := uniqueTag(t)
			g.Svix.Script(tc.holder)
			first := make(chan gwooktest.Reply, 1)
			go func() { first <- g.Direct(t, eventWithKey(tag, "evt_h1")) }()
			waitForSvixAttempts(t, g, 1)
			if r := g.Direct(t, eventWithKey(tag, "evt_h2")); r.Status != tc.want {
				t.Errorf("waiting event: %d %s, want %d", r.Status, r.Body, tc.want)
			}
			<-first
			if n := len(g.Svix.Messages()); n != 1 {
				t.Errorf("Svix has %d messages, want 1", n)
			}
		})
	}
}

// TestClaimSettledWhileRedisIsDown stops Redis during the Svix call: the
// commit or release that follows fails, is counted and logged, and the
// answer is the send's. The answer does not wait for a commit, so its
// failure is counted soon after.
func TestClaimSettledWhileRedisIsDown(t *testing.T) {
	for _, tc := range []struct {
		name      string
		svix      svixserver.Response
		want      int
		operation string
		log       string
	}{
		{"commit", svixserver.Response{Delay: 300 * time.Millisecond}, http.StatusAccepted, "commit", "committing dedup claim failed"},
		{"release", svixserver.Response{Delay: 300 * time.Millisecond, Status: http.StatusUnprocessableEntity}, http.StatusUnprocessableEntity, "release", "releasing dedup claim failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			g := gwooktest.Start(t, map[string]string{"REDIS_URL": srv.URL(), "REDIS_TIMEOUT": "100ms", "SVIX_RETRY_MAX_ATTEMPTS": "1"}, app.Options{})
			g.Svix.Script(tc.svix)
			reply := make(chan gwooktest.Reply, 1)
			go func() { reply <- g.Direct(t, eventWithKey(uniqueTag(t), "evt_s1")) }()
			waitForSvixAttempts(t, g, 1)
			srv.Stop(t)
			if r := <-reply; r.Status != tc.want {
				t.Errorf("status %d %s, want %d", r.Status, r.Body, tc.want)
			}
			metric := `gwook_dedup_errors_total{operation=` + tc.operation + `}`
			for deadline := time.Now().Add(5 * time.Second); scrape(t, g)[metric] != 1 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if got := scrape(t, g)[metric]; got != 1 {
				t.Errorf("%s = %v, want 1", metric, got)
			}
			if !strings.Contains(g.Logs.String(), tc.log) {
				t.Errorf("no %q in the logs", tc.log)
			}
		})
	}
}

func TestApplicationsDoNotSuppressEachOther(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"REDIS_URL": redistest.SharedURL()}, app.Options{})
	tag := uniqueTag(t)
	for i, user := range []string{"usr_a", "usr_b"} {
		body := bytes.Replace(eventWithKey(tag, fmt.Sprint("evt_app", i)), []byte(`"usr_1"`), []byte(strconv.Quote(user)), 1)
		if r := g.Direct(t, body); r.Status != http.StatusAccepted {
			t.Errorf("event for %s: %d %s", user, r.Status, r.Body)
		}
	}
	if r := g.Direct(t, eventWithKey(tag, "evt_app3")); r.Status != http.StatusAccepted {
		t.Errorf("event for usr_1: %d %s", r.Status, r.Body)
	}
	if r := g.Direct(t, eventWithKey(tag, "evt_app4")); r.Status != http.StatusConflict {
		t.Errorf("second event for usr_1: %d %s, want 409", r.Status, r.Body)
	}
}

// waitForSvixAttempts waits until the Svix server behind g has had n
// message-creation requests.
func waitForSvixAttempts(t *testing.T, g *gwooktest.Gwook, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.Svix.Attempts() < n {
		if time.Now().After(deadline) {
			t.Fatalf("Svix had %d requests after 5s, want %d", g.Svix.Attempts(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
