package svix

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	svixgo "github.com/svix/svix-webhooks/go"

	"github.com/gwook/gwook/test/svixserver"
)

const mirrorToken = "sk_mirror_token_never_shown"

// Secrets of 24 bytes, shaped like Gwook's.
const (
	secretA = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	secretB = "whsec_QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
)

// mirrorServer is a validating Svix-compatible server for mirror tests.
type mirrorServer struct {
	svx *svixserver.Server
	url string

	mu         sync.Mutex
	violations []string
}

// newMirrorServer starts a validating server expecting mirrorToken. A
// request that does not match Svix's OpenAPI document fails the test
// unless allowViolations, when it is only recorded.
func newMirrorServer(t *testing.T, allowViolations bool) *mirrorServer {
	t.Helper()
	ms := &mirrorServer{}
	svx, err := svixserver.NewServer(svixserver.Options{Token: mirrorToken, Validate: true, OnViolation: func(err error) {
		ms.mu.Lock()
		ms.violations = append(ms.violations, err.Error())
		ms.mu.Unlock()
		if !allowViolations {
			t.Errorf("request does not match the Svix OpenAPI document: %v", err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ms.svx = svx
	srv := httptest.NewServer(svx)
	t.Cleanup(srv.Close)
	ms.url = srv.URL
	return ms
}

func (ms *mirrorServer) Violations() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return slices.Clone(ms.violations)
}

func newMirrorSender(t *testing.T, url, token string) *Sender {
	t.Helper()
	s, err := New(Config{Token: token, ServerURL: url, MaxConnsPerHost: 2, Timeout: time.Second, Retry: fastPolicy(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mirrorWithApp returns a server, a sender and the uid of an application
// already mirrored to it.
func mirrorWithApp(t *testing.T) (*mirrorServer, *Sender, string) {
	t.Helper()
	ms := newMirrorServer(t, false)
	s := newMirrorSender(t, ms.url, mirrorToken)
	const appID = "usr_1"
	if err := s.UpsertApplication(context.Background(), MirrorApplication{ID: appID, Name: "User one"}); err != nil {
		t.Fatal(err)
	}
	return ms, s, appID
}

func TestUpsertApplicationCreatesThenUpdates(t *testing.T) {
	ms := newMirrorServer(t, false)
	s := newMirrorSender(t, ms.url, mirrorToken)
	ctx := context.Background()

	if err := s.UpsertApplication(ctx, MirrorApplication{ID: "usr_1", Name: "First"}); err != nil {
		t.Fatal(err)
	}
	created, ok := ms.svx.Application("usr_1")
	if !ok || created.UID != "usr_1" || created.Name != "First" || len(created.Metadata) != 0 {
		t.Fatalf("after create: %+v, %v", created, ok)
	}
	app := MirrorApplication{ID: "usr_1", Name: "Second", Metadata: map[string]string{"plan": "pro"}}
	for range 2 {
		if err := s.UpsertApplication(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := ms.svx.Application("usr_1")
	if !ok || got.ID != created.ID || got.UID != "usr_1" || got.Name != "Second" || got.Metadata["plan"] != "pro" {
		t.Errorf("after updates: %+v, %v; want Svix id %s kept, name Second, plan pro", got, ok, created.ID)
	}
}

func TestUpsertApplicationAdoptsAnExistingOne(t *testing.T) {
	ms := newMirrorServer(t, false)
	s := newMirrorSender(t, ms.url, mirrorToken)
	// Svix already has an application with the uid, created by someone else.
	client := newSDKClient(t, ms.url)
	uid := "usr_adopted"
	existing, err := client.Application.Create(context.Background(), applicationIn("Old name", uid), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertApplication(context.Background(), MirrorApplication{ID: uid, Name: "New name"}); err != nil {
		t.Fatal(err)
	}
	got, _ := ms.svx.Application(uid)
	if got.ID != existing.Id || got.Name != "New name" {
		t.Errorf("application %+v; want Svix id %s with the new name", got, existing.Id)
	}
}

func TestDeleteApplication(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	ctx := context.Background()
	if err := s.DeleteApplication(ctx, appID); err != nil {
		t.Fatal(err)
	}
	if _, ok := ms.svx.Application(appID); ok {
		t.Fatal("the application is still there")
	}
	// Svix answers 404 now: already deleted is deleted.
	if err := s.DeleteApplication(ctx, appID); err != nil {
		t.Errorf("deleting a missing application: %v", err)
	}
	if n := ms.svx.Requests(svixserver.DeleteApplication); n != 2 {
		t.Errorf("Svix got %d delete requests, want 2", n)
	}
}

func TestUpsertEndpointTwiceLeavesOneEndpoint(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	createEventType(t, ms.url, "order.paid", "Paid orders")
	ep := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Description: "orders", EventTypes: []string{"order.paid"}, Secret: secretA}
	for range 2 {
		if err := s.UpsertEndpoint(context.Background(), appID, ep); err != nil {
			t.Fatal(err)
		}
	}
	eps := ms.svx.Endpoints(appID)
	if len(eps) != 1 {
		t.Fatalf("Svix has %d endpoints, want 1: %+v", len(eps), eps)
	}
	got := eps[0]
	if got.UID != "ep_1" || got.URL != ep.URL || got.Description != "orders" || !slices.Equal(got.FilterTypes, []string{"order.paid"}) ||
		got.Disabled || got.Secret != secretA {
		t.Errorf("endpoint %+v", got)
	}
	if c, u := ms.svx.Requests(svixserver.CreateEndpoint), ms.svx.Requests(svixserver.UpdateEndpoint); c != 2 || u != 1 {
		t.Errorf("Svix got %d creates and %d updates, want 2 and 1", c, u)
	}
}

func TestUpsertEndpointUpdatesValuesButNotTheSecret(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	ctx := context.Background()
	first := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/a", Description: "a", EventTypes: []string{"x.y"}, Secret: secretA}
	if err := s.UpsertEndpoint(ctx, appID, first); err != nil {
		t.Fatal(err)
	}
	before, _ := ms.svx.Endpoint(appID, "ep_1")
	second := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/b", Description: "", EventTypes: nil, Disabled: true, Secret: secretB}
	if err := s.UpsertEndpoint(ctx, appID, second); err != nil {
		t.Fatal(err)
	}
	got, ok := ms.svx.Endpoint(appID, "ep_1")
	if !ok || got.ID != before.ID || got.UID != "ep_1" || got.URL != second.URL || got.Description != "" ||
		got.FilterTypes != nil || !got.Disabled {
		t.Errorf("after update: %+v; want the same Svix endpoint with the new values and no filter", got)
	}
	if got.Secret != secretA {
		t.Error("an update changed the secret; only a rotation should")
	}
}

func TestUpsertEndpointEventTypes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		eventTypes   []string
		disabled     bool
		wantFilter   []string
		wantDisabled bool
	}{
		{"nil is every type", nil, false, nil, false},
		{"none is disabled", []string{}, false, nil, true},
		{"repeats dropped", []string{"a.b", "c.d", "a.b"}, false, []string{"a.b", "c.d"}, false},
		{"disabled stays disabled", []string{"a.b"}, true, []string{"a.b"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, s, appID := mirrorWithApp(t)
			ep := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", EventTypes: tc.eventTypes, Disabled: tc.disabled, Secret: secretA}
			if err := s.UpsertEndpoint(context.Background(), appID, ep); err != nil {
				t.Fatal(err)
			}
			got, _ := ms.svx.Endpoint(appID, "ep_1")
			if !slices.Equal(got.FilterTypes, tc.wantFilter) || (got.FilterTypes == nil) != (tc.wantFilter == nil) || got.Disabled != tc.wantDisabled {
				t.Errorf("filterTypes %q, disabled %v; want %q, %v", got.FilterTypes, got.Disabled, tc.wantFilter, tc.wantDisabled)
			}
		})
	}
}

func TestUpsertEndpointDeletedBetweenCreateAndUpdate(t *testing.T) {
	ms := newMirrorServer(t, false)
	// The endpoint exists when the create arrives (409) but is deleted just
	// before the update, which then creates it with a secret of Svix's.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/endpoint/") {
			del := httptest.NewRequest(http.MethodDelete, r.URL.Path, nil)
			del.Header.Set("Authorization", "Bearer "+mirrorToken)
			ms.svx.ServeHTTP(httptest.NewRecorder(), del)
		}
		ms.svx.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s := newMirrorSender(t, srv.URL, mirrorToken)
	ctx := context.Background()
	if err := s.UpsertApplication(ctx, MirrorApplication{ID: "usr_1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	ep := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Secret: secretA}
	for range 2 {
		if err := s.UpsertEndpoint(ctx, "usr_1", ep); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := ms.svx.Endpoint("usr_1", "ep_1")
	if !ok || got.Secret != secretA || len(got.PreviousSecrets) != 0 {
		t.Errorf("endpoint %+v, %v; want Gwook's secret and no other valid one", got, ok)
	}
	if n := len(ms.svx.Endpoints("usr_1")); n != 1 {
		t.Errorf("Svix has %d endpoints, want 1", n)
	}
}

func TestUpsertEndpointInAMissingApplication(t *testing.T) {
	ms := newMirrorServer(t, false)
	s := newMirrorSender(t, ms.url, mirrorToken)
	err := s.UpsertEndpoint(context.Background(), "usr_missing", MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Secret: secretA})
	me, ok := errors.AsType[*MirrorError](err)
	if !ok || me.Status != http.StatusNotFound {
		t.Fatalf("err = %v; want a *MirrorError with status 404", err)
	}
	if n := ms.svx.Requests(svixserver.CreateEndpoint); n != 1 {
		t.Errorf("Svix got %d requests, want 1", n)
	}
}

func TestDeleteEndpoint(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	ctx := context.Background()
	for _, id := range []string{"ep_1", "ep_2"} {
		if err := s.UpsertEndpoint(ctx, appID, MirrorEndpoint{ID: id, URL: "https://example.com/" + id, Secret: secretA}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteEndpoint(ctx, appID, "ep_1"); err != nil {
		t.Fatal(err)
	}
	if eps := ms.svx.Endpoints(appID); len(eps) != 1 || eps[0].UID != "ep_2" {
		t.Fatalf("endpoints after delete: %+v; want only ep_2", eps)
	}
	if err := s.DeleteEndpoint(ctx, appID, "ep_1"); err != nil {
		t.Errorf("deleting a missing endpoint: %v", err)
	}
	if err := s.DeleteEndpoint(ctx, "usr_missing", "ep_1"); err != nil {
		t.Errorf("deleting an endpoint of a missing application: %v", err)
	}
	// The uid is free again.
	if err := s.UpsertEndpoint(ctx, appID, MirrorEndpoint{ID: "ep_1", URL: "https://example.com/again", Secret: secretB}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ms.svx.Endpoint(appID, "ep_1"); got.Secret != secretB || got.URL != "https://example.com/again" {
		t.Errorf("re-created endpoint %+v", got)
	}
}

func TestRotateEndpointSecretKeepsThePreviousOne(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	ctx := context.Background()
	if err := s.UpsertEndpoint(ctx, appID, MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Secret: secretA}); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	for range 2 {
		if err := s.RotateEndpointSecret(ctx, appID, "ep_1", secretB); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := ms.svx.Endpoint(appID, "ep_1")
	if got.Secret != secretB {
		t.Error("the new secret is not the current one")
	}
	if len(got.PreviousSecrets) != 1 || got.PreviousSecrets[0].Secret != secretA {
		t.Fatalf("%d previous secrets; want exactly the old one (a second call changes nothing)", len(got.PreviousSecrets))
	}
	// Svix's default grace period, which Gwook relies on, is 24 hours.
	if exp := got.PreviousSecrets[0].ExpiresAt; exp.Before(rotated.Add(23*time.Hour)) || exp.After(time.Now().Add(25*time.Hour)) {
		t.Errorf("previous secret expires at %v, want about 24 hours after %v", exp, rotated)
	}
	if n := ms.svx.Requests(svixserver.RotateEndpointSecret); n != 1 {
		t.Errorf("Svix got %d rotations, want 1", n)
	}
}

func TestMirrorRetriesTransientFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer svixserver.Response
	}{
		{"500", svixserver.Response{Status: http.StatusInternalServerError}},
		{"503", svixserver.Response{Status: http.StatusServiceUnavailable}},
		{"429 with Retry-After", svixserver.Response{Status: http.StatusTooManyRequests, RetryAfter: "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, s, appID := mirrorWithApp(t)
			ms.svx.ScriptFor(svixserver.CreateEndpoint, tc.answer)
			if err := s.UpsertEndpoint(context.Background(), appID, MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Secret: secretA}); err != nil {
				t.Fatal(err)
			}
			if n := ms.svx.Requests(svixserver.CreateEndpoint); n != 2 {
				t.Errorf("Svix got %d creates, want 2", n)
			}
			if eps := ms.svx.Endpoints(appID); len(eps) != 1 || eps[0].Secret != secretA {
				t.Errorf("endpoints %+v; want one with Gwook's secret", eps)
			}
		})
	}
}

func TestMirrorGivesUpAfterTheRetryPolicy(t *testing.T) {
	ms, s, _ := mirrorWithApp(t)
	answers := slices.Repeat([]svixserver.Response{{Status: http.StatusServiceUnavailable}}, 10)
	ms.svx.ScriptFor(svixserver.UpdateApplication, answers...)
	err := s.UpsertApplication(context.Background(), MirrorApplication{ID: "usr_2", Name: "two"})
	me, ok := errors.AsType[*MirrorError](err)
	if !ok || me.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v; want a *MirrorError with status 503", err)
	}
	// One request made by mirrorWithApp, then MaxAttempts.
	if n := ms.svx.Requests(svixserver.UpdateApplication); n != 1+fastPolicy().MaxAttempts {
		t.Errorf("Svix got %d requests, want %d", n, 1+fastPolicy().MaxAttempts)
	}
}

func TestMirrorTimesOutEachRequest(t *testing.T) {
	ms, _, appID := mirrorWithApp(t)
	policy := fastPolicy()
	policy.MaxAttempts = 2
	s, err := New(Config{Token: mirrorToken, ServerURL: ms.url, MaxConnsPerHost: 2, Timeout: 50 * time.Millisecond, Retry: policy,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ms.svx.ScriptFor(svixserver.DeleteEndpoint, svixserver.Response{Delay: time.Minute}, svixserver.Response{Delay: time.Minute})
	err = s.DeleteEndpoint(context.Background(), appID, "ep_1")
	me, ok := errors.AsType[*MirrorError](err)
	if !ok || me.Status != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want a *MirrorError without status, from the per-request timeout", err)
	}
	if n := ms.svx.Requests(svixserver.DeleteEndpoint); n != 2 {
		t.Errorf("Svix got %d requests, want 2", n)
	}
}

func TestMirrorDoesNotRetryA422(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	ms.svx.ScriptFor(svixserver.CreateEndpoint, svixserver.Response{Status: http.StatusUnprocessableEntity})
	err := s.UpsertEndpoint(context.Background(), appID, MirrorEndpoint{ID: "ep_x", URL: "https://example.com/hook", Secret: secretA})
	me, ok := errors.AsType[*MirrorError](err)
	if !ok || me.Status != http.StatusUnprocessableEntity {
		t.Fatalf("err = %v; want a *MirrorError with status 422", err)
	}
	if !strings.HasPrefix(err.Error(), "svix: creating endpoint ep_x in application usr_1: 422 Unprocessable Entity") {
		t.Errorf("error %q does not say what failed", err)
	}
	if n := ms.svx.Requests(svixserver.CreateEndpoint); n != 1 {
		t.Errorf("Svix got %d creates, want 1", n)
	}
	if errors.Is(err, ErrUnauthorized) {
		t.Error("a 422 matches ErrUnauthorized")
	}
}

func TestMirrorErrorsNeverShowTheSecret(t *testing.T) {
	ms := newMirrorServer(t, true)
	s := newMirrorSender(t, ms.url, mirrorToken)
	ctx := context.Background()
	if err := s.UpsertApplication(ctx, MirrorApplication{ID: "usr_1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	// Too short for Svix's pattern: Svix refuses it, and says why.
	const badSecret = "whsec_c2VjcmV0LXZhbHVl"
	err := s.UpsertEndpoint(ctx, "usr_1", MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Secret: badSecret})
	me, ok := errors.AsType[*MirrorError](err)
	if !ok || me.Status != http.StatusUnprocessableEntity || me.Detail == "" {
		t.Fatalf("err = %v; want a 422 with Svix's detail", err)
	}
	if len(ms.Violations()) != 1 {
		t.Errorf("violations %q, want one", ms.Violations())
	}
	for _, text := range []string{err.Error(), me.Detail, me.Err.Error()} {
		if strings.Contains(text, "c2VjcmV0LXZhbHVl") {
			t.Errorf("the error shows the secret: %s", text)
		}
	}
	if !strings.Contains(me.Detail, "secret") {
		t.Errorf("detail %q does not say what Svix refused", me.Detail)
	}
}

func TestMirrorUnauthorized(t *testing.T) {
	ms := newMirrorServer(t, false)
	s := newMirrorSender(t, ms.url, "sk_wrong_token_never_shown")
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"upsert application": func() error { return s.UpsertApplication(ctx, MirrorApplication{ID: "usr_1", Name: "one"}) },
		"delete application": func() error { return s.DeleteApplication(ctx, "usr_1") },
		"upsert endpoint": func() error {
			return s.UpsertEndpoint(ctx, "usr_1", MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Secret: secretA})
		},
		"delete endpoint": func() error { return s.DeleteEndpoint(ctx, "usr_1", "ep_1") },
		"rotate secret":   func() error { return s.RotateEndpointSecret(ctx, "usr_1", "ep_1", secretB) },
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err = %v; want ErrUnauthorized", err)
			}
			if me, ok := errors.AsType[*MirrorError](err); !ok || me.Status != http.StatusUnauthorized {
				t.Errorf("err = %#v; want a *MirrorError with status 401", err)
			}
			if strings.Contains(err.Error(), "never_shown") || strings.Contains(err.Error(), secretB[6:]) {
				t.Errorf("the error shows a credential: %v", err)
			}
		})
	}
	// Each refused once, none retried.
	for _, op := range []svixserver.Operation{svixserver.UpdateApplication, svixserver.DeleteApplication,
		svixserver.CreateEndpoint, svixserver.DeleteEndpoint, svixserver.GetEndpointSecret} {
		if n := ms.svx.Requests(op); n != 1 {
			t.Errorf("%s: Svix got %d requests, want 1", op, n)
		}
	}
}

// newSDKClient returns a plain SDK client for url with mirrorToken, for
// setting up what Svix holds before a test.
func newSDKClient(t *testing.T, url string) *svixgo.Svix {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	client, err := svixgo.New(mirrorToken, &svixgo.SvixOptions{ServerUrl: u, RetrySchedule: &[]time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func applicationIn(name, uid string) svixgo.ApplicationIn {
	return svixgo.ApplicationIn{Name: name, Uid: &uid}
}

// createEventType makes the server at url hold the event type name with
// description and a schema.
func createEventType(t *testing.T, url, name, description string) {
	t.Helper()
	schemas := map[string]any{"1": map[string]any{"type": "object", "title": name}}
	in := svixgo.EventTypeIn{Name: name, Description: description, Schemas: &schemas}
	if _, err := newSDKClient(t, url).EventType.Create(context.Background(), in, nil); err != nil {
		t.Fatal(err)
	}
}

func TestUpsertEndpointCreatesMissingEventTypes(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	ctx := context.Background()
	createEventType(t, ms.url, "order.known", "Known orders")
	known, _ := ms.svx.EventType("order.known")

	eventTypes := []string{"order.known", "order.new", "order.other"}
	ep := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", EventTypes: eventTypes, Secret: secretA}
	if err := s.UpsertEndpoint(ctx, appID, ep); err != nil {
		t.Fatal(err)
	}
	got, ok := ms.svx.Endpoint(appID, "ep_1")
	if !ok || !slices.Equal(got.FilterTypes, eventTypes) || got.Secret != secretA {
		t.Fatalf("endpoint %+v, %v; want it filtering on %q", got, ok, eventTypes)
	}
	for _, name := range []string{"order.new", "order.other"} {
		et, ok := ms.svx.EventType(name)
		if !ok || et.Archived || et.Description != autoEventTypeDescription || et.Schemas != nil {
			t.Errorf("event type %s: %+v, %v; want it created with Gwook's description", name, et, ok)
		}
	}
	if after, _ := ms.svx.EventType("order.known"); after.Description != "Known orders" || string(after.Schemas) != string(known.Schemas) ||
		!after.UpdatedAt.Equal(known.UpdatedAt) {
		t.Errorf("the existing event type changed: %+v, was %+v", after, known)
	}
	// The refused create, then the one that succeeded; an unarchiving
	// attempt (404) and a create per missing type, none for the known one.
	for op, want := range map[svixserver.Operation]int{svixserver.CreateEndpoint: 2, svixserver.PatchEventType: 2,
		svixserver.CreateEventType: 1 + 2, svixserver.ListEventTypes: 0} {
		if n := ms.svx.Requests(op); n != want {
			t.Errorf("Requests(%s) = %d, want %d", op, n, want)
		}
	}

	// Once Svix has them, an upsert costs no event-type requests.
	ep.Description = "again"
	if err := s.UpsertEndpoint(ctx, appID, ep); err != nil {
		t.Fatal(err)
	}
	if n := ms.svx.Requests(svixserver.CreateEventType) + ms.svx.Requests(svixserver.PatchEventType); n != 3+2 {
		t.Errorf("%d event-type requests in all, want no more than the first upsert's", n)
	}
}

func TestUpsertEndpointAddsEventTypesToAnExistingEndpoint(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	ctx := context.Background()
	ep := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", Secret: secretA}
	if err := s.UpsertEndpoint(ctx, appID, ep); err != nil {
		t.Fatal(err)
	}
	before, _ := ms.svx.Endpoint(appID, "ep_1")
	ep.EventTypes = []string{"invoice.sent"}
	if err := s.UpsertEndpoint(ctx, appID, ep); err != nil {
		t.Fatal(err)
	}
	got, _ := ms.svx.Endpoint(appID, "ep_1")
	if got.ID != before.ID || !slices.Equal(got.FilterTypes, ep.EventTypes) || got.Secret != secretA {
		t.Errorf("endpoint %+v; want the same one filtering on invoice.sent", got)
	}
	if _, ok := ms.svx.EventType("invoice.sent"); !ok {
		t.Error("Svix does not have the event type")
	}
	if n := len(ms.svx.Endpoints(appID)); n != 1 {
		t.Errorf("Svix has %d endpoints, want 1", n)
	}
}

func TestUpsertEndpointUnarchivesAnArchivedEventType(t *testing.T) {
	ms, s, appID := mirrorWithApp(t)
	createEventType(t, ms.url, "order.old", "Old orders")
	if err := newSDKClient(t, ms.url).EventType.Delete(context.Background(), "order.old", nil); err != nil {
		t.Fatal(err)
	}
	archived, _ := ms.svx.EventType("order.old")
	ep := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", EventTypes: []string{"order.old"}, Secret: secretA}
	if err := s.UpsertEndpoint(context.Background(), appID, ep); err != nil {
		t.Fatal(err)
	}
	got, _ := ms.svx.EventType("order.old")
	if got.Archived || got.Description != "Old orders" || string(got.Schemas) != string(archived.Schemas) || len(got.Schemas) == 0 {
		t.Errorf("event type %+v; want it unarchived with its description and schemas", got)
	}
	if n := ms.svx.Requests(svixserver.CreateEventType); n != 1 {
		t.Errorf("Svix got %d event-type creates, want only the test's own", n)
	}
	if got, _ := ms.svx.Endpoint(appID, "ep_1"); !slices.Equal(got.FilterTypes, []string{"order.old"}) {
		t.Errorf("filterTypes %q", got.FilterTypes)
	}
}

func TestUpsertEndpointTakesAnEventTypeCreatedMeanwhile(t *testing.T) {
	ms := newMirrorServer(t, false)
	// Someone else creates the event type just before Gwook does.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/event-type" {
			other := httptest.NewRequest(http.MethodPost, r.URL.Path, strings.NewReader(`{"name":"order.raced","description":"Theirs"}`))
			other.Header.Set("Authorization", "Bearer "+mirrorToken)
			other.Header.Set("Content-Type", "application/json")
			ms.svx.ServeHTTP(httptest.NewRecorder(), other)
		}
		ms.svx.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s := newMirrorSender(t, srv.URL, mirrorToken)
	ctx := context.Background()
	if err := s.UpsertApplication(ctx, MirrorApplication{ID: "usr_1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	ep := MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", EventTypes: []string{"order.raced"}, Secret: secretA}
	if err := s.UpsertEndpoint(ctx, "usr_1", ep); err != nil {
		t.Fatalf("a 409 to the event type's create: %v", err)
	}
	if et, _ := ms.svx.EventType("order.raced"); et.Description != "Theirs" {
		t.Errorf("event type %+v; want the other one's, untouched", et)
	}
	if got, ok := ms.svx.Endpoint("usr_1", "ep_1"); !ok || !slices.Equal(got.FilterTypes, ep.EventTypes) {
		t.Errorf("endpoint %+v, %v", got, ok)
	}
}

func TestUpsertEndpointTriesOnlyOnceMore(t *testing.T) {
	ms := newMirrorServer(t, false)
	// The event type is archived again before every endpoint request.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/endpoint") {
			archive := httptest.NewRequest(http.MethodDelete, "/api/v1/event-type/order.flaky", nil)
			archive.Header.Set("Authorization", "Bearer "+mirrorToken)
			ms.svx.ServeHTTP(httptest.NewRecorder(), archive)
		}
		ms.svx.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	createEventType(t, ms.url, "order.flaky", "Flaky")
	s := newMirrorSender(t, srv.URL, mirrorToken)
	ctx := context.Background()
	if err := s.UpsertApplication(ctx, MirrorApplication{ID: "usr_1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	err := s.UpsertEndpoint(ctx, "usr_1", MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", EventTypes: []string{"order.flaky"}, Secret: secretA})
	me, ok := errors.AsType[*MirrorError](err)
	if !ok || me.Status != http.StatusUnprocessableEntity || !strings.Contains(me.Detail, "order.flaky") {
		t.Fatalf("err = %v; want Svix's 422 naming the event type", err)
	}
	if c, p := ms.svx.Requests(svixserver.CreateEndpoint), ms.svx.Requests(svixserver.PatchEventType); c != 2 || p != 1 {
		t.Errorf("Svix got %d endpoint creates and %d unarchivings, want 2 and 1", c, p)
	}
}

func TestUpsertEndpointEventTypeFailures(t *testing.T) {
	fails := func(n int, status int) []svixserver.Response {
		return slices.Repeat([]svixserver.Response{{Status: status}}, n)
	}
	for _, tc := range []struct {
		name       string
		op         svixserver.Operation
		answers    []svixserver.Response
		wantStatus int
		wantOp     string
		wantUnauth bool
	}{
		{"create refused", svixserver.CreateEventType, fails(1, http.StatusBadRequest), http.StatusBadRequest, "creating event type order.new", false},
		{"create unavailable", svixserver.CreateEventType, fails(fastPolicy().MaxAttempts, http.StatusServiceUnavailable),
			http.StatusServiceUnavailable, "creating event type order.new", false},
		{"create forbidden", svixserver.CreateEventType, fails(1, http.StatusForbidden), http.StatusForbidden, "creating event type order.new", true},
		{"unarchiving unauthorized", svixserver.PatchEventType, fails(1, http.StatusUnauthorized), http.StatusUnauthorized,
			"unarchiving event type order.new", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, s, appID := mirrorWithApp(t)
			ms.svx.ScriptFor(tc.op, tc.answers...)
			err := s.UpsertEndpoint(context.Background(), appID,
				MirrorEndpoint{ID: "ep_1", URL: "https://example.com/hook", EventTypes: []string{"order.new"}, Secret: secretA})
			me, ok := errors.AsType[*MirrorError](err)
			if !ok || me.Status != tc.wantStatus || me.Op != tc.wantOp {
				t.Fatalf("err = %#v; want a *MirrorError of %q with status %d", err, tc.wantOp, tc.wantStatus)
			}
			if errors.Is(err, ErrUnauthorized) != tc.wantUnauth {
				t.Errorf("errors.Is(err, ErrUnauthorized) = %v, want %v", !tc.wantUnauth, tc.wantUnauth)
			}
			if n := ms.svx.Requests(tc.op); n != len(tc.answers) {
				t.Errorf("Svix got %d requests to %s, want %d", n, tc.op, len(tc.answers))
			}
			if _, ok := ms.svx.Endpoint(appID, "ep_1"); ok {
				t.Error("Svix has the endpoint")
			}
			if n := ms.svx.Requests(svixserver.CreateEndpoint); n != 1 {
				t.Errorf("Svix got %d endpoint creates, want 1", n)
			}
		})
	}
}

func TestUnknownEventTypes(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"Svix's message", `{"detail":[{"loc":["body","filterTypes"],"msg":"The following event types don't exist: a.b, c-d_e","type":"value_error"}]}`,
			[]string{"a.b", "c-d_e"}},
		{"an older list format", `{"detail":[{"loc":["body","event_types_ids"],"msg":"The following type names don't exist: [EventTypeName(\"a.b\")]","type":"value_error"}]}`,
			// Words of the format are read as names too; only those the
			// endpoint asked for are made.
			[]string{"EventTypeName", "a.b"}},
		{"another validation error", `{"detail":[{"loc":["body","url"],"msg":"url: invalid","type":"value_error"}]}`, nil},
		{"a code and detail", `{"code":"validation","detail":"The following event types don't exist: a.b"}`, nil},
		{"not JSON", `oops`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unknownEventTypes([]byte(tc.body)); !slices.Equal(got, tc.want) {
				t.Errorf("unknownEventTypes = %q, want %q", got, tc.want)
			}
		})
	}
	// Only names the endpoint asked for are made, and only after a 422.
	err := &MirrorError{Status: http.StatusUnprocessableEntity, unknownEventTypes: []string{"EventTypeName", "a.b", "x.y"}}
	if got := missingEventTypes(err, []string{"x.y", "a.b", "c.d"}); !slices.Equal(got, []string{"x.y", "a.b"}) {
		t.Errorf("missingEventTypes = %q, want [x.y a.b]", got)
	}
	if got := missingEventTypes(&MirrorError{Status: http.StatusBadRequest, unknownEventTypes: []string{"a.b"}}, []string{"a.b"}); got != nil {
		t.Errorf("missingEventTypes of a 400 = %q, want none", got)
	}
}

func TestDebugLogsNeverShowEndpointSecrets(t *testing.T) {
	ms := newMirrorServer(t, false)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Config{Token: mirrorToken, ServerURL: ms.url, Debug: true, MaxConnsPerHost: 1, Timeout: time.Second,
		Retry: fastPolicy(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.UpsertApplication(ctx, MirrorApplication{ID: "usr_debug", Name: "Debug"}); err != nil {
		t.Fatal(err)
	}
	first, second := "whsec_Zmlyc3Qtc2VjcmV0LWZpcnN0LXNlY3JldC0zMmJ5dGU=", "whsec_c2Vjb25kLXNlY3JldC1zZWNvbmQtc2VjcmV0LTMyYnk="
	if err := s.UpsertEndpoint(ctx, "usr_debug", MirrorEndpoint{ID: "ep_debug", URL: "https://93.184.216.34/", Secret: first}); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateEndpointSecret(ctx, "usr_debug", "ep_debug", second); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{first, second, strings.TrimPrefix(first, "whsec_"), strings.TrimPrefix(second, "whsec_")} {
		if strings.Contains(out, secret) {
			t.Fatalf("the debug log shows an endpoint secret:\n%s", out)
		}
	}
	if !strings.Contains(out, `[redacted]`) || !strings.Contains(out, "ep_debug") {
		t.Errorf("the debug log should show the endpoint's requests with their secrets redacted:\n%s", out)
	}
}
