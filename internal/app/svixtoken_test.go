package app_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/deadletter"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/svixserver"
)

// newApp builds Gwook from env (on top of a minimal valid configuration)
// without starting it, and returns its logs.
func newApp(t *testing.T, env map[string]string) (*app.App, *gwooktest.LockedBuffer, error) {
	t.Helper()
	vars := map[string]string{"PUBSUB_VERIFICATION_TOKEN": gwooktest.PushToken, "METRICS_PORT": "0", "DATA_DIR": t.TempDir()}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatal(err)
	}
	logs := &gwooktest.LockedBuffer{}
	a, err := app.New(context.Background(), cfg, app.NewLogger(logs, cfg.LogLevel, cfg.LogFormat), app.Options{})
	if a != nil {
		t.Cleanup(a.Close)
	}
	return a, logs, err
}

func TestWrongSvixTokenRefusesToStart(t *testing.T) {
	svx, err := svixserver.NewServer(svixserver.Options{Token: "sk_right", Validate: true, OnViolation: func(err error) {
		t.Errorf("request does not match the Svix OpenAPI document: %v", err)
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	const wrong = "sk_wrong_token_never_shown"

	_, logs, err := newApp(t, map[string]string{"SVIX_AUTH_TOKEN": wrong, "SVIX_SERVER_URL": srv.URL})
	if err == nil {
		t.Fatal("Gwook started with a token Svix refuses")
	}
	if msg := err.Error(); !strings.Contains(msg, "SVIX_AUTH_TOKEN") || !strings.Contains(msg, "401") || strings.Contains(msg, wrong) {
		t.Errorf("error %q: want it to name SVIX_AUTH_TOKEN and the 401, never the token", msg)
	}
	if strings.Contains(logs.String(), wrong) {
		t.Error("the token reached the logs")
	}

	// The right token starts.
	if _, _, err := newApp(t, map[string]string{"SVIX_AUTH_TOKEN": "sk_right", "SVIX_SERVER_URL": srv.URL}); err != nil {
		t.Errorf("with the right token: %v", err)
	}
}

func TestUnreachableSvixStillStarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	_, logs, err := newApp(t, map[string]string{"SVIX_AUTH_TOKEN": "sk_any", "SVIX_SERVER_URL": deadURL})
	if err != nil {
		t.Fatalf("Gwook refused to start with Svix unreachable: %v", err)
	}
	if lines := logs.Lines("could not check SVIX_AUTH_TOKEN; starting anyway"); len(lines) != 1 {
		t.Errorf("want one warning that the token could not be checked:\n%s", logs.String())
	}
}

// TestRevokedSvixToken: a token Svix refuses after startup fails /ready
// even with a dead-letter topic, and events are answered 5xx (kept by the
// caller), never 4xx, never dead-lettered.
func TestRevokedSvixToken(t *testing.T) {
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "dlq"))
	sub := emu.CreatePullSubscription(t, emu.UniqueID(t, "dlq-sub"), topic, 0)
	h := gwooktest.Start(t, map[string]string{"DEAD_LETTER_TOPIC": topic}, app.Options{SvixTokenCheckInterval: time.Nanosecond})
	ex := examples(t)

	if code, body := get(t, h.URL+"/ready"); code != http.StatusOK || !strings.Contains(body, `"svix_token":"ok"`) {
		t.Fatalf("/ready with the token accepted: %d %s", code, body)
	}
	h.Svix.SetToken("sk_rotated")
	code, body := get(t, h.URL+"/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"svix_token":"down"`) {
		t.Errorf("/ready with the token revoked: %d %s", code, body)
	}
	if strings.Contains(body, gwooktest.SvixToken) {
		t.Errorf("/ready shows the token: %s", body)
	}

	for _, tc := range []struct {
		name string
		send func(*gwooktest.Gwook, testing.TB, []byte) gwooktest.Reply
		body []byte
		want int
	}{
		{"producer", (*gwooktest.Gwook).Direct, ex["event-01.json"], http.StatusInternalServerError},
		{"push", (*gwooktest.Gwook).Push, ex["event-02.json"], http.StatusServiceUnavailable},
	} {
		r := tc.send(h, t, tc.body)
		if r.Status != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.Status, tc.want, r.Body)
			continue
		}
		if p := problemOf(t, r); p.SvixStatus != http.StatusUnauthorized || p.Outcome != "unavailable" || p.DeadLettered {
			t.Errorf("%s: problem %+v", tc.name, p)
		}
	}
	families := h.MetricFamilies(t)
	if f := families["gwook_svix_unauthorized_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Errorf("gwook_svix_unauthorized_total = %v, want 3 (the /ready check and two events)", f)
	}

	// With the token accepted again, a Svix outage does dead-letter: the
	// topic would have shown the events above had they been sent there.
	h.Svix.SetToken("")
	h.Svix.SetDefault(svixserver.Response{Status: http.StatusServiceUnavailable})
	control := ex["event-03.json"]
	if r := h.Direct(t, control); !strings.Contains(string(r.Body), `"dead_lettered":true`) {
		t.Fatalf("a Svix outage was not dead-lettered: %d %s", r.Status, r.Body)
	}
	msgs := emu.DrainFor(t, sub, 500*time.Millisecond, 10*time.Second)
	if len(msgs) != 1 || msgs[0].Attributes[deadletter.AttrEventID] != fieldsOf(t, control).ID {
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.Attributes[deadletter.AttrEventID])
		}
		t.Errorf("dead-letter topic holds %v, want only %s", ids, fieldsOf(t, control).ID)
	}
}
