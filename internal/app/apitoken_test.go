package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/gwooktest"
)

// createToken makes a token straight in g's database and waits until g
// accepts it for /notifications or, without the ingest scope, refuses it
// with 403 rather than 401.
func createToken(t testing.TB, g *gwooktest.Gwook, nt store.NewToken) (store.Token, string) {
	t.Helper()
	tok, value, err := g.App.Store().CreateToken(context.Background(), nt)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := postWithToken(t, g, value, event(t, "evt_probe_"+tok.ID, "probe.sent"))
		if r.Status != http.StatusUnauthorized {
			return tok, value
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token is still refused 5 s after its creation: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func postWithToken(t testing.TB, g *gwooktest.Gwook, token string, body []byte) gwooktest.Reply {
	t.Helper()
	return g.Post(t, "/notifications", http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}, body)
}

func event(t testing.TB, id, typ string) []byte {
	t.Helper()
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"source":"billing","project":"p1","user_id":"usr_1","time":"2026-01-02T15:04:05Z","data":{}}`, id, typ)
}

func TestNotificationsWithAPIToken(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0"}, app.Options{})
	tok, ingest := createToken(t, g, store.NewToken{Name: "producer", Scopes: []string{"ingest"}})
	if r := postWithToken(t, g, ingest, event(t, "evt_token_1", "order.paid")); r.Status != http.StatusAccepted {
		t.Fatalf("an ingest token: %d %s, want 202", r.Status, r.Body)
	}
	_, read := createToken(t, g, store.NewToken{Name: "reader", Scopes: []string{"read"}})
	if r := postWithToken(t, g, read, event(t, "evt_token_2", "order.paid")); r.Status != http.StatusForbidden {
		t.Errorf("a read token: %d %s, want 403", r.Status, r.Body)
	}
	if r := postWithToken(t, g, store.NewTokenValue(), event(t, "evt_token_3", "order.paid")); r.Status != http.StatusUnauthorized ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("an unknown token: %d %q, want 401 with a Bearer challenge", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// A token restricted to an application sends that application's events.
	if _, err := g.App.Store().CreateApplication(context.Background(), store.Application{ID: "usr_1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	_, restricted := createToken(t, g, store.NewToken{Name: "one", Scopes: []string{"ingest"}, ApplicationID: "usr_1"})
	other := bytes.Replace(event(t, "evt_token_4", "order.paid"), []byte(`"usr_1"`), []byte(`"usr_2"`), 1)
	if r := postWithToken(t, g, restricted, other); r.Status != http.StatusForbidden {
		t.Errorf("another application's event with a restricted token: %d %s, want 403", r.Status, r.Body)
	}
	if r := postWithToken(t, g, restricted, event(t, "evt_token_5", "order.paid")); r.Status != http.StatusAccepted {
		t.Errorf("its own application's event with a restricted token: %d %s, want 202", r.Status, r.Body)
	}

	// The log line names the token by its id, never by its value.
	logs := g.Logs.String()
	if !strings.Contains(logs, tok.ID) || strings.Contains(logs, ingest) || strings.Contains(logs, read) {
		t.Errorf("the logs should name %s and no token value:\n%s", tok.ID, logs)
	}
	if n := counterValue(t, g, "gwook_api_token_requests_total", "token_id", tok.ID); n < 2 {
		t.Errorf("gwook_api_token_requests_total{token_id=%q} = %v, want at least 2", tok.ID, n)
	}

	// Deleted, the token is refused within 5 seconds.
	if err := g.App.Store().DeleteToken(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		r := postWithToken(t, g, ingest, event(t, fmt.Sprintf("evt_token_del_%d", i), "order.paid"))
		if r.Status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a deleted token is still accepted after 5 s: %d", r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUnknownApplication(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0", "UNKNOWN_APPLICATION": "drop"}, app.Options{})
	r := g.Direct(t, event(t, "evt_unknown_1", "order.paid"))
	if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"outcome":"no_application"`)) {
		t.Fatalf("an event for a user without an application: %d %s, want 200 no_application", r.Status, r.Body)
	}
	if n := len(g.Svix.Messages()); n != 0 {
		t.Errorf("Svix got %d messages for a user without an application", n)
	}
	for line := range strings.Lines(g.Logs.String()) {
		if strings.Contains(line, `"outcome":"no_application"`) && !strings.Contains(line, `"level":"DEBUG"`) {
			t.Errorf("a no_application event is logged above debug level: %s", line)
		}
	}
	if _, err := g.App.Store().CreateApplication(context.Background(), store.Application{ID: "usr_1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		r := g.Direct(t, event(t, fmt.Sprintf("evt_known_%d", i), "order.paid"))
		if r.Status == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the application was created its events are still answered %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := counterValue(t, g, "gwook_events_total", "outcome", "no_application"); n < 1 {
		t.Errorf("gwook_events_total{outcome=no_application} = %v, want at least 1", n)
	}
}

// counterValue sums the counter name over the series whose label is value.
func counterValue(t *testing.T, g *gwooktest.Gwook, name, label, value string) float64 {
	t.Helper()
	var sum float64
	for _, m := range g.MetricFamilies(t)[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func basicValue() string {
	return base64.StdEncoding.EncodeToString([]byte(gwooktest.Username + ":" + gwooktest.Password))
}

// BenchmarkNotificationsAuth compares producers authenticating with Basic
// and with an API token: the same event path, only the check differs. The
// two alternate, request by request, 16 at a time, so that drift of the
// machine weighs on both alike; it reports the mean time of each and the
// bearer/basic ratio (throughput at a fixed concurrency is its inverse).
func BenchmarkNotificationsAuth(b *testing.B) {
	g := gwooktest.Start(b, map[string]string{"DEDUP_TTL": "0", "LOG_LEVEL": "warn"}, app.Options{})
	_, ingest := createToken(b, g, store.NewToken{Name: "bench", Scopes: []string{"ingest"}})
	headers := [2]http.Header{
		{"Content-Type": {"application/json"}, "Authorization": {"Basic " + basicValue()}},
		{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + ingest}},
	}
	var mu sync.Mutex
	var took [2]time.Duration
	var count [2]int
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine [2]time.Duration
		var n [2]int
		for pb.Next() {
			i := seq.Add(1)
			which := int(i % 2)
			body := event(b, fmt.Sprintf("evt_bench_%d", i), "order.paid")
			start := time.Now()
			r := g.Post(b, "/notifications", headers[which], body)
			mine[which] += time.Since(start)
			n[which]++
			if r.Status != http.StatusAccepted {
				b.Errorf("%d %s", r.Status, r.Body)
				return
			}
		}
		mu.Lock()
		for k := range 2 {
			took[k] += mine[k]
			count[k] += n[k]
		}
		mu.Unlock()
	})
	if count[0] > 0 && count[1] > 0 {
		basic := took[0].Seconds() / float64(count[0])
		bearer := took[1].Seconds() / float64(count[1])
		b.ReportMetric(basic*1e6, "basic-µs")
		b.ReportMetric(bearer*1e6, "bearer-µs")
		b.ReportMetric(bearer/basic, "bearer/basic")
	}
}
