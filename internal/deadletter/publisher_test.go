package deadletter

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTopicName(t *testing.T) {
	for _, tc := range []struct {
		topic, want string
		wantErr     bool
	}{
		{"gwook-dlq", "projects/p1/topics/gwook-dlq", false},
		{"projects/p2/topics/dlq", "projects/p2/topics/dlq", false},
		{"projects/p2/subscriptions/dlq", "", true},
		{"projects//topics/dlq", "", true},
		{"a/b", "", true},
		{"", "", true},
	} {
		got, err := TopicName("p1", tc.topic)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("TopicName(%q) = %q, %v; want %q, error %v", tc.topic, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestLetterAttributes(t *testing.T) {
	failedAt := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	l := Letter{Reason: ReasonUnavailable, SvixStatus: 503, Error: "svix said no", Attempts: 5, EventID: "evt_1",
		EventType: "user.signed_up", Application: "usr_1", SourceSubscription: "projects/p/subscriptions/s",
		SourceMessageID: "42", FailedAt: failedAt}
	want := map[string]string{
		"reason": "unavailable", "svix_status": "503", "error": "svix said no", "attempts": "5", "event_id": "evt_1",
		"event_type": "user.signed_up", "application": "usr_1", "source_subscription": "projects/p/subscriptions/s",
		"source_message_id": "42", "failed_at": "2026-01-02T15:04:05Z",
	}
	got := l.attributes()
	if len(got) != len(want) {
		t.Errorf("attributes = %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	// An invalid push has no event and no Svix status: those are left out.
	letter := Letter{Reason: ReasonInvalidEvent, Error: "body is not valid JSON", FailedAt: failedAt}
	invalid := letter.attributes()
	for _, absent := range []string{"svix_status", "event_id", "event_type", "application"} {
		if _, ok := invalid[absent]; ok {
			t.Errorf("%s set on an invalid letter: %v", absent, invalid)
		}
	}
}

func TestLetterAttributesStayWithinPubSubLimits(t *testing.T) {
	// Values can come from request headers: long, or not valid UTF-8.
	l := Letter{Reason: ReasonInvalidEvent, Error: strings.Repeat("é", 2000),
		SourceSubscription: strings.Repeat("s", 5000), SourceMessageID: "bad\xff\xfeid", FailedAt: time.Now()}
	for k, v := range l.attributes() {
		if len(v) > 1024 || !utf8.ValidString(v) {
			t.Errorf("attribute %s: %d bytes, valid UTF-8 %v", k, len(v), utf8.ValidString(v))
		}
	}
	if got := l.attributes()["error"]; len(got) > maxErrorAttribute {
		t.Errorf("error attribute is %d bytes", len(got))
	}
}
