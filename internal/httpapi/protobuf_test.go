package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/svix"
	gwookv1 "github.com/gwook/gwook/proto/gwook/v1"
	"github.com/gwook/gwook/test/googletoken"
	"github.com/gwook/gwook/test/svixserver"
)

// protobufSetup is a router that takes producers by Basic auth and pushes
// by OIDC, and sends events to a Svix test server.
type protobufSetup struct {
	router http.Handler
	svix   *svixserver.Server
	token  string
}

func newProtobufSetup(t *testing.T) *protobufSetup {
	t.Helper()
	issuer := googletoken.NewIssuer(t)
	svx := svixserver.New(t)
	sender := oneAttemptSender(t, svx.URL())
	p := pipeline.New(pipeline.Config{Backend: svix.Backend{Sender: sender}, Logger: discardLogger})
	router := NewRouter(Deps{Pipeline: p, Health: NewHealth(0, discardLogger),
		Auth: &Authenticator{Username: "u", Password: "p",
			PushTokens: NewPushTokenVerifier(issuer.KeySet(), audience, serviceAccount), Logger: discardLogger},
		MaxBodyBytes: 1 << 20, MaxEventBytes: 1 << 20, InFlight: InFlightLimit{MaxBodyBytes: 1 << 20}, Logger: discardLogger})
	return &protobufSetup{router: router, svix: svx, token: issuer.Sign(t, googletoken.PushClaims(audience, serviceAccount))}
}

// post sends body to /notifications with header, as a producer or, with
// push, as Pub/Sub, and returns the status and the decoded answer.
func (s *protobufSetup) post(t *testing.T, push bool, header http.Header, body []byte) (int, Problem) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/notifications", bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if push {
		req.Header.Set("Authorization", "Bearer "+s.token)
	} else {
		req.SetBasicAuth("u", "p")
	}
	w := httptest.NewRecorder()
	s.router.ServeHTTP(w, req)
	var out Problem
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer %d %q: %v", w.Code, w.Body, err)
	}
	return w.Code, out
}

// testEvent is an event of a fresh id, in protobuf, and the payload Svix
// must receive for it.
func testEvent(t *testing.T, name string) (*gwookv1.Event, string) {
	t.Helper()
	id := "evt_" + name + "_" + time.Now().Format("150405.000000000")
	data, err := structpb.NewStruct(map[string]any{"plan": "pro", "seats": 2})
	if err != nil {
		t.Fatal(err)
	}
	e := &gwookv1.Event{Id: id, Type: "user.signed_up", Source: "accounts", Project: "acme", UserId: "usr_1",
		Time: timestamppb.New(time.Date(2026, 3, 2, 8, 15, 42, 500_000_000, time.UTC)), Data: data}
	return e, `{"id":"` + id + `","type":"user.signed_up","source":"accounts","project":"acme","user_id":"usr_1",` +
		`"time":"2026-03-02T08:15:42.5Z","data":{"plan":"pro","seats":2}}`
}

func marshalEvent(t *testing.T, e *gwookv1.Event) []byte {
	t.Helper()
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A protobuf event, on each way in that can carry one, reaches Svix as the
// JSON payload a JSON event gives.
func TestProtobufEventsAreForwardedAsJSON(t *testing.T) {
	s := newProtobufSetup(t)
	wrappedPush := func(data []byte) []byte {
		return []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString(data) +
			`","attributes":{"googclient_schemaencoding":"BINARY"},"messageId":"m-1"},"subscription":"projects/p/subscriptions/s"}`)
	}
	for _, tc := range []struct {
		name   string
		push   bool
		header http.Header
		body   func([]byte) []byte
		status int
	}{
		{"producer", false, http.Header{"Content-Type": {"application/protobuf"}}, func(b []byte) []byte { return b }, http.StatusAccepted},
		{"wrapped push", true, http.Header{"Content-Type": {"application/json"}}, wrappedPush, http.StatusOK},
		{"unwrapped push", true, http.Header{"X-Goog-Pubsub-Message-Id": {"m-2"}, "Googclient_schemaencoding": {"BINARY"}},
			func(b []byte) []byte { return b }, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, payload := testEvent(t, "pb")
			status, out := s.post(t, tc.push, tc.header, tc.body(marshalEvent(t, e)))
			if status != tc.status || out.Outcome != "forwarded" || out.EventID != e.Id {
				t.Fatalf("%d %+v, want %d forwarded for %s", status, out, tc.status, e.Id)
			}
			msgs := s.svix.MessagesFor(e.Id)
			if len(msgs) != 1 || msgs[0].AppID != "usr_1" || msgs[0].EventType != "user.signed_up" {
				t.Fatalf("Svix has %+v, want one user.signed_up message for usr_1", msgs)
			}
			if string(msgs[0].Payload) != payload {
				t.Errorf("payload\n%s\nwant\n%s", msgs[0].Payload, payload)
			}
		})
	}
}

// A protobuf event that breaks the rules gets the 400 the same event in
// JSON gets, every violation listed; one that is not a gwook.v1.Event gets
// a 400 saying so.
func TestInvalidProtobufEventIsRefused(t *testing.T) {
	s := newProtobufSetup(t)
	e, _ := testEvent(t, "bad")
	e.Id, e.Type, e.Project, e.Time = "evt 1", "", string(make([]byte, 1025)), nil
	status, pb := s.post(t, false, http.Header{"Content-Type": {"application/protobuf"}}, marshalEvent(t, e))
	if status != http.StatusBadRequest || pb.Outcome != string(pipeline.Invalid) {
		t.Fatalf("%d %+v, want 400 invalid", status, pb)
	}
	asJSON, err := json.Marshal(map[string]any{"id": e.Id, "type": e.Type, "source": e.Source, "project": e.Project,
		"user_id": e.UserId, "data": e.Data.AsMap()})
	if err != nil {
		t.Fatal(err)
	}
	status, js := s.post(t, false, http.Header{"Content-Type": {"application/json"}}, asJSON)
	if status != http.StatusBadRequest || !reflect.DeepEqual(pb.Errors, js.Errors) || pb.Detail != js.Detail {
		t.Errorf("protobuf answers %q %+v, JSON %d %q %+v", pb.Detail, pb.Errors, status, js.Detail, js.Errors)
	}
	want := []string{"id", "type", "project", "time"}
	if len(pb.Errors) != len(want) {
		t.Fatalf("errors %+v, want one for each of %v", pb.Errors, want)
	}
	for i, f := range want {
		if pb.Errors[i].Field != f {
			t.Errorf("errors[%d] = %+v, want field %s", i, pb.Errors[i], f)
		}
	}

	status, out := s.post(t, false, http.Header{"Content-Type": {"application/protobuf"}}, []byte("not protobuf \xff\xff"))
	if status != http.StatusBadRequest || out.Detail != "body is not a binary protobuf gwook.v1.Event (proto/gwook/v1/event.proto)" ||
		len(out.Errors) != 0 {
		t.Errorf("garbage: %d %+v", status, out)
	}
	// A push without a dead-letter topic gets a 400 too, which the
	// subscription's own dead-letter policy takes.
	status, out = s.post(t, true, http.Header{"X-Goog-Pubsub-Message-Id": {"m-3"}, "Googclient_schemaencoding": {"BINARY"}},
		[]byte{0xff, 0xff})
	if status != http.StatusBadRequest || out.Outcome != string(pipeline.Invalid) {
		t.Errorf("broken push: %d %+v", status, out)
	}
}
