package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gwook/gwook/test/gwooktest"
)

// TestMalformedEventarcEventIsDeadLettered posts CloudEvents Gwook cannot
// take to a Gwook with a dead-letter topic: like any invalid push, each is
// acked with 200 once it is on the topic with reason invalid_event, so that
// Pub/Sub stops redelivering it. The topic keeps the event when it could
// be read, the body otherwise.
func TestMalformedEventarcEventIsDeadLettered(t *testing.T) {
	t.Parallel()
	s := startWithDeadLetters(t, nil)
	id, event := oneEvent(t)
	envelope := fmt.Sprintf(`{"message":{"data":%q,"messageId":"ce-m-1","publishTime":"2026-03-02T08:15:43.118Z"},`+
		`"subscription":"projects/p/subscriptions/eventarc-europe-west1-gwook-events-sub-1"}`, base64.StdEncoding.EncodeToString(event))
	binary := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Ce-Specversion": {"1.0"}, "Ce-Id": {"ce-m-1"},
		"Ce-Source": {"//pubsub.googleapis.com/projects/p/topics/events"}, "Ce-Type": {"google.cloud.storage.object.v1.finalized"}}
	noData := `{"specversion":"1.0","id":"ce-m-2","source":"//pubsub.googleapis.com/projects/p/topics/events",` +
		`"type":"google.cloud.pubsub.topic.v1.messagePublished"}`
	for _, req := range []struct {
		header http.Header
		body   string
	}{
		{binary, envelope},
		{http.Header{"Content-Type": {"application/cloudevents+json"}}, noData},
	} {
		r := s.g.Post(t, "/notifications?token="+gwooktest.PushToken, req.header, []byte(req.body))
		var answer struct {
			Outcome      string `json:"outcome"`
			DeadLettered bool   `json:"dead_lettered"`
		}
		if err := json.Unmarshal(r.Body, &answer); err != nil || r.Status != http.StatusOK || answer.Outcome != "invalid" || !answer.DeadLettered {
			t.Fatalf("%d %s, want 200 invalid and dead-lettered", r.Status, r.Body)
		}
	}

	byData := map[string]map[string]string{}
	for _, dl := range s.waitDeadLetters(t, 2) {
		byData[string(dl.Data)] = dl.Attributes
	}
	binaryLetter, ok := byData[string(event)]
	if !ok {
		t.Fatalf("no dead letter holds the event; they hold %v", byData)
	}
	if binaryLetter["reason"] != "invalid_event" || binaryLetter["event_id"] != id || binaryLetter["source_message_id"] != "ce-m-1" ||
		!strings.Contains(binaryLetter["error"], "ce-type") {
		t.Errorf("the binary CloudEvent's dead letter has %v", binaryLetter)
	}
	structuredLetter, ok := byData[noData]
	if !ok {
		t.Fatalf("no dead letter holds the structured CloudEvent's body; they hold %v", byData)
	}
	if structuredLetter["reason"] != "invalid_event" || !strings.Contains(structuredLetter["error"], "data") {
		t.Errorf("the structured CloudEvent's dead letter has %v", structuredLetter)
	}
	if n := s.g.Svix.Attempts(); n != 0 {
		t.Errorf("%d requests reached Svix", n)
	}
}
