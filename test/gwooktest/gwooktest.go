// Package gwooktest runs a Gwook in-process for tests, in front of a
// Svix-compatible test server, with its logs captured and checked for
// secrets when the test ends.
package gwooktest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/test/logbuf"
	"github.com/gwook/gwook/test/svixserver"
)

// Credentials every Gwook started here is configured with.
const (
	Username  = "admin"
	Password  = "producer-secret-pass"
	SvixToken = "sk_test_never_in_logs.eu"
	PushToken = "push-verification-token"
	// FirehoseKey is the one key of FIREHOSE_ACCESS_KEYS.
	FirehoseKey = "firehose-access-key-never-in-logs"
)

// Gwook is a running service and the Svix-compatible server behind it.
type Gwook struct {
	URL  string
	App  *app.App
	Svix *svixserver.Server
	Logs *LockedBuffer
}

// Start runs Gwook on a loopback port for tb. env overrides the test
// defaults (Basic auth, verification token, fast retries, debug logs).
func Start(tb testing.TB, env map[string]string, opts app.Options) *Gwook {
	tb.Helper()
	svx := svixserver.New(tb)
	vars := map[string]string{
		"SVIX_AUTH_TOKEN":             SvixToken,
		"SVIX_SERVER_URL":             svx.URL(),
		"AUTH_USERNAME":               Username,
		"AUTH_PASSWORD":               Password,
		"PUBSUB_VERIFICATION_TOKEN":   PushToken,
		"FIREHOSE_ACCESS_KEYS":        FirehoseKey,
		"SVIX_RETRY_INITIAL_INTERVAL": "1ms",
		"SVIX_RETRY_MAX_INTERVAL":     "5ms",
		"LOG_LEVEL":                   "debug",
		"METRICS_PORT":                "0",
		"DATA_DIR":                    tb.TempDir(),
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(vars))
	if err != nil {
		tb.Fatal(err)
	}
	logs := &LockedBuffer{}
	a, err := app.New(context.Background(), cfg, app.NewLogger(logs, cfg.LogLevel, cfg.LogFormat), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	srv := httptest.NewServer(a.Handler())
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() {
		out := logs.String()
		for _, secret := range []string{Password, SvixToken, PushToken, FirehoseKey} {
			if strings.Contains(out, secret) {
				tb.Errorf("a secret reached the logs: %q", secret)
			}
		}
	})
	return &Gwook{URL: srv.URL, App: a, Svix: svx, Logs: logs}
}

// PushURL is the push endpoint for a subscription authenticated with the
// verification token.
func (g *Gwook) PushURL() string {
	return g.URL + "/notifications?token=" + PushToken
}

// Reply is an HTTP answer, read whole.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Post sends body to target (a path with query) with header.
func (g *Gwook) Post(tb testing.TB, target string, header http.Header, body []byte) Reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL+target, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Direct POSTs body as a producer with Basic auth.
func (g *Gwook) Direct(tb testing.TB, body []byte) Reply {
	tb.Helper()
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(Username+":"+Password)))
	h.Set("Content-Type", "application/json")
	return g.Post(tb, "/notifications", h, body)
}

// Push POSTs body wrapped in a Pub/Sub push envelope, authenticated with the
// verification token.
func (g *Gwook) Push(tb testing.TB, body []byte) Reply {
	tb.Helper()
	env := fmt.Sprintf(`{"message":{"data":%q,"messageId":"m-1","publishTime":"2026-01-02T15:04:05Z","attributes":{}},"subscription":"projects/p/subscriptions/gwook"}`,
		base64.StdEncoding.EncodeToString(body))
	return g.Post(tb, "/notifications?token="+PushToken, http.Header{"Content-Type": {"application/json"}}, []byte(env))
}

// Firehose POSTs body to /firehose as Kinesis Data Firehose does, with
// request id id and the access key FirehoseKey; header's values are added
// on top.
func (g *Gwook) Firehose(tb testing.TB, id string, header http.Header, body []byte) Reply {
	tb.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Firehose-Protocol-Version", "1.0")
	h.Set("X-Amz-Firehose-Request-Id", id)
	h.Set("X-Amz-Firehose-Source-Arn", "arn:aws:firehose:us-east-1:123456789:deliverystream/testStream")
	h.Set("X-Amz-Firehose-Access-Key", FirehoseKey)
	for k, v := range header {
		h[k] = v
	}
	return g.Post(tb, "/firehose", h, body)
}

// MetricFamilies scrapes GET /metrics and parses the Prometheus text.
func (g *Gwook) MetricFamilies(tb testing.TB) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return families
}

// LockedBuffer collects log output written from many goroutines.
type LockedBuffer = logbuf.Buffer
