package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/telemetry"
)

// The documented shapes of the protocol, recorded from AWS's documentation.
const firehoseTestdata = "../ingest/testdata/firehose/"

// Credentials of the Firehose tests.
const (
	oldFirehoseKey = "firehose-key-old-0000000001"
	newFirehoseKey = "firehose-key-new-0000000002"
	ingestToken    = store.TokenPrefix + "ingest0000000000000000000000000000000000000"
	readToken      = store.TokenPrefix + "read000000000000000000000000000000000000000"
	appToken       = store.TokenPrefix + "app0000000000000000000000000000000000000000"
)

// testTokens knows the three tokens above.
func testTokens(value string) (store.Token, error) {
	switch value {
	case ingestToken:
		return store.Token{ID: "tok_ingest", Scopes: []string{"ingest"}}, nil
	case readToken:
		return store.Token{ID: "tok_read", Scopes: []string{"read"}}, nil
	case appToken:
		return store.Token{ID: "tok_app", Scopes: []string{"ingest"}, ApplicationID: "usr_1"}, nil
	}
	return store.Token{}, errors.New("unknown token")
}

// scriptedBackend answers each event by its id: the Sent of script when it
// has one, forwarded otherwise. It counts the events it was sent and how
// many it held at once; while gate is open (not nil), each send waits on it.
type scriptedBackend struct {
	script map[string]pipeline.Sent
	gate   chan struct{}

	mu      sync.Mutex
	sent    []string
	holding atomic.Int64
	most    atomic.Int64
}

func (b *scriptedBackend) Send(_ context.Context, _ string, n *event.Notification) pipeline.Sent {
	now := b.holding.Add(1)
	defer b.holding.Add(-1)
	for {
		most := b.most.Load()
		if now <= most || b.most.CompareAndSwap(most, now) {
			break
		}
	}
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	b.sent = append(b.sent, n.ID)
	b.mu.Unlock()
	if s, ok := b.script[n.ID]; ok {
		return s
	}
	return pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Forwarded, MessageID: "msg_" + n.ID, Status: 202, Attempts: 1}
}

func (b *scriptedBackend) sends() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.sent)
}

// firehoseRig is a router with a pipeline over a scriptedBackend.
type firehoseRig struct {
	router  http.Handler
	backend *scriptedBackend
	health  *Health
	metrics *telemetry.Metrics
	logs    *bytes.Buffer
}

// newFirehoseRig builds a router that takes both Firehose keys and the
// test tokens. change, when set, adjusts its Deps first.
func newFirehoseRig(t *testing.T, backend *scriptedBackend, change func(*Deps)) *firehoseRig {
	t.Helper()
	if backend == nil {
		backend = &scriptedBackend{}
	}
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	metrics := telemetry.NewMetrics("test")
	d := Deps{
		Pipeline:      pipeline.New(pipeline.Config{Backend: backend, Logger: logger}),
		Health:        NewHealth(0, logger),
		Auth:          &Authenticator{FirehoseKeys: []string{oldFirehoseKey, newFirehoseKey}, APITokens: testTokens, Metrics: metrics},
		MaxBodyBytes:  1 << 20,
		MaxEventBytes: 64 << 10,
		InFlight:      InFlightLimit{MaxBodyBytes: 1 << 20},
		Logger:        logger,
		Metrics:       metrics,
	}
	if change != nil {
		change(&d)
	}
	return &firehoseRig{router: NewRouter(d), backend: backend, health: d.Health, metrics: metrics, logs: logs}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// documentedHeaders are the request headers of AWS's documentation.
func documentedHeaders(t *testing.T) http.Header {
	t.Helper()
	var values map[string]string
	if err := json.Unmarshal(readTestdata(t, "request-headers.json"), &values); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range values {
		h.Set(k, v)
	}
	return h
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(firehoseTestdata + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firehoseReply is an answer to POST /firehose.
type firehoseReply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// post sends body with the documented headers, the request id id and
// header's values on top.
func (rig *firehoseRig) post(t *testing.T, id string, header http.Header, body []byte) firehoseReply {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/firehose", bytes.NewReader(body))
	maps.Copy(req.Header, documentedHeaders(t))
	req.Header.Set(HeaderFirehoseRequestID, id)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	before := time.Now().UnixMilli()
	rig.router.ServeHTTP(w, req)
	after := time.Now().UnixMilli()
	return checkFirehoseAnswer(t, w, id, before, after)
}

// checkFirehoseAnswer checks what every answer to /firehose must be, 200
// or not: application/json with a Content-Length, the request's id, a
// timestamp in Unix milliseconds taken while it was answered, and an
// errorMessage exactly when the status is not 200; the members those of
// AWS's documented answers, of the same JSON types.
func checkFirehoseAnswer(t *testing.T, w *httptest.ResponseRecorder, id string, before, after int64) firehoseReply {
	t.Helper()
	r := firehoseReply{status: w.Code, header: w.Header(), raw: w.Body.Bytes()}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.raw)) {
		t.Errorf("Content-Length %q for %d bytes", cl, len(r.raw))
	}
	if err := json.Unmarshal(r.raw, &r.body); err != nil {
		t.Fatalf("answer %d %q: %v", r.status, r.raw, err)
	}
	documented := "response-success.json"
	if r.status != http.StatusOK {
		documented = "response-failure.json"
	}
	var want map[string]any
	if err := json.Unmarshal(readTestdata(t, documented), &want); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if reflect.TypeOf(r.body[k]) != reflect.TypeOf(v) {
			t.Errorf("%d answer %s: %s is %T, want %T as in %s", r.status, r.raw, k, r.body[k], v, documented)
		}
	}
	if len(r.body) != len(want) {
		t.Errorf("%d answer %s: want exactly the members of %s", r.status, r.raw, documented)
	}
	if r.body["requestId"] != id {
		t.Errorf("requestId %v, want %q", r.body["requestId"], id)
	}
	if ts, _ := r.body["timestamp"].(float64); int64(ts) < before || int64(ts) > after {
		t.Errorf("timestamp %v, want between %d and %d", r.body["timestamp"], before, after)
	}
	return r
}

func (r firehoseReply) errorMessage() string { s, _ := r.body["errorMessage"].(string); return s }

// eventJSON is a valid event with the given id, for the application usr_1.
func eventJSON(id string) string {
	return `{"id":"` + id + `","type":"user.signed_up","source":"accounts","project":"acme","user_id":"usr_1","time":"2026-03-02T08:15:42Z","data":{}}`
}

// batch is a Firehose request body of the given records, each encoded.
func batch(id string, records ...string) []byte {
	type rec struct {
		Data string `json:"data"`
	}
	body := struct {
		RequestID string `json:"requestId"`
		Timestamp int64  `json:"timestamp"`
		Records   []rec  `json:"records"`
	}{RequestID: id, Timestamp: time.Now().UnixMilli(), Records: []rec{}}
	for _, r := range records {
		body.Records = append(body.Records, rec{base64.StdEncoding.EncodeToString([]byte(r))})
	}
	b, _ := json.Marshal(body)
	return b
}

// events is n valid events, evt_<prefix>_0 and on.
func events(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = eventJSON(fmt.Sprintf("evt_%s_%d", prefix, i))
	}
	return out
}

func key(k string) http.Header { return http.Header{HeaderFirehoseAccessKey: {k}} }

func TestFirehoseDocumentedRequest(t *testing.T) {
	rig := newFirehoseRig(t, nil, nil)
	// Its records, "hello" and "hello world", are not events; without a
	// dead-letter topic nothing can take them, so the batch is refused
	// (Firehose retries, then keeps it in its backup bucket).
	r := rig.post(t, "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", key(oldFirehoseKey), readTestdata(t, "request.json"))
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(), "2 of 2 records") ||
		!strings.Contains(r.errorMessage(), "record 0 invalid: body is not valid JSON") {
		t.Errorf("%d %s", r.status, r.raw)
	}
	if n := len(rig.backend.sends()); n != 0 {
		t.Errorf("%d records sent", n)
	}
}

func TestFirehoseDeliversEveryRecord(t *testing.T) {
	rig := newFirehoseRig(t, nil, nil)
	recs := events("all", 40)
	r := rig.post(t, "req-all", key(oldFirehoseKey), batch("req-all", recs...))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	got := rig.backend.sends()
	slices.Sort(got)
	want := make([]string, len(recs))
	for i := range want {
		want[i] = fmt.Sprintf("evt_all_%d", i)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("sent %v, want each record once", got)
	}
	// Nothing to do is done.
	if r := rig.post(t, "req-none", key(oldFirehoseKey), batch("req-none")); r.status != http.StatusOK {
		t.Errorf("no records: %d %s", r.status, r.raw)
	}
}

func TestFirehoseAuth(t *testing.T) {
	body := func(id string) []byte { return batch(id, eventJSON("evt_auth_"+id)) }
	for _, tc := range []struct {
		name   string
		keys   []string
		header http.Header
		status int
		caller Caller
		detail string
	}{
		{"first key", nil, key(oldFirehoseKey), 200, CallerFirehoseKey, ""},
		{"second key, during a rotation", nil, key(newFirehoseKey), 200, CallerFirehoseKey, ""},
		{"wrong key", nil, key("firehose-key-wrong-000000003"), 401, "", "authentication failed: wrong Firehose access key"},
		{"a key's prefix", nil, key(oldFirehoseKey[:20]), 401, "", "wrong Firehose access key"},
		{"no key", nil, http.Header{}, 401, "", "authentication failed: no credentials"},
		{"a key with none configured", []string{}, key(oldFirehoseKey), 401, "", "no Firehose access key is configured (FIREHOSE_ACCESS_KEYS)"},
		{"bearer API token", []string{}, http.Header{"Authorization": {"Bearer " + ingestToken}}, 200, CallerAPIToken, ""},
		{"API token as the access key", []string{}, key(ingestToken), 200, CallerAPIToken, ""},
		{"API token without the ingest scope", nil, http.Header{"Authorization": {"Bearer " + readToken}}, 403, "",
			"authentication failed: the API token lacks the ingest scope"},
		{"unknown API token", nil, http.Header{"Authorization": {"Bearer " + store.TokenPrefix + "unknown"}}, 401, "", "unknown or expired API token"},
		{"Basic auth is not for Firehose", nil, http.Header{"Authorization": {"Basic dTpw"}}, 401, "", "no credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newFirehoseRig(t, nil, func(d *Deps) {
				d.Auth.Username, d.Auth.Password = "u", "p"
				if tc.keys != nil {
					d.Auth.FirehoseKeys = tc.keys
				}
			})
			id := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			r := rig.post(t, id, tc.header, body(id))
			if r.status != tc.status || !strings.Contains(r.errorMessage(), tc.detail) {
				t.Fatalf("%d %s, want %d with %q", r.status, r.raw, tc.status, tc.detail)
			}
			if sent := len(rig.backend.sends()); (tc.status == 200) != (sent == 1) {
				t.Errorf("%d records sent", sent)
			}
			logs := rig.logs.String()
			for _, secret := range []string{oldFirehoseKey, newFirehoseKey, ingestToken, readToken} {
				if strings.Contains(logs, secret) {
					t.Errorf("a secret reached the logs: %s", logs)
				}
			}
			if tc.caller != "" && !strings.Contains(logs, `"caller":"`+string(tc.caller)+`"`) {
				t.Errorf("the log line does not name the caller %s: %s", tc.caller, logs)
			}
			if tc.status != 200 && !strings.Contains(scrape(t, rig.metrics), "gwook_auth_failures_total{method=") {
				t.Error("the failure was not counted")
			}
		})
	}
}

func TestFirehoseTokenRestrictedToAnApplication(t *testing.T) {
	rig := newFirehoseRig(t, nil, nil)
	other := strings.Replace(eventJSON("evt_other"), `"usr_1"`, `"usr_2"`, 1)
	r := rig.post(t, "req-app", key(appToken), batch("req-app", eventJSON("evt_mine"), other))
	if r.status != http.StatusForbidden || !strings.Contains(r.errorMessage(), "record 1 (event evt_other) forbidden: this API token may only send events whose user_id is usr_1") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if got := rig.backend.sends(); !slices.Equal(got, []string{"evt_mine"}) {
		t.Errorf("sent %v, want only the token's application's event", got)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFirehoseGzip(t *testing.T) {
	const limit = 64 << 10
	rig := newFirehoseRig(t, nil, func(d *Deps) { d.MaxBodyBytes, d.InFlight.MaxBodyBytes = limit, limit })
	gz := http.Header{"Content-Encoding": {"gzip"}, HeaderFirehoseAccessKey: {oldFirehoseKey}}

	if r := rig.post(t, "req-gzip", gz, gzipped(t, batch("req-gzip", events("gz", 3)...))); r.status != http.StatusOK {
		t.Fatalf("gzip: %d %s", r.status, r.raw)
	}
	if n := len(rig.backend.sends()); n != 3 {
		t.Fatalf("%d records sent, want 3", n)
	}

	// Small as sent, larger than MAX_BODY_BYTES once decompressed: 400, not
	// 413, which Firehose would drop without keeping the batch.
	large := batch("req-bomb", strings.Repeat(" ", limit))
	if r := rig.post(t, "req-bomb", gz, gzipped(t, large)); r.status != http.StatusBadRequest ||
		r.errorMessage() != fmt.Sprintf("the body exceeds %d bytes (MAX_BODY_BYTES) as sent or decompressed; set the delivery stream's buffer size below it", limit) {
		t.Errorf("decompressed above the limit: %d %s", r.status, r.raw)
	}
	if r := rig.post(t, "req-large", key(oldFirehoseKey), large); r.status != http.StatusBadRequest ||
		!strings.Contains(r.errorMessage(), "MAX_BODY_BYTES") {
		t.Errorf("above the limit as sent: %d %s", r.status, r.raw)
	}
	broken := gzipped(t, batch("req-broken", events("broken", 1)...))
	broken[len(broken)-5] ^= 0xff // the checksum
	if r := rig.post(t, "req-broken", gz, broken); r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(), "gzip encoding is broken") {
		t.Errorf("a broken checksum: %d %s", r.status, r.raw)
	}
	if r := rig.post(t, "req-plain", gz, batch("req-plain", events("plain", 1)...)); r.status != http.StatusBadRequest {
		t.Errorf("not gzip at all: %d %s", r.status, r.raw)
	}
	br := http.Header{"Content-Encoding": {"br"}, HeaderFirehoseAccessKey: {oldFirehoseKey}}
	if r := rig.post(t, "req-br", br, []byte("x")); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("brotli: %d %s", r.status, r.raw)
	}
	if n := len(rig.backend.sends()); n != 3 {
		t.Errorf("%d records sent in all, want the first 3 only", n)
	}
}

func TestFirehoseBodyRefusals(t *testing.T) {
	rig := newFirehoseRig(t, nil, func(d *Deps) { d.MaxBodyBytes, d.InFlight.MaxBodyBytes = 4<<20, 4<<20 })
	many := make([]string, 10_001)
	for i := range many {
		many[i] = "{}"
	}
	for _, tc := range []struct {
		name, id string
		body     []byte
		message  string
	}{
		{"more than 10,000 records", "req-many", batch("req-many", many...),
			"the request has 10001 records, above the 10000 that Firehose sends at most"},
		{"not JSON", "req-json", []byte("records"), "the body is not valid JSON (at byte 0)"},
		{"no records", "req-records", []byte(`{"requestId":"req-records"}`), "records is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rig.post(t, tc.id, key(oldFirehoseKey), tc.body)
			if r.status != http.StatusBadRequest || r.errorMessage() != tc.message {
				t.Errorf("%d %s, want 400 %q", r.status, r.raw, tc.message)
			}
		})
	}
	if n := len(rig.backend.sends()); n != 0 {
		t.Errorf("%d records sent", n)
	}
	// 10,000 records are one batch.
	if r := rig.post(t, "req-10000", key(oldFirehoseKey), batch("req-10000", events("max", 10_000)...)); r.status != http.StatusOK {
		t.Errorf("10,000 records: %d %.300s", r.status, r.raw)
	}
}

// TestFirehoseAnswersTheBodysRequestID: Firehose matches the answer to
// the body's requestId, which is also its header; when they differ, the
// body wins.
func TestFirehoseAnswersTheBodysRequestID(t *testing.T) {
	rig := newFirehoseRig(t, nil, nil)
	req := httptest.NewRequest(http.MethodPost, "/firehose", bytes.NewReader(batch("req-body", eventJSON("evt_id"))))
	req.Header.Set(HeaderFirehoseRequestID, "req-header")
	req.Header.Set(HeaderFirehoseAccessKey, oldFirehoseKey)
	w := httptest.NewRecorder()
	rig.router.ServeHTTP(w, req)
	checkFirehoseAnswer(t, w, "req-body", 0, time.Now().UnixMilli())
}

func TestFirehoseRecordFailures(t *testing.T) {
	unavailable := pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Unavailable, Status: 503, Attempts: 5, Err: errors.New("503")}
	limited := pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.RateLimited, Status: 429, Attempts: 5, Err: errors.New("429")}
	rejected := pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Rejected, Status: 422, Attempts: 1, Err: errors.New("422")}
	duplicate := pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Duplicate, Status: 409, Attempts: 1, Err: errors.New("409")}
	for _, tc := range []struct {
		name    string
		script  map[string]pipeline.Sent
		status  int
		message string
	}{
		{"a duplicate is done with", map[string]pipeline.Sent{"evt_f_1": duplicate}, 200, ""},
		{"Svix unavailable for one record", map[string]pipeline.Sent{"evt_f_1": unavailable}, 503,
			"1 of 3 records were not delivered, dropped on purpose or dead-lettered; send the batch again (records already delivered are not delivered twice): " +
				"record 1 (event evt_f_1) unavailable: Svix answered 503 to the last of 5 attempts"},
		{"rate limited", map[string]pipeline.Sent{"evt_f_2": limited}, 429, "record 2 (event evt_f_2) rate_limited: Svix answered 429 to the last of 5 attempts"},
		{"rejected for good", map[string]pipeline.Sent{"evt_f_0": rejected}, 400, "record 0 (event evt_f_0) rejected: Svix refused the message with status 422"},
		{"the most transient failure sets the status", map[string]pipeline.Sent{"evt_f_0": rejected, "evt_f_1": limited, "evt_f_2": unavailable}, 503,
			"3 of 3 records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newFirehoseRig(t, &scriptedBackend{script: tc.script}, nil)
			r := rig.post(t, "req-f", key(oldFirehoseKey), batch("req-f", events("f", 3)...))
			if r.status != tc.status || !strings.Contains(r.errorMessage(), tc.message) {
				t.Errorf("%d %s, want %d with %q", r.status, r.raw, tc.status, tc.message)
			}
			if n := len(rig.backend.sends()); n != 3 {
				t.Errorf("%d records sent, want every one", n)
			}
		})
	}
}

// TestFirehoseNamesAtMostFiveRecords keeps errorMessage short whatever the
// batch: five records named, the others counted.
func TestFirehoseNamesAtMostFiveRecords(t *testing.T) {
	rig := newFirehoseRig(t, nil, nil)
	bad := make([]string, 500)
	for i := range bad {
		bad[i] = `{"id":"` + strings.Repeat("x", 300) + `"}`
	}
	r := rig.post(t, "req-bad", key(oldFirehoseKey), batch("req-bad", bad...))
	if r.status != http.StatusBadRequest || strings.Count(r.errorMessage(), "record ") != 5 ||
		!strings.HasSuffix(r.errorMessage(), "; and 495 more") || len(r.errorMessage()) > maxErrorMessage {
		t.Errorf("%d %s", r.status, r.raw)
	}
}

func TestFirehoseRecordsAtMostSixteenAtOnce(t *testing.T) {
	backend := &scriptedBackend{gate: make(chan struct{})}
	rig := newFirehoseRig(t, backend, nil)
	done := make(chan firehoseReply)
	go func() {
		done <- rig.post(t, "req-gate", key(oldFirehoseKey), batch("req-gate", events("gate", 100)...))
	}()
	for deadline := time.Now().Add(10 * time.Second); backend.holding.Load() < FirehoseWorkers; {
		if time.Now().After(deadline) {
			t.Fatalf("%d records held at once after 10 s, want %d", backend.holding.Load(), FirehoseWorkers)
		}
		time.Sleep(time.Millisecond)
	}
	// Time for a 17th record to arrive, were one let through; the
	// outcome below does not depend on it.
	time.Sleep(50 * time.Millisecond)
	close(backend.gate)
	if r := <-done; r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if most := backend.most.Load(); most != FirehoseWorkers {
		t.Errorf("%d records at once, want %d", most, FirehoseWorkers)
	}
	if n := len(backend.sends()); n != 100 {
		t.Errorf("%d records sent", n)
	}
}

func TestFirehoseStartsNoRecordWhileDraining(t *testing.T) {
	rig := newFirehoseRig(t, nil, nil)
	rig.health.StartDraining()
	r := rig.post(t, "req-drain", key(oldFirehoseKey), batch("req-drain", events("drain", 3)...))
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.errorMessage(), "record 0 not_started: Gwook is shutting down") {
		t.Errorf("%d %s", r.status, r.raw)
	}
	if n := len(rig.backend.sends()); n != 0 {
		t.Errorf("%d records sent", n)
	}
}

// TestFirehoseStopsStartingRecordsInTime: records not started within
// FirehoseStartWithin are left for Firehose's retry, so the answer comes
// before Firehose stops waiting for it. The records are taken from a
// record drawn at random, going round, so that a retry reaches records the
// last attempt did not.
func TestFirehoseStopsStartingRecordsInTime(t *testing.T) {
	backend := &scriptedBackend{gate: make(chan struct{})}
	rig := newFirehoseRig(t, backend, nil)
	logger := slog.New(slog.DiscardHandler)
	handler := &firehose{pipeline: pipeline.New(pipeline.Config{Backend: backend, Logger: logger}), maxBodyBytes: 1 << 20,
		startWithin: 100 * time.Millisecond, logger: logger, first: func(n int) int { return n - 8 }}
	auth := &Authenticator{FirehoseKeys: []string{oldFirehoseKey}}
	rig.router = scopeRequests(logger, nil)(identifyFirehose(auth.requireFirehose(handler)))

	done := make(chan firehoseReply)
	go func() { done <- rig.post(t, "req-slow", key(oldFirehoseKey), batch("req-slow", events("slow", 40)...)) }()
	for deadline := time.Now().Add(10 * time.Second); backend.holding.Load() < FirehoseWorkers; {
		if time.Now().After(deadline) {
			t.Fatal("the first records never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // past FirehoseStartWithin
	close(backend.gate)
	r := <-done
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.errorMessage(), "24 of 40 records") ||
		!strings.Contains(r.errorMessage(), "record 8 not_started: the batch could not be processed within the time Firehose waits for an answer") {
		t.Errorf("%d %s", r.status, r.raw)
	}
	// The 16 started in time: the last 8, then the first 8.
	var want []string
	for _, i := range []int{32, 33, 34, 35, 36, 37, 38, 39, 0, 1, 2, 3, 4, 5, 6, 7} {
		want = append(want, fmt.Sprintf("evt_slow_%d", i))
	}
	got := backend.sends()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
}

func TestFirehoseShedAnswer(t *testing.T) {
	backend := &scriptedBackend{gate: make(chan struct{})}
	rig := newFirehoseRig(t, backend, func(d *Deps) { d.InFlight.Requests = 1 })
	done := make(chan firehoseReply)
	go func() { done <- rig.post(t, "req-held", key(oldFirehoseKey), batch("req-held", events("held", 1)...)) }()
	for deadline := time.Now().Add(10 * time.Second); backend.holding.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached the backend")
		}
		time.Sleep(time.Millisecond)
	}
	r := rig.post(t, "req-shed", key(oldFirehoseKey), batch("req-shed", events("shed", 1)...))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" || !strings.Contains(r.errorMessage(), "MAX_IN_FLIGHT") {
		t.Errorf("%d %v %s", r.status, r.header, r.raw)
	}
	close(backend.gate)
	if r := <-done; r.status != http.StatusOK {
		t.Errorf("the held request: %d %s", r.status, r.raw)
	}
}

// TestFirehoseLogLine checks the request's log line: the Firehose request
// id, entry firehose, the count of records and how they ended; and one
// debug line per record with the request id.
func TestFirehoseLogLine(t *testing.T) {
	unavailable := pipeline.Sent{Backend: pipeline.BackendSvix, Outcome: pipeline.Unavailable, Status: 503, Attempts: 5, Err: errors.New("503")}
	rig := newFirehoseRig(t, &scriptedBackend{script: map[string]pipeline.Sent{"evt_log_1": unavailable}}, nil)
	recs := append(events("log", 3), "hello")
	rig.post(t, "req-log", key(oldFirehoseKey), batch("req-log", recs...))
	var request map[string]any
	records := 0
	for line := range strings.SplitSeq(strings.TrimSpace(rig.logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		switch l["msg"] {
		case "request":
			request = l
		case "firehose record":
			records++
			if l["firehose_request_id"] != "req-log" || l["request_id"] == "" {
				t.Errorf("record line %v", l)
			}
		}
	}
	want := map[string]any{"entry": "firehose", "firehose_request_id": "req-log", "firehose_records": 4.0, "status": 503.0,
		"caller": "firehose_key", "firehose_outcomes": map[string]any{"forwarded": 2.0, "invalid": 1.0, "unavailable": 1.0}}
	for k, v := range want {
		if !reflect.DeepEqual(request[k], v) {
			t.Errorf("request line: %s = %v, want %v (%v)", k, request[k], v, request)
		}
	}
	if msg, _ := request["error"].(string); !strings.Contains(msg, "2 of 4 records") {
		t.Errorf("request line: error %q", msg)
	}
	if records != 4 {
		t.Errorf("%d record lines, want 4", records)
	}
}
