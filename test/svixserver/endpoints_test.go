package svixserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// Secrets of 24 bytes, shaped like the ones Svix generates.
const (
	testSecretA = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	testSecretB = "whsec_QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
)

// Patterns of EndpointOut.id and EndpointSecretOut.key in the OpenAPI
// document.
var (
	endpointIDPattern = regexp.MustCompile(`^ep_[A-Za-z0-9]{27}$`)
	secretPattern     = regexp.MustCompile(`^(whsec_|whsk_|whsk1_|whpk_|whpk1_)?[a-zA-Z0-9+/=]{32,100}$`)
)

func newEndpointIn(url, uid string) svix.EndpointIn {
	in := svix.EndpointIn{Url: url}
	if uid != "" {
		in.Uid = &uid
	}
	return in
}

// newAppWithClient starts a validating server with one application, uid
// usr_1, and returns an SDK client for it.
func newAppWithClient(t *testing.T) (*Server, *svix.Svix) {
	t.Helper()
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	if _, err := client.Application.Create(context.Background(), appIn("Shop", "usr_1", nil), nil); err != nil {
		t.Fatal(err)
	}
	return s, client
}

func TestSDKEndpointLifecycle(t *testing.T) {
	s, client := newAppWithClient(t)
	ctx := context.Background()

	if _, err := client.Endpoint.Create(ctx, "usr_missing", newEndpointIn("https://example.com/hook", "ep_1"), nil); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("Create in a missing application: %v, want 404", err)
	}
	in := newEndpointIn("https://example.com/hook", "ep_1")
	description, disabled, secret := "orders", true, testSecretA
	in.Description, in.Disabled, in.Secret = &description, &disabled, &secret
	in.FilterTypes = []string{"order.paid", "order.refunded"}
	in.Metadata = &map[string]string{"team": "billing"}
	// Svix refuses a filter on event types it does not have.
	if _, err := client.Endpoint.Create(ctx, "usr_1", in, nil); sdkStatus(err) != http.StatusUnprocessableEntity {
		t.Fatalf("Create filtering on unknown event types: %v, want 422", err)
	}
	for _, name := range in.FilterTypes {
		if _, err := client.EventType.Create(ctx, svix.EventTypeIn{Name: name, Description: name}, nil); err != nil {
			t.Fatal(err)
		}
	}
	created, err := client.Endpoint.Create(ctx, "usr_1", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !endpointIDPattern.MatchString(created.Id) || created.Uid == nil || *created.Uid != "ep_1" || created.Url != in.Url ||
		created.Description != "orders" || created.Disabled == nil || !*created.Disabled || created.Version != 1 ||
		!slices.Equal(created.FilterTypes, in.FilterTypes) || created.Metadata["team"] != "billing" {
		t.Fatalf("created %+v", created)
	}
	for _, key := range []string{"ep_1", created.Id} {
		if got, err := client.Endpoint.Get(ctx, "usr_1", key); err != nil || got.Id != created.Id {
			t.Errorf("Get(%s) = %+v, %v", key, got, err)
		}
	}
	if _, err := client.Endpoint.Create(ctx, "usr_1", newEndpointIn("https://example.com/other", "ep_1"), nil); sdkStatus(err) != http.StatusConflict {
		t.Errorf("creating a taken uid: %v, want 409", err)
	}
	if got, err := client.Endpoint.GetSecret(ctx, "usr_1", "ep_1"); err != nil || got.Key != testSecretA {
		t.Errorf("GetSecret = %v; want the secret given on creation", err)
	}

	// PUT replaces every field but the secret.
	uid := "ep_1"
	updated, err := client.Endpoint.Update(ctx, "usr_1", "ep_1", svix.EndpointUpdate{Uid: &uid, Url: "https://example.com/new"})
	if err != nil || updated.Id != created.Id || updated.Url != "https://example.com/new" || updated.Description != "" ||
		(updated.Disabled != nil && *updated.Disabled) || updated.FilterTypes != nil || len(updated.Metadata) != 0 {
		t.Errorf("Update = %+v, %v; want the same endpoint with the new URL and every other field reset", updated, err)
	}
	got, ok := s.Endpoint("usr_1", "ep_1")
	if !ok || got.Secret != testSecretA || got.URL != "https://example.com/new" || got.FilterTypes != nil || got.Disabled {
		t.Errorf("Endpoint(usr_1, ep_1) = %+v, %v", got, ok)
	}

	// PUT of a missing endpoint creates it, with the uid of the body and a new secret.
	uid2 := "ep_2"
	put, err := client.Endpoint.Update(ctx, "usr_1", "ep_2", svix.EndpointUpdate{Uid: &uid2, Url: "https://example.com/two"})
	if err != nil || put.Id == created.Id || put.Uid == nil || *put.Uid != "ep_2" {
		t.Fatalf("Update of a missing endpoint = %+v, %v", put, err)
	}
	if got, _ := s.Endpoint("usr_1", "ep_2"); !secretPattern.MatchString(got.Secret) || got.Secret == testSecretA {
		t.Errorf("generated secret %q does not look like Svix's", got.Secret)
	}
	if eps := s.Endpoints("usr_1"); len(eps) != 2 {
		t.Errorf("Endpoints = %d, want 2", len(eps))
	}

	if err := client.Endpoint.Delete(ctx, "usr_1", "ep_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Endpoint.Get(ctx, "usr_1", "ep_1"); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("Get after Delete: %v, want 404", err)
	}
	if err := client.Endpoint.Delete(ctx, "usr_1", created.Id); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("second Delete: %v, want 404", err)
	}
	// The uid is free again.
	if _, err := client.Endpoint.Create(ctx, "usr_1", newEndpointIn("https://example.com/again", "ep_1"), nil); err != nil {
		t.Errorf("Create with a deleted endpoint's uid: %v", err)
	}
	// Deleting the application takes its endpoints along.
	if err := client.Application.Delete(ctx, "usr_1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Endpoint("usr_1", "ep_2"); ok {
		t.Error("an endpoint outlived its application")
	}
}

func TestPutWithoutUIDLeavesTheEndpointWithoutOne(t *testing.T) {
	s, client := newAppWithClient(t)
	ctx := context.Background()
	created, err := client.Endpoint.Create(ctx, "usr_1", newEndpointIn("https://example.com/hook", "ep_1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Endpoint.Update(ctx, "usr_1", "ep_1", svix.EndpointUpdate{Url: "https://example.com/hook"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Endpoint("usr_1", "ep_1"); ok {
		t.Error("the uid survived a PUT without one")
	}
	if got, ok := s.Endpoint("usr_1", created.Id); !ok || got.UID != "" {
		t.Errorf("Endpoint by id = %+v, %v; want it without a uid", got, ok)
	}
}

func TestRotateEndpointSecret(t *testing.T) {
	s, client := newAppWithClient(t)
	ctx := context.Background()
	in := newEndpointIn("https://example.com/hook", "ep_1")
	secret := testSecretA
	in.Secret = &secret
	if _, err := client.Endpoint.Create(ctx, "usr_1", in, nil); err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	newKey := testSecretB
	if err := client.Endpoint.RotateSecret(ctx, "usr_1", "ep_1", svix.EndpointSecretRotateIn{Key: &newKey}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Endpoint("usr_1", "ep_1")
	if got.Secret != testSecretB || len(got.PreviousSecrets) != 1 || got.PreviousSecrets[0].Secret != testSecretA {
		t.Fatalf("after rotation: secret %q, previous %+v; want B, with A kept", got.Secret, got.PreviousSecrets)
	}
	if exp := got.PreviousSecrets[0].ExpiresAt; exp.Before(before.Add(24*time.Hour)) || exp.After(time.Now().Add(24*time.Hour)) {
		t.Errorf("previous secret expires at %v; want 24 hours after the rotation", exp)
	}
	if out, err := client.Endpoint.GetSecret(ctx, "usr_1", "ep_1"); err != nil || out.Key != testSecretB {
		t.Errorf("GetSecret after rotation: %v", err)
	}

	// Without a key Svix generates one; a grace period of 0 keeps nothing.
	zero := uint32(0)
	if err := client.Endpoint.RotateSecret(ctx, "usr_1", "ep_1", svix.EndpointSecretRotateIn{GracePeriodSeconds: &zero}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Endpoint("usr_1", "ep_1")
	if !secretPattern.MatchString(got.Secret) || got.Secret == testSecretB || len(got.PreviousSecrets) != 1 {
		t.Errorf("after a generated rotation with no grace: secret %q, %d previous; want a new secret, A still the only previous", got.Secret, len(got.PreviousSecrets))
	}

	// Svix keeps at most 10 old secrets valid.
	for i := 1; ; i++ {
		err := client.Endpoint.RotateSecret(ctx, "usr_1", "ep_1", svix.EndpointSecretRotateIn{}, nil)
		if err == nil {
			continue
		}
		if sdkStatus(err) != http.StatusBadRequest || i != 10 {
			t.Fatalf("rotation %d: %v; want 400 at the 10th", i, err)
		}
		break
	}
	if got, _ := s.Endpoint("usr_1", "ep_1"); len(got.PreviousSecrets) != 10 {
		t.Errorf("%d previous secrets, want 10", len(got.PreviousSecrets))
	}
}

func TestEndpointRequestsTheSpecRefuses(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		wantInMsg string
	}{
		{name: "empty filterTypes", path: "/api/v1/app/usr_1/endpoint",
			body: `{"url":"https://example.com/hook","filterTypes":[]}`, wantInMsg: "filterTypes"},
		{name: "event type with a space", path: "/api/v1/app/usr_1/endpoint",
			body: `{"url":"https://example.com/hook","filterTypes":["a b"]}`, wantInMsg: "filterTypes"},
		{name: "uid with a slash", method: http.MethodPut, path: "/api/v1/app/usr_1/endpoint/ep_1",
			body: `{"url":"https://example.com/hook","uid":"a/b"}`, wantInMsg: "uid"},
		{name: "missing url", path: "/api/v1/app/usr_1/endpoint", body: `{"description":"x"}`, wantInMsg: "url"},
		{name: "disabled not a boolean", path: "/api/v1/app/usr_1/endpoint",
			body: `{"url":"https://example.com/hook","disabled":"yes"}`, wantInMsg: "disabled"},
		{name: "secret too short", path: "/api/v1/app/usr_1/endpoint",
			body: `{"url":"https://example.com/hook","secret":"whsec_c2VjcmV0LXZhbHVl"}`, wantInMsg: "secret"},
		{name: "grace period too long", path: "/api/v1/app/usr_1/endpoint/ep_0/secret/rotate",
			body: `{"gracePeriodSeconds":604801}`, wantInMsg: "gracePeriodSeconds"},
		{name: "application without a name", method: http.MethodPut, path: "/api/v1/app/usr_1", body: `{"uid":"usr_1"}`, wantInMsg: "name"},
		{name: "get_if_exists not a boolean", path: "/api/v1/app?get_if_exists=maybe", body: `{"name":"x"}`, wantInMsg: "get_if_exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &recordingTB{TB: t}
			s := New(fake)
			client := newSDKClient(t, s.URL(), "test-token")
			ctx := context.Background()
			if _, err := client.Application.Create(ctx, appIn("Shop", "usr_1", nil), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := client.Endpoint.Create(ctx, "usr_1", newEndpointIn("https://example.com/hook", "ep_0"), nil); err != nil {
				t.Fatal(err)
			}
			before, _ := s.Endpoint("usr_1", "ep_0")
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r := do(t, s.URL(), request{method: method, path: tt.path, auth: "Bearer test-token", body: tt.body})
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d (%s), want 422", r.status, r.body)
			}
			var body httpValidationError
			if err := json.Unmarshal(r.body, &body); err != nil || len(body.Detail) == 0 {
				t.Errorf("422 body %s: want a non-empty detail list (err %v)", r.body, err)
			}
			errs := fake.Errors()
			if len(errs) != 1 || !strings.Contains(errs[0], tt.wantInMsg) {
				t.Fatalf("violations %q; want one mentioning %q", errs, tt.wantInMsg)
			}
			if strings.Contains(errs[0], "c2VjcmV0LXZhbHVl") || strings.Contains(string(r.body), "c2VjcmV0LXZhbHVl") {
				t.Errorf("the violation or the answer shows the secret: %s / %s", errs[0], r.body)
			}
			if eps := s.Endpoints("usr_1"); len(eps) != 1 || !eps[0].UpdatedAt.Equal(before.UpdatedAt) || eps[0].Secret != before.Secret {
				t.Errorf("a refused request changed the endpoints: %+v", eps)
			}
			if app, _ := s.Application("usr_1"); app.Name != "Shop" {
				t.Errorf("a refused request changed the application: %+v", app)
			}
		})
	}
}

func TestSvixRulesBeyondTheSpec(t *testing.T) {
	// A server that does not validate still applies what Svix itself checks.
	_, url := newPlainServer(t, Options{})
	if r := do(t, url, request{path: "/api/v1/app", auth: "Bearer t", body: `{"name":"Shop","uid":"usr_1"}`}); r.status != http.StatusCreated {
		t.Fatalf("creating the application: %d %s", r.status, r.body)
	}
	for _, tc := range []struct{ name, body string }{
		{"empty filterTypes", `{"url":"https://example.com/hook","filterTypes":[]}`},
		{"secret not base64", `{"url":"https://example.com/hook","secret":"whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"}`},
		{"secret too short", `{"url":"https://example.com/hook","secret":"whsec_c2hvcnQ="}`},
		{"no url", `{"uid":"ep_1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, url, request{path: "/api/v1/app/usr_1/endpoint", auth: "Bearer t", body: tc.body})
			if r.status != http.StatusUnprocessableEntity {
				t.Errorf("status %d (%s), want 422", r.status, r.body)
			}
		})
	}
}

func TestScriptForAppliesToItsOperationOnly(t *testing.T) {
	s, client := newAppWithClient(t)
	ctx := context.Background()
	s.ScriptFor(CreateEndpoint, Response{Status: http.StatusInternalServerError}, Response{Status: http.StatusTooManyRequests, RetryAfter: "3"})
	s.ScriptFor(ListApplications, Response{Status: http.StatusServiceUnavailable})

	// Other operations and messages are handled normally.
	if _, err := client.Application.Get(ctx, "usr_1"); err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, err := client.Message.Create(ctx, "usr_1", rawMessageIn("user.signup", "evt-1", `{}`), nil); err != nil {
		t.Errorf("message: %v", err)
	}
	if _, err := client.Application.List(ctx, nil); sdkStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("List: %v, want the scripted 503", err)
	}
	in := newEndpointIn("https://example.com/hook", "ep_1")
	for i, want := range []int{500, 429} {
		r := do(t, s.URL(), request{path: "/api/v1/app/usr_1/endpoint", auth: "Bearer test-token", body: `{"url":"https://example.com/hook","uid":"ep_1"}`})
		if r.status != want {
			t.Fatalf("create %d: status %d, want %d", i, r.status, want)
		}
		if code, detail := errorBody(t, r); code == "" || detail == "" {
			t.Errorf("create %d: error body %s lacks code or detail", i, r.body)
		}
		if want == 429 && r.header.Get("Retry-After") != "3" {
			t.Errorf("Retry-After %q, want 3", r.header.Get("Retry-After"))
		}
	}
	if _, ok := s.Endpoint("usr_1", "ep_1"); ok {
		t.Error("a scripted failure stored the endpoint")
	}
	if _, err := client.Endpoint.Create(ctx, "usr_1", in, nil); err != nil {
		t.Errorf("create after the script: %v", err)
	}
	for op, want := range map[Operation]int{CreateEndpoint: 3, ListApplications: 1, GetApplication: 1, CreateMessage: 1, DeleteEndpoint: 0} {
		if got := s.Requests(op); got != want {
			t.Errorf("Requests(%s) = %d, want %d", op, got, want)
		}
	}
	if got := s.Attempts(); got != 1 {
		t.Errorf("Attempts() = %d, want 1 (message creation only)", got)
	}
}

func TestEndpointRoutesNeedTheToken(t *testing.T) {
	s, url := newPlainServer(t, Options{Token: "right"})
	for _, r := range []request{
		{path: "/api/v1/app", body: `{"name":"x"}`},
		{method: http.MethodGet, path: "/api/v1/app/usr_1"},
		{method: http.MethodPut, path: "/api/v1/app/usr_1", body: `{"name":"x"}`},
		{method: http.MethodDelete, path: "/api/v1/app/usr_1"},
		{path: "/api/v1/app/usr_1/endpoint", body: `{"url":"https://example.com"}`},
		{method: http.MethodGet, path: "/api/v1/app/usr_1/endpoint/ep_1"},
		{method: http.MethodPut, path: "/api/v1/app/usr_1/endpoint/ep_1", body: `{"url":"https://example.com"}`},
		{method: http.MethodDelete, path: "/api/v1/app/usr_1/endpoint/ep_1"},
		{method: http.MethodGet, path: "/api/v1/app/usr_1/endpoint/ep_1/secret"},
		{path: "/api/v1/app/usr_1/endpoint/ep_1/secret/rotate", body: `{}`},
	} {
		r.auth = "Bearer wrong"
		t.Run(fmt.Sprint(r.method, " ", r.path), func(t *testing.T) {
			if got := do(t, url, r); got.status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", got.status)
			}
		})
	}
	if _, ok := s.Application("usr_1"); ok {
		t.Error("an unauthorized request created an application")
	}
}
