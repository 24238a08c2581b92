package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/delivery"
	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/webhook"
)

// deliveryWait bounds every wait for direct delivery.
const deliveryWait = 30 * time.Second

// newDirectQueue returns a direct delivery queue on st and its catalog cat,
// retrying after 10 and 20 ms (three attempts), not started, stopped when
// the test ends.
func newDirectQueue(t testing.TB, st *store.Store, cat *catalog.Catalog) *direct.Queue {
	t.Helper()
	sched, err := delivery.ParseSchedule("10ms,20ms")
	if err != nil {
		t.Fatal(err)
	}
	client := delivery.NewClient(delivery.ClientOptions{Timeout: 5 * time.Second, URLs: netguard.Policy{AllowPrivate: true}})
	t.Cleanup(client.CloseIdleConnections)
	q, err := direct.New(st, cat, client, sched, nil, direct.Options{Timeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("stopping the queue: %v", err)
		}
	})
	return q
}

// hookServer is a webhook receiver on a loopback server that answers its
// first `failures` requests 500 without reading them.
type hookServer struct {
	*webhook.Receiver
	url      string
	requests atomic.Int64
}

func newHookServer(t *testing.T, secret string, failures int) *hookServer {
	t.Helper()
	rcv, err := webhook.NewReceiver([]string{secret}, webhook.ReceiverOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &hookServer{Receiver: rcv}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := s.requests.Add(1); n <= int64(failures) {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		rcv.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/hook"
	return s
}

// ids counts the verified webhooks received per webhook-id.
func (s *hookServer) ids() map[string]int {
	n := map[string]int{}
	for _, wh := range s.Received() {
		if wh.Verified() {
			n[wh.ID]++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after deliveryWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, deliveryWait)
		}
		<-tick.C
	}
}

func sendEvent(t *testing.T, q *direct.Queue, appID, id, typ string) string {
	t.Helper()
	raw := fmt.Sprintf(`{"id":%q,"type":%q,"data":{}}`, id, typ)
	res, err := q.Send(context.Background(), appID, &event.Notification{ID: id, Type: typ, Raw: []byte(raw)})
	if err != nil {
		t.Fatalf("sending %s: %v", id, err)
	}
	return res.MessageID
}

// statuses lists the statuses of a list answer's messages.
func statuses(t *testing.T, page map[string]any) []string {
	t.Helper()
	var out []string
	for _, m := range page["data"].([]any) {
		out = append(out, m.(map[string]any)["status"].(string))
	}
	return out
}

func TestMessages(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{allowPrivate: true, direct: true})
		q := h.queue
		h.createApp("app_1")
		h.createApp("app_2")
		secretOK, secretFail := store.NewEndpointSecret(), store.NewEndpointSecret()
		ok := newHookServer(t, secretOK, 0)
		failing := newHookServer(t, secretFail, 3)
		gone := httptest.NewServer(http.NotFoundHandler())
		goneURL := gone.URL + "/hook"
		gone.Close() // connections refused: attempts without a response
		epOK := h.createEndpoint("app_1", map[string]any{"url": ok.url, "secret": secretOK, "event_types": []string{"ok", "both"}})["id"].(string)
		epFail := h.createEndpoint("app_1", map[string]any{"url": failing.url, "secret": secretFail, "event_types": []string{"bad", "both"}})["id"].(string)
		epGone := h.createEndpoint("app_1", map[string]any{"url": goneURL, "event_types": []string{"gone"}})["id"].(string)
		base := "/api/v1/applications/app_1/messages"

		// Sent before any worker runs: pending, but for the message that
		// matched no endpoint, which is delivered.
		msgOK := sendEvent(t, q, "app_1", "ev-ok", "ok")
		msgBad := sendEvent(t, q, "app_1", "ev-bad", "bad")
		msgNone := sendEvent(t, q, "app_1", "ev-none", "none")
		msgGone := sendEvent(t, q, "app_1", "ev-gone", "gone")
		sendEvent(t, q, "app_2", "ev-other", "ok")
		page := h.must(http.StatusOK, h.admin, http.MethodGet, base, nil).json(t)
		if got := statuses(t, page); !slices.Equal(got, []string{"pending", "pending", "delivered", "pending"}) {
			t.Fatalf("statuses before delivery %v", got)
		}
		first := page["data"].([]any)[0].(map[string]any)
		if first["id"] != msgOK || first["event_id"] != "ev-ok" || first["event_type"] != "ok" || first["created_at"] == nil || page["next_cursor"] != nil {
			t.Fatalf("list %v", page)
		}

		// A pending delivery is attempted on its schedule: no resend.
		h.must(http.StatusConflict, h.admin, http.MethodPost, base+"/"+msgOK+"/resend", nil)

		if err := q.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivered and failed", func() bool {
			got := statuses(t, h.must(http.StatusOK, h.admin, http.MethodGet, base, nil).json(t))
			return slices.Equal(got, []string{"delivered", "failed", "delivered", "failed"})
		})

		// Pagination, oldest first, each page with its messages' statuses.
		var ids, paged []string
		path := base + "?limit=3"
		for {
			page := h.must(http.StatusOK, h.admin, http.MethodGet, path, nil).json(t)
			for _, m := range page["data"].([]any) {
				ids = append(ids, m.(map[string]any)["id"].(string))
			}
			paged = append(paged, statuses(t, page)...)
			next, _ := page["next_cursor"].(string)
			if next == "" {
				break
			}
			path = base + "?limit=3&cursor=" + next
		}
		if !slices.Equal(ids, []string{msgOK, msgBad, msgNone, msgGone}) ||
			!slices.Equal(paged, []string{"delivered", "failed", "delivered", "failed"}) {
			t.Fatalf("paged ids %v, statuses %v", ids, paged)
		}
		for _, q := range []string{"?limit=0", "?limit=251", "?cursor=nonsense"} {
			h.must(http.StatusBadRequest, h.admin, http.MethodGet, base+q, nil)
		}

		// One message with its attempts.
		bad := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgBad, nil).json(t)
		if bad["status"] != "failed" || bad["event_id"] != "ev-bad" {
			t.Fatalf("failed message %v", bad)
		}
		attempts := bad["attempts"].([]any)
		if len(attempts) != 3 {
			t.Fatalf("%d attempts, want 3: %v", len(attempts), bad)
		}
		for _, a := range attempts {
			a := a.(map[string]any)
			if a["endpoint_id"] != epFail || a["response_status"] != float64(500) || a["error"] == nil || a["at"] == nil || a["duration_ms"] == nil {
				t.Fatalf("attempt %v", a)
			}
		}
		if d := bad["deliveries"].([]any); len(d) != 1 || d[0].(map[string]any)["status"] != "failed" || d[0].(map[string]any)["attempts"] != float64(3) {
			t.Fatalf("deliveries %v", d)
		}
		for _, a := range h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgGone, nil).json(t)["attempts"].([]any) {
			if a := a.(map[string]any); a["response_status"] != nil || a["error"] == nil {
				t.Fatalf("attempt without a response %v", a)
			}
		}
		okMsg := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgOK, nil).json(t)
		if a := okMsg["attempts"].([]any); len(a) != 1 || a[0].(map[string]any)["response_status"] != float64(204) || a[0].(map[string]any)["error"] != nil {
			t.Fatalf("delivered message %v", okMsg)
		}
		if none := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgNone, nil).json(t); len(none["attempts"].([]any)) != 0 || len(none["deliveries"].([]any)) != 0 {
			t.Fatalf("message for no endpoint %v", none)
		}

		// Resending the failed message: the endpoint now answers.
		resent := h.must(http.StatusAccepted, h.admin, http.MethodPost, base+"/"+msgBad+"/resend", nil).json(t)
		if resent["status"] != "pending" && resent["status"] != "delivered" {
			t.Fatalf("resent message %v", resent)
		}
		waitFor(t, "delivered after the resend", func() bool {
			return h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgBad, nil).json(t)["status"] == "delivered"
		})
		if n := failing.ids()[msgBad]; n != 1 {
			t.Fatalf("the failing endpoint verified %d webhooks of %s, want 1", n, msgBad)
		}
		// Resending a delivered message: a second webhook, same webhook-id.
		h.must(http.StatusAccepted, h.admin, http.MethodPost, base+"/"+msgOK+"/resend", map[string]any{"endpoint_id": epOK})
		waitFor(t, "received twice", func() bool { return ok.ids()[msgOK] == 2 })

		// Resending to one endpoint of two.
		msgBoth := sendEvent(t, q, "app_1", "ev-both", "both")
		waitFor(t, "delivered to both", func() bool {
			return h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgBoth, nil).json(t)["status"] == "delivered"
		})
		h.must(http.StatusAccepted, h.admin, http.MethodPost, base+"/"+msgBoth+"/resend", map[string]any{"endpoint_id": epFail})
		waitFor(t, "resent to one endpoint", func() bool { return failing.ids()[msgBoth] == 2 })
		waitFor(t, "the resend recorded", func() bool {
			m := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgBoth, nil).json(t)
			return m["status"] == "delivered" && len(m["attempts"].([]any)) == 3
		})
		if n := ok.ids()[msgBoth]; n != 1 {
			t.Fatalf("the other endpoint received %s %d times, want once", msgBoth, n)
		}

		// What cannot be resent.
		h.must(http.StatusNotFound, h.admin, http.MethodPost, base+"/msg_nope/resend", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, base+"/msg_nope", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/app_2/messages/"+msgOK, nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/nope/messages", nil)
		notFor := h.must(http.StatusNotFound, h.admin, http.MethodPost, base+"/"+msgOK+"/resend", map[string]any{"endpoint_id": epFail}).json(t)
		if notFor["detail"] != `message "`+msgOK+`" was not for endpoint "`+epFail+`"` {
			t.Errorf("endpoint the message was not for: %v", notFor)
		}
		h.must(http.StatusBadRequest, h.admin, http.MethodPost, base+"/"+msgNone+"/resend", nil)
		h.must(http.StatusBadRequest, h.admin, http.MethodPost, base+"/"+msgOK+"/resend", map[string]any{"unknown": 1})
		h.must(http.StatusOK, h.admin, http.MethodPatch, "/api/v1/applications/app_1/endpoints/"+epOK, map[string]any{"disabled": true})
		disabled := h.must(http.StatusBadRequest, h.admin, http.MethodPost, base+"/"+msgOK+"/resend", map[string]any{"endpoint_id": epOK}).json(t)
		if disabled["detail"] != `endpoint "`+epOK+`" is disabled: enable it to resend to it` {
			t.Errorf("disabled endpoint: %v", disabled)
		}
		h.must(http.StatusBadRequest, h.admin, http.MethodPost, base+"/"+msgOK+"/resend", nil)
		h.must(http.StatusNoContent, h.admin, http.MethodDelete, "/api/v1/applications/app_1/endpoints/"+epGone, nil)
		deleted := h.must(http.StatusNotFound, h.admin, http.MethodPost, base+"/"+msgGone+"/resend", map[string]any{"endpoint_id": epGone}).json(t)
		if deleted["detail"] != `endpoint "`+epGone+`" was deleted, so the message is not sent to it` {
			t.Errorf("deleted endpoint: %v", deleted)
		}
		if n := ok.ids()[msgOK]; n != 2 {
			t.Errorf("the disabled endpoint received %s %d times, want still 2", msgOK, n)
		}

		// Scopes.
		read := h.token(store.NewToken{Name: "read", Scopes: []string{"read"}})
		manage := h.token(store.NewToken{Name: "manage", Scopes: []string{"manage"}, ApplicationID: "app_1"})
		other := h.token(store.NewToken{Name: "other", Scopes: []string{"admin"}, ApplicationID: "app_2"})
		ingest := h.token(store.NewToken{Name: "ingest", Scopes: []string{"ingest"}})
		h.must(http.StatusOK, read, http.MethodGet, base, nil)
		h.must(http.StatusOK, read, http.MethodGet, base+"/"+msgBad, nil)
		h.must(http.StatusForbidden, read, http.MethodPost, base+"/"+msgBad+"/resend", nil)
		h.must(http.StatusOK, manage, http.MethodGet, base, nil)
		h.must(http.StatusAccepted, manage, http.MethodPost, base+"/"+msgBad+"/resend", nil)
		h.must(http.StatusNotFound, other, http.MethodGet, base, nil)
		h.must(http.StatusNotFound, other, http.MethodGet, base+"/"+msgBad, nil)
		h.must(http.StatusNotFound, other, http.MethodPost, base+"/"+msgBad+"/resend", nil)
		h.must(http.StatusForbidden, ingest, http.MethodGet, base, nil)
		h.must(http.StatusUnauthorized, "", http.MethodGet, base, nil)
		waitFor(t, "the last resend delivered", func() bool {
			return h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+msgBad, nil).json(t)["status"] == "delivered"
		})
	})
}

func TestMessagesUnderSvix(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		h.createApp("app_1")
		for _, req := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/applications/app_1/messages"},
			{http.MethodGet, "/api/v1/applications/app_1/messages/msg_x"},
			{http.MethodPost, "/api/v1/applications/app_1/messages/msg_x/resend"},
		} {
			got := h.must(http.StatusNotFound, h.admin, req.method, req.path, nil).json(t)
			if got["detail"] != "messages are kept only with DELIVERY_BACKEND=direct" || got["type"] != "urn:gwook:problem:not_found" {
				t.Errorf("%s %s: %v", req.method, req.path, got)
			}
		}
	})
}
