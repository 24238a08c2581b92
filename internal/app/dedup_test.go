package app_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/httpapi"
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
		env  map[string]string
	}{
		{"memory", nil},
		{"redis", map[string]string{"REDIS_URL": redistest.SharedURL()}},
	} {
		t.Run(store.name, func(t *testing.T) {
			g := gwooktest.Start(t, store.env, app.Options{})
			tag := uniqueTag(t)

			if r := g.Direct(t, eventWithKey(tag, "evt_a1")); r.Status != http.StatusAccepted {
				t.Fatalf("first: %d %s", r.Status, r.Body)
			}
			// Another event with the same type, project and source inside the
			// window: suppressed, 409 to a producer, 200 to a push.
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
	redis := redistest.Start(t)
	for _, tc := range []struct {
		mode       string
		wantStatus int
		wantSvix   int
		wantReady  string // /ready with Redis down
	}{
		{"open", http.StatusAccepted, 1, `200 {"checks":{"redis":"down`},
		{"closed", http.StatusServiceUnavailable, 0, `503 {"checks":{"redis":"down`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			g := gwooktest.Start(t, map[string]string{"REDIS_URL": redis.URL(), "REDIS_TIMEOUT": "200ms", "DEDUP_FAILURE_MODE": tc.mode}, app.Options{})
			tag := uniqueTag(t)
			if r := g.Direct(t, eventWithKey(tag, "evt_up")); r.Status != http.StatusAccepted {
				t.Fatalf("with Redis up: %d %s", r.Status, r.Body)
			}
			if code, body := get(t, g.URL+"/ready"); code != 200 || !strings.Contains(body, `"redis":"ok"`) {
				t.Errorf("/ready: %d %s", code, body)
			}

			redis.Stop(t)
			defer redis.Restart(t)
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
