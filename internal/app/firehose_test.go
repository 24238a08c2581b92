package app_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/webhook"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/pgtest"
	"github.com/gwook/gwook/test/pubsubemu"
	"github.com/gwook/gwook/test/redistest"
	"github.com/gwook/gwook/test/svixserver"
)

// firehoseBatch is a Firehose request body with one record per event.
func firehoseBatch(t *testing.T, id string, records ...[]byte) []byte {
	t.Helper()
	type record struct {
		Data string `json:"data"`
	}
	body := struct {
		RequestID string   `json:"requestId"`
		Timestamp int64    `json:"timestamp"`
		Records   []record `json:"records"`
	}{RequestID: id, Timestamp: time.Now().UnixMilli(), Records: []record{}}
	for _, r := range records {
		body.Records = append(body.Records, record{Data: base64.StdEncoding.EncodeToString(r)})
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firehoseAnswer decodes an answer to /firehose and checks what every one
// carries: application/json, the request id, and a timestamp in Unix
// milliseconds; and errorMessage exactly when the status is not 200.
func firehoseAnswer(t *testing.T, r gwooktest.Reply, id string) (errorMessage string) {
	t.Helper()
	var a struct {
		RequestID    string  `json:"requestId"`
		Timestamp    int64   `json:"timestamp"`
		ErrorMessage *string `json:"errorMessage"`
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, body %s", ct, r.Body)
	}
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("answer %d %s: %v", r.Status, r.Body, err)
	}
	if now := time.Now().UnixMilli(); a.RequestID != id || a.Timestamp < now-60_000 || a.Timestamp > now {
		t.Errorf("answer %s: want requestId %q and a timestamp of the last minute (now %d)", r.Body, id, now)
	}
	if (a.ErrorMessage != nil) != (r.Status != http.StatusOK) {
		t.Errorf("answer %d %s: errorMessage exactly when not 200", r.Status, r.Body)
	}
	if a.ErrorMessage != nil {
		return *a.ErrorMessage
	}
	return ""
}

// uniqueEvents are n valid events of the application usr_1, with ids and
// dedup keys of their own (tag keeps them apart between runs).
func uniqueEvents(tag string, n int) ([][]byte, []string) {
	events, ids := make([][]byte, n), make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("evt_%s_%d", tag, i)
		events[i] = eventWithKey(fmt.Sprintf("%s-%d", tag, i), ids[i])
	}
	return events, ids
}

// TestFirehoseDeliversEachRecordOnce sends a batch of events through
// Svix, with duplicate suppression in Redis, then the same batch again as
// Firehose retries it: both are answered 200 and Svix has one message per
// event. The records go through the same pipeline as /notifications: a
// record whose type FILTER_EXCLUDE_TYPES drops is answered for, not sent.
func TestFirehoseDeliversEachRecordOnce(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"REDIS_URL": redistest.SharedURL(), "FILTER_EXCLUDE_TYPES": "internal.*"}, app.Options{})
	tag := uniqueTag(t)
	events, ids := uniqueEvents(tag, 50)
	filtered := []byte(`{"id":"evt_` + tag + `_internal","type":"internal.audit","source":"s","project":"p","user_id":"usr_1","time":"2026-01-02T15:04:05Z","data":{}}`)
	body := firehoseBatch(t, "req-"+tag, append(events, filtered)...)
	for attempt := range 2 {
		r := g.Firehose(t, "req-"+tag, nil, body)
		if msg := firehoseAnswer(t, r, "req-"+tag); r.Status != http.StatusOK {
			t.Fatalf("attempt %d: %d %s", attempt+1, r.Status, msg)
		}
	}
	for _, id := range ids {
		if n := len(g.Svix.MessagesFor(id)); n != 1 {
			t.Errorf("%s: %d Svix messages, want 1", id, n)
		}
	}
	if n := len(g.Svix.Messages()); n != len(ids) {
		t.Errorf("%d Svix messages, want %d", n, len(ids))
	}
	if n := counterValue(t, g, "gwook_events_total", "entry", "firehose"); n != 2*51 {
		t.Errorf("gwook_events_total{entry=firehose} = %v, want %d", n, 2*51)
	}
	var line map[string]any
	for _, l := range g.Logs.Lines("request") {
		if l["firehose_request_id"] == "req-"+tag {
			line = l
		}
	}
	if line == nil || line["entry"] != "firehose" || line["caller"] != "firehose_key" || line["firehose_records"] != 51.0 {
		t.Errorf("log line %v", line)
	}
}

func TestFirehoseGzippedBatch(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0"}, app.Options{})
	tag := uniqueTag(t)
	events, ids := uniqueEvents(tag, 5)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(firehoseBatch(t, "req-gzip", events...)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	r := g.Firehose(t, "req-gzip", http.Header{"Content-Encoding": {"gzip"}}, buf.Bytes())
	if msg := firehoseAnswer(t, r, "req-gzip"); r.Status != http.StatusOK {
		t.Fatalf("%d %s", r.Status, msg)
	}
	for _, id := range ids {
		if n := len(g.Svix.MessagesFor(id)); n != 1 {
			t.Errorf("%s: %d Svix messages, want 1", id, n)
		}
	}
}

// TestFirehoseAuthentication runs with two access keys, as during a
// rotation: either is accepted, and so is an API token with the ingest
// scope, as the access key or as a bearer token; anything else is
// answered 401 in Firehose's format, and no key reaches the logs.
func TestFirehoseAuthentication(t *testing.T) {
	const oldKey, newKey = "firehose-key-being-retired-01", "firehose-key-replacing-it-02"
	g := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0", "FIREHOSE_ACCESS_KEYS": oldKey + "," + newKey}, app.Options{})
	_, ingest := createToken(t, g, store.NewToken{Name: "firehose", Scopes: []string{"ingest"}})
	_, read := createToken(t, g, store.NewToken{Name: "reader", Scopes: []string{"read"}})
	for i, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"the old key", http.Header{"X-Amz-Firehose-Access-Key": {oldKey}}, 200},
		{"the new key", http.Header{"X-Amz-Firehose-Access-Key": {newKey}}, 200},
		{"a wrong key", http.Header{"X-Amz-Firehose-Access-Key": {"firehose-key-never-configured"}}, 401},
		{"no key", http.Header{"X-Amz-Firehose-Access-Key": nil}, 401},
		{"an ingest token as the key", http.Header{"X-Amz-Firehose-Access-Key": {ingest}}, 200},
		{"an ingest token as bearer", http.Header{"X-Amz-Firehose-Access-Key": nil, "Authorization": {"Bearer " + ingest}}, 200},
		{"a read token", http.Header{"X-Amz-Firehose-Access-Key": {read}}, 403},
		{"Basic auth", http.Header{"X-Amz-Firehose-Access-Key": nil, "Authorization": {"Basic " + basicValue()}}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("req-auth-%d", i)
			event := eventWithKey(uniqueTag(t), fmt.Sprintf("evt_auth_%d_%d", i, time.Now().UnixNano()))
			r := g.Firehose(t, id, tc.header, firehoseBatch(t, id, event))
			msg := firehoseAnswer(t, r, id)
			if r.Status != tc.status {
				t.Fatalf("%d %s, want %d", r.Status, msg, tc.status)
			}
			if n := len(g.Svix.MessagesFor(fieldsOf(t, event).ID)); (n == 1) != (tc.status == 200) {
				t.Errorf("%d Svix messages", n)
			}
		})
	}
	for _, secret := range []string{oldKey, newKey, ingest, read} {
		if strings.Contains(g.Logs.String(), secret) {
			t.Errorf("a secret reached the logs")
		}
	}
}

// TestFirehoseBackendFailure: while Svix fails, with no dead-letter topic
// to take the records, the batch is answered 503 so that Firehose sends it
// again; once Svix is back, the same batch is answered 200, and each
// event is one message, the ones Svix took during the outage included.
func TestFirehoseBackendFailure(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"REDIS_URL": redistest.SharedURL(), "SVIX_RETRY_MAX_ELAPSED": "200ms"}, app.Options{})
	tag := uniqueTag(t)
	events, ids := uniqueEvents(tag, 4)
	body := firehoseBatch(t, "req-"+tag, events...)
	// Svix takes the first message it is sent, then fails.
	g.Svix.Script(svixserver.Response{})
	g.Svix.SetDefault(svixserver.Response{Status: 503})
	r := g.Firehose(t, "req-"+tag, nil, body)
	msg := firehoseAnswer(t, r, "req-"+tag)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(msg, "3 of 4 records were not delivered") ||
		!strings.Contains(msg, "unavailable: Svix answered 503") {
		t.Fatalf("%d %s", r.Status, msg)
	}
	if n := len(g.Svix.Messages()); n != 1 {
		t.Fatalf("%d Svix messages during the outage, want 1", n)
	}

	g.Svix.SetDefault(svixserver.Response{})
	r = g.Firehose(t, "req-"+tag, nil, body)
	if msg := firehoseAnswer(t, r, "req-"+tag); r.Status != http.StatusOK {
		t.Fatalf("after the outage: %d %s", r.Status, msg)
	}
	for _, id := range ids {
		if n := len(g.Svix.MessagesFor(id)); n != 1 {
			t.Errorf("%s: %d Svix messages, want 1", id, n)
		}
	}
}

// TestFirehoseInvalidRecordIsDeadLettered: a batch with records that are
// not events (not base64, not JSON, not valid) is answered 200 once those
// records are on the dead-letter topic, as an invalid push is; the valid
// records are delivered. A record Svix keeps failing is dead-lettered too.
func TestFirehoseInvalidRecordIsDeadLettered(t *testing.T) {
	emu := pubsubemu.FromEnv(t)
	topic := emu.CreateTopic(t, emu.UniqueID(t, "dead-letters"))
	sub := emu.CreatePullSubscription(t, emu.UniqueID(t, "dead-letters-sub"), topic, 10*time.Second)
	g := gwooktest.Start(t, map[string]string{"DEAD_LETTER_TOPIC": topic, "PUBSUB_PROJECT_ID": emu.Project, "DEDUP_TTL": "0",
		"SVIX_RETRY_MAX_ELAPSED": "200ms"}, app.Options{})
	tag := uniqueTag(t)
	events, ids := uniqueEvents(tag, 3)
	notJSON, invalid := []byte("hello"), []byte(`{"id":"evt_`+tag+`_bad","type":"user.signed_up"}`)
	body := firehoseBatch(t, "req-"+tag, events[0], notJSON, events[1], invalid)
	// A record whose data is not base64 at all.
	body = bytes.Replace(body, []byte(`"records":[`), []byte(`"records":[{"data":"not base64!"},`), 1)

	r := g.Firehose(t, "req-"+tag, nil, body)
	if msg := firehoseAnswer(t, r, "req-"+tag); r.Status != http.StatusOK {
		t.Fatalf("%d %s", r.Status, msg)
	}
	for _, id := range ids[:2] {
		if n := len(g.Svix.MessagesFor(id)); n != 1 {
			t.Errorf("%s: %d Svix messages, want 1", id, n)
		}
	}
	letters := pullAll(t, emu, sub, 3)
	want := map[string]string{"0": "not base64!", "2": "hello", "4": string(invalid)}
	for _, m := range letters {
		_, index, _ := strings.Cut(m.Attributes["source_message_id"], "req-"+tag+"/")
		if m.Attributes["reason"] != "invalid_event" || want[index] != string(m.Data) ||
			m.Attributes["source_subscription"] != "arn:aws:firehose:us-east-1:123456789:deliverystream/testStream" {
			t.Errorf("dead letter %q %v", m.Data, m.Attributes)
		}
		delete(want, index)
	}
	if len(want) != 0 {
		t.Errorf("records not dead-lettered: %v", want)
	}

	// Svix failing: the record is dead-lettered and the batch acknowledged.
	g.Svix.SetDefault(svixserver.Response{Status: 500})
	r = g.Firehose(t, "req-down-"+tag, nil, firehoseBatch(t, "req-down-"+tag, events[2]))
	if msg := firehoseAnswer(t, r, "req-down-"+tag); r.Status != http.StatusOK {
		t.Fatalf("Svix down: %d %s", r.Status, msg)
	}
	if letters := pullAll(t, emu, sub, 1); letters[0].Attributes["reason"] != "unavailable" || letters[0].Attributes["event_id"] != ids[2] {
		t.Errorf("dead letter %v", letters[0].Attributes)
	}
}

// pullAll pulls n messages from sub, acknowledging them, within 10 s.
func pullAll(t *testing.T, emu *pubsubemu.Emulator, sub string, n int) []pubsubemu.ReceivedMessage {
	t.Helper()
	var got []pubsubemu.ReceivedMessage
	for deadline := time.Now().Add(10 * time.Second); len(got) < n && time.Now().Before(deadline); {
		batch := emu.Pull(t, sub, n-len(got))
		for _, m := range batch {
			emu.Ack(t, sub, m.AckID)
		}
		got = append(got, batch...)
	}
	if len(got) != n {
		t.Fatalf("%d messages on the dead-letter topic, want %d", len(got), n)
	}
	return got
}

// TestFirehoseDirectDelivery runs the direct backend on PostgreSQL: a
// batch sent twice makes one message per event, delivered to the
// application's endpoint.
func TestFirehoseDirectDelivery(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{
		"DELIVERY_BACKEND":                "direct",
		"DATABASE_URL":                    pgtest.NewDatabase(t),
		"DELIVERY_ALLOW_PRIVATE_NETWORKS": "true",
		"REDIS_URL":                       redistest.SharedURL(),
	}, app.Options{})
	_, admin := createToken(t, g, store.NewToken{Name: "admin", Scopes: []string{"admin"}})
	bearer := http.Header{"Authorization": {"Bearer " + admin}, "Content-Type": {"application/json"}}
	if r := g.Post(t, "/api/v1/applications", bearer, []byte(`{"id":"usr_1","name":"Firehose"}`)); r.Status != http.StatusCreated {
		t.Fatalf("application: %d %s", r.Status, r.Body)
	}
	secret := store.NewEndpointSecret()
	receiver, err := webhook.NewReceiver([]string{secret}, webhook.ReceiverOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(receiver)
	t.Cleanup(srv.Close)
	endpoint, _ := json.Marshal(map[string]string{"url": srv.URL + "/webhooks", "secret": secret})
	if r := g.Post(t, "/api/v1/applications/usr_1/endpoints", bearer, endpoint); r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}

	tag := uniqueTag(t)
	events, ids := uniqueEvents(tag, 20)
	body := firehoseBatch(t, "req-"+tag, events...)
	for attempt := range 2 {
		r := g.Firehose(t, "req-"+tag, nil, body)
		if msg := firehoseAnswer(t, r, "req-"+tag); r.Status != http.StatusOK {
			t.Fatalf("attempt %d: %d %s", attempt+1, r.Status, msg)
		}
	}
	list := getJSON(t, g, admin, "/api/v1/applications/usr_1/messages?limit=250")
	perEvent := map[string]int{}
	for _, m := range list.Data {
		perEvent[m.EventID]++
	}
	for _, id := range ids {
		if perEvent[id] != 1 {
			t.Errorf("%s: %d messages, want 1", id, perEvent[id])
		}
	}
	if len(list.Data) != len(ids) {
		t.Errorf("%d messages, want %d", len(list.Data), len(ids))
	}
	if _, err := receiver.WaitFor(len(ids), 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// messageList is the answer of the messages API.
type messageList struct {
	Data []struct {
		EventID string `json:"event_id"`
	} `json:"data"`
}

func getJSON(t *testing.T, g *gwooktest.Gwook, token, path string) messageList {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out messageList
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFirehoseAnswersAfterTheWriteTimeout: a batch that takes longer than
// HTTP_SERVER_WRITE_TIMEOUT (Svix answering slowly) is still answered,
// through the real server and its middleware, since Firehose waits 3
// minutes.
func TestFirehoseAnswersAfterTheWriteTimeout(t *testing.T) {
	g := gwooktest.Start(t, map[string]string{"DEDUP_TTL": "0", "SVIX_TIMEOUT": "1s", "SVIX_RETRY_MAX_ELAPSED": "1s",
		"HTTP_SERVER_WRITE_TIMEOUT": "2s", "HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT": "2s"}, app.Options{})
	addr := serve(t, g)
	g.Svix.SetDefault(svixserver.Response{Delay: 200 * time.Millisecond})
	tag := uniqueTag(t)
	events, ids := uniqueEvents(tag, 12*16) // 12 rounds of 16, 2.4 s at least
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/firehose", bytes.NewReader(firehoseBatch(t, "req-"+tag, events...)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Firehose-Request-Id", "req-"+tag)
	req.Header.Set("X-Amz-Firehose-Access-Key", gwooktest.FirehoseKey)
	started := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("after %s: %v", time.Since(started), err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	r := gwooktest.Reply{Status: resp.StatusCode, Header: resp.Header, Body: b.Bytes()}
	if msg := firehoseAnswer(t, r, "req-"+tag); r.Status != http.StatusOK || time.Since(started) < 2*time.Second {
		t.Fatalf("%d %s after %s", r.Status, msg, time.Since(started))
	}
	if n := len(g.Svix.Messages()); n != len(ids) {
		t.Errorf("%d Svix messages, want %d", n, len(ids))
	}
}
