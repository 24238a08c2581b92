package svix

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/pipeline"
)

// TestSent checks how each Outcome of a Send reads in the pipeline's
// terms, and that what Svix answered is carried over.
func TestSent(t *testing.T) {
	for _, tc := range []struct {
		outcome      Outcome
		want         pipeline.Outcome
		unauthorized bool
	}{
		{Delivered, pipeline.Forwarded, false},
		{Duplicate, pipeline.Duplicate, false},
		{Rejected, pipeline.Rejected, false},
		{RateLimited, pipeline.RateLimited, false},
		{Unavailable, pipeline.Unavailable, false},
		{Unauthorized, pipeline.Unavailable, true},
		{Outcome(99), pipeline.Unavailable, false},
	} {
		t.Run(tc.outcome.String(), func(t *testing.T) {
			err := errors.New("svix said no")
			r := Result{Outcome: tc.outcome, MessageID: "msg_1", Status: 429, Attempts: 3,
				RetryAfter: time.Minute, Body: `{"code":"x"}`, Err: err}
			s := r.Sent()
			if s.Outcome != tc.want || s.Unauthorized != tc.unauthorized {
				t.Errorf("outcome %s (unauthorized %v), want %s (%v)", s.Outcome, s.Unauthorized, tc.want, tc.unauthorized)
			}
			if s.Backend != pipeline.BackendSvix || s.MessageID != "msg_1" || s.Status != 429 || s.Attempts != 3 ||
				s.RetryAfter != time.Minute || s.Body != `{"code":"x"}` || s.Err != err {
				t.Errorf("sent %+v does not carry %+v over", s, r)
			}
		})
	}
}

// TestBackendSend checks that Backend sends through its Sender: Svix
// accepts the message, and the pipeline reads it as forwarded under
// Svix's message id.
func TestBackendSend(t *testing.T) {
	svx := &scriptedSvix{statuses: []int{202}}
	srv := httptest.NewServer(svx)
	defer srv.Close()
	b := Backend{Sender: newTestSender(t, srv.URL, fastPolicy(), time.Second, nil)}
	s := b.Send(context.Background(), "app_9", &testEvent)
	if s.Outcome != pipeline.Forwarded || s.Backend != pipeline.BackendSvix || s.MessageID != "msg_1" ||
		s.Status != 202 || s.Attempts != 1 || s.Err != nil {
		t.Fatalf("sent %+v", s)
	}
	if svx.count() != 1 || svx.requests[0].path != "/api/v1/app/app_9/msg" {
		t.Errorf("requests %+v", svx.requests)
	}
}
