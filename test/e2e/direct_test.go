package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/webhook"
	"github.com/gwook/gwook/test/pgtest"
)

// TestDirectDeliverySurvivesSIGKILL sends events to a gwook process that
// delivers them itself to a slow receiver, kills it with SIGKILL while it
// accepts and delivers, starts it again on the same database, and checks
// that every event answered 202 arrives, signed, and that an event
// delivered twice carries the same webhook-id both times.
func TestDirectDeliverySurvivesSIGKILL(t *testing.T) {
	for _, db := range []string{"SQLite", "Postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			env := []string{
				"DELIVERY_BACKEND=direct",
				"DELIVERY_ALLOW_PRIVATE_NETWORKS=true",
				// A job in progress when the process died is rescued after
				// DELIVERY_TIMEOUT and 30 s.
				"DELIVERY_TIMEOUT=1s",
				"DELIVERY_RETRY_SCHEDULE=100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s",
				"AUTH_USERNAME=producer",
				"AUTH_PASSWORD=stats-test-pass",
				"METRICS_PORT=0",
				"LOG_FORMAT=text",
				"DATA_DIR=" + t.TempDir(),
			}
			if db == "Postgres" {
				env = append(env, "DATABASE_URL="+pgtest.NewDatabase(t))
			}
			s := &statsSetup{env: env}
			out, err := s.gwook("token", "create", "--name", "sigkill-test", "--scope", "admin")
			if err != nil {
				t.Fatalf("gwook token create: %v\n%s", err, out)
			}
			s.admin = string(out[:len(out)-1])

			secret := store.NewEndpointSecret()
			receiver, err := webhook.NewReceiver([]string{secret}, webhook.ReceiverOptions{Keep: true})
			if err != nil {
				t.Fatal(err)
			}
			// A slow receiver, so that attempts are in progress when the
			// process dies.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(20 * time.Millisecond)
				receiver.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)

			first := s.start(t, "gwook-1")
			app := "app_" + randomSuffix(t)
			if code, body := s.call(t, first, http.MethodPost, "/api/v1/applications", map[string]any{"id": app, "name": app}); code != http.StatusCreated {
				t.Fatalf("creating the application: %d %s", code, body)
			}
			if code, body := s.call(t, first, http.MethodPost, "/api/v1/applications/"+app+"/endpoints",
				map[string]any{"url": srv.URL + "/webhooks", "secret": secret}); code != http.StatusCreated {
				t.Fatalf("creating the endpoint: %d %s", code, body)
			}

			// Producers send until the process is killed, after 100 events
			// were accepted.
			var mu sync.Mutex
			accepted := map[string]bool{}
			var wg sync.WaitGroup
			killed := make(chan struct{})
			var once sync.Once
			for p := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-killed:
							return
						default:
						}
						id := fmt.Sprintf("evt_%d_%d", p, i)
						if sendQuietly(first, app, id) {
							mu.Lock()
							accepted[id] = true
							n := len(accepted)
							mu.Unlock()
							if n == 100 {
								once.Do(func() {
									_ = first.p.Signal(syscall.SIGKILL)
									close(killed)
								})
							}
						}
					}
				}()
			}
			wg.Wait()
			<-first.p.Done()
			before := len(receiver.Received())

			s.start(t, "gwook-2")
			mu.Lock()
			want := len(accepted)
			mu.Unlock()
			t.Logf("%d events accepted, %d webhooks received before the restart", want, before)

			deadline := time.Now().Add(90 * time.Second)
			for {
				got := webhooksByEvent(t, receiver.Received())
				missing := 0
				for id := range accepted {
					if len(got[id]) == 0 {
						missing++
					}
				}
				if missing == 0 {
					twice := 0
					for id, hooks := range got {
						if len(hooks) > 1 {
							twice++
						}
						for _, h := range hooks {
							if !h.Verified() || h.ID != hooks[0].ID {
								t.Errorf("event %s: webhook %s (verified %v), want every copy verified under webhook-id %s", id, h.ID, h.Verified(), hooks[0].ID)
							}
						}
					}
					t.Logf("all %d accepted events delivered; %d delivered twice (attempts cut off by the kill)", want, twice)
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d accepted events not delivered within 90 s of the restart", missing, want)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

// sendQuietly posts one event of app as a producer and reports whether it
// was answered 202; a connection broken by the kill is not.
func sendQuietly(r *replica, app, id string) bool {
	body := fmt.Sprintf(`{"id":%q,"type":"invoice.paid","source":%q,"project":"sigkill","user_id":%q,"time":"2026-12-01T10:00:00Z","data":{}}`, id, id, app)
	req, err := http.NewRequest(http.MethodPost, r.url+"/notifications", strings.NewReader(body))
	if err != nil {
		return false
	}
	req.SetBasicAuth("producer", "stats-test-pass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted
}

// webhooksByEvent groups received webhooks by the id of the event in
// their body.
func webhooksByEvent(t *testing.T, hooks []webhook.Webhook) map[string][]webhook.Webhook {
	t.Helper()
	out := map[string][]webhook.Webhook{}
	for _, h := range hooks {
		var ev struct{ ID string }
		if err := json.Unmarshal(h.Body, &ev); err != nil {
			t.Fatalf("a webhook body that is not an event: %q", h.Body)
		}
		out[ev.ID] = append(out[ev.ID], h)
	}
	return out
}
