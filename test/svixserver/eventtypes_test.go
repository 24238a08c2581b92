package svixserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/utils"
)

func newEventTypeIn(name, description string) svix.EventTypeIn {
	return svix.EventTypeIn{Name: name, Description: description}
}

func TestSDKEventTypeLifecycle(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()

	schemas := map[string]any{"1": map[string]any{"type": "object"}}
	group := "order"
	in := newEventTypeIn("order.paid", "An order was paid")
	in.Schemas, in.GroupName, in.FeatureFlags = &schemas, &group, []string{"beta"}
	created, err := client.EventType.Create(ctx, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created.Name != "order.paid" || created.Description != "An order was paid" || created.Schemas == nil ||
		created.GroupName == nil || *created.GroupName != "order" || !slices.Equal(created.FeatureFlags, []string{"beta"}) ||
		(created.Archived != nil && *created.Archived) || created.CreatedAt.IsZero() {
		t.Fatalf("created %+v", created)
	}
	if _, err := client.EventType.Create(ctx, newEventTypeIn("order.paid", "other"), nil); sdkStatus(err) != http.StatusConflict {
		t.Errorf("creating a taken name: %v, want 409", err)
	}
	got, ok := s.EventType("order.paid")
	if !ok || got.Description != "An order was paid" || string(got.Schemas) != `{"1":{"type":"object"}}` || got.GroupName != "order" || got.Archived {
		t.Fatalf("EventType(order.paid) = %+v, %v; want it unchanged by the refused create", got, ok)
	}
	if read, err := client.EventType.Get(ctx, "order.paid"); err != nil || read.Description != created.Description || read.Schemas == nil {
		t.Errorf("Get = %+v, %v", read, err)
	}
	if _, err := client.EventType.Get(ctx, "order.missing"); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("Get of a missing event type: %v, want 404", err)
	}

	// PUT creates a missing one, and replaces every field of an existing one.
	if _, err := client.EventType.Update(ctx, "order.refunded", svix.EventTypeUpdate{Description: "Refunded"}); err != nil {
		t.Fatal(err)
	}
	deprecated := true
	updated, err := client.EventType.Update(ctx, "order.paid", svix.EventTypeUpdate{Description: "Paid", Deprecated: &deprecated})
	if err != nil || updated.Description != "Paid" || !updated.Deprecated || updated.Schemas != nil || updated.GroupName != nil || updated.FeatureFlags != nil {
		t.Errorf("Update = %+v, %v; want the new description, deprecated, and every other field reset", updated, err)
	}

	// PATCH changes only what it names.
	description := "Paid at last"
	patched, err := client.EventType.Patch(ctx, "order.paid", svix.EventTypePatch{Description: &description,
		Schemas: utils.NewNullable(schemas)})
	if err != nil || patched.Description != description || !patched.Deprecated || patched.Schemas == nil {
		t.Errorf("Patch = %+v, %v; want the new description and schemas, still deprecated", patched, err)
	}
	if _, err := client.EventType.Patch(ctx, "order.missing", svix.EventTypePatch{Description: &description}); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("Patch of a missing event type: %v, want 404", err)
	}

	// DELETE archives: still there, no longer listed, and no endpoint may
	// filter on it.
	if err := client.EventType.Delete(ctx, "order.paid", nil); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.EventType("order.paid"); !ok || !got.Archived || got.Description != description {
		t.Errorf("after Delete: %+v, %v; want it archived", got, ok)
	}
	list, err := client.EventType.List(ctx, nil)
	if err != nil || len(list.Data) != 1 || list.Data[0].Name != "order.refunded" || !list.Done {
		t.Errorf("List = %+v, %v; want only order.refunded", list, err)
	}
	includeArchived := true
	if list, err := client.EventType.List(ctx, &svix.EventTypeListOptions{IncludeArchived: &includeArchived}); err != nil || len(list.Data) != 2 ||
		list.Data[0].Schemas != nil {
		t.Errorf("List with archived ones = %+v, %v; want both, without their schemas", list, err)
	}
	if _, err := client.Application.Create(ctx, appIn("Shop", "usr_1", nil), nil); err != nil {
		t.Fatal(err)
	}
	ep := newEndpointIn("https://example.com/hook", "ep_1")
	ep.FilterTypes = []string{"order.paid"}
	if _, err := client.Endpoint.Create(ctx, "usr_1", ep, nil); sdkStatus(err) != http.StatusUnprocessableEntity {
		t.Errorf("an endpoint filtering on an archived event type: %v, want 422", err)
	}

	// Creating it again unarchives it with the new description.
	if _, err := client.EventType.Create(ctx, newEventTypeIn("order.paid", "Back"), nil); err != nil {
		t.Fatalf("creating an archived event type: %v", err)
	}
	if got, _ := s.EventType("order.paid"); got.Archived || got.Description != "Back" || got.Schemas != nil || got.Deprecated {
		t.Errorf("after create: %+v; want it unarchived with the body's fields only", got)
	}
	if _, err := client.Endpoint.Create(ctx, "usr_1", ep, nil); err != nil {
		t.Errorf("an endpoint filtering on the unarchived event type: %v", err)
	}

	// expunge=true forgets it.
	expunge := true
	if err := client.EventType.Delete(ctx, "order.refunded", &svix.EventTypeDeleteOptions{Expunge: &expunge}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.EventType("order.refunded"); ok {
		t.Error("an expunged event type is still there")
	}
	if err := client.EventType.Delete(ctx, "order.refunded", nil); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("deleting an expunged event type: %v, want 404", err)
	}
	for op, want := range map[Operation]int{CreateEventType: 3, GetEventType: 2, UpdateEventType: 2, PatchEventType: 2,
		DeleteEventType: 3, ListEventTypes: 2} {
		if n := s.Requests(op); n != want {
			t.Errorf("Requests(%s) = %d, want %d", op, n, want)
		}
	}
}

func TestListEventTypesPages(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()
	for _, name := range []string{"e", "b", "d", "a", "c"} {
		if _, err := client.EventType.Create(ctx, newEventTypeIn(name, name), nil); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	limit := uint64(2)
	opts := &svix.EventTypeListOptions{Limit: &limit}
	var last *svix.ListResponseEventTypeOut
	for page := 0; ; page++ {
		if page == 5 {
			t.Fatal("the listing does not end")
		}
		list, err := client.EventType.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, et := range list.Data {
			names = append(names, et.Name)
		}
		last = list
		if list.Done {
			break
		}
		opts.Iterator = list.Iterator
	}
	if !slices.Equal(names, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("listed %q, want every event type once, by name", names)
	}
	// The last page's prevIterator pages back.
	if last.PrevIterator == nil || *last.PrevIterator != "-e" {
		t.Fatalf("prevIterator %v, want -e", last.PrevIterator)
	}
	back, err := client.EventType.List(ctx, &svix.EventTypeListOptions{Limit: &limit, Iterator: last.PrevIterator})
	if err != nil || len(back.Data) != 2 || back.Data[0].Name != "c" || back.Data[1].Name != "d" || back.Done {
		t.Errorf("the page before e = %+v, %v; want c and d, not done", back, err)
	}
}

func TestEndpointFilterTypesMustExist(t *testing.T) {
	for _, validate := range []bool{true, false} {
		t.Run(fmt.Sprint("validate=", validate), func(t *testing.T) {
			var s *Server
			var url string
			if validate {
				s = New(t)
				url = s.URL()
			} else {
				s, url = newPlainServer(t, Options{})
			}
			client := newSDKClient(t, url, "test-token")
			ctx := context.Background()
			if _, err := client.Application.Create(ctx, appIn("Shop", "usr_1", nil), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := client.EventType.Create(ctx, newEventTypeIn("order.paid", "Paid"), nil); err != nil {
				t.Fatal(err)
			}
			ep := newEndpointIn("https://example.com/hook", "ep_1")
			ep.FilterTypes = []string{"order.paid"}
			if _, err := client.Endpoint.Create(ctx, "usr_1", ep, nil); err != nil {
				t.Fatal(err)
			}
			before, _ := s.Endpoint("usr_1", "ep_1")

			for _, r := range []request{
				{path: "/api/v1/app/usr_1/endpoint", body: `{"url":"https://example.com/two","filterTypes":["x.new","order.paid","y.new"]}`},
				{method: http.MethodPut, path: "/api/v1/app/usr_1/endpoint/ep_1",
					body: `{"url":"https://example.com/new","uid":"ep_1","filterTypes":["x.new","order.paid","y.new"]}`},
				// The unknown event types come before the taken uid.
				{path: "/api/v1/app/usr_1/endpoint", body: `{"url":"https://example.com/two","uid":"ep_1","filterTypes":["x.new","y.new"]}`},
			} {
				r.auth = "Bearer test-token"
				got := do(t, url, r)
				var body httpValidationError
				if err := json.Unmarshal(got.body, &body); got.status != http.StatusUnprocessableEntity || err != nil || len(body.Detail) != 1 {
					t.Fatalf("%s %s: %d %s; want Svix's 422", r.method, r.path, got.status, got.body)
				}
				item := body.Detail[0]
				if !slices.Equal(item.Loc, []string{"body", "filterTypes"}) || item.Msg != "The following event types don't exist: x.new, y.new" ||
					item.Type != "value_error" {
					t.Errorf("detail %+v", item)
				}
			}
			if eps := s.Endpoints("usr_1"); len(eps) != 1 || !eps[0].UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("a refused request changed the endpoints: %+v", eps)
			}
			// A missing application is still a 404.
			r := do(t, url, request{path: "/api/v1/app/usr_9/endpoint", auth: "Bearer test-token",
				body: `{"url":"https://example.com/hook","filterTypes":["x.new"]}`})
			if r.status != http.StatusNotFound {
				t.Errorf("unknown event types in a missing application: %d, want 404", r.status)
			}
		})
	}
}

func TestEventTypeRulesBeyondTheSpec(t *testing.T) {
	_, url := newPlainServer(t, Options{})
	for _, tc := range []struct{ name, method, path, body string }{
		{"no description", http.MethodPost, "/api/v1/event-type", `{"name":"a.b"}`},
		{"no name", http.MethodPost, "/api/v1/event-type", `{"description":"x"}`},
		{"control character", http.MethodPost, "/api/v1/event-type", `{"name":"a.b","description":"x\u0001"}`},
		{"schemas not an object", http.MethodPut, "/api/v1/event-type/a.b", `{"description":"x","schemas":[1]}`},
		{"PUT without a description", http.MethodPut, "/api/v1/event-type/a.b", `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, url, request{method: tc.method, path: tc.path, auth: "Bearer t", body: tc.body})
			if r.status != http.StatusUnprocessableEntity {
				t.Errorf("status %d (%s), want 422", r.status, r.body)
			}
		})
	}
	if r := do(t, url, request{method: http.MethodDelete, path: "/api/v1/event-type/a.b?expunge=maybe", auth: "Bearer t"}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("expunge=maybe: %d, want 422", r.status)
	}
}

func TestEventTypeRoutes(t *testing.T) {
	s, url := newPlainServer(t, Options{Token: "right"})
	routes := []request{
		{method: http.MethodGet, path: "/api/v1/event-type"},
		{path: "/api/v1/event-type", body: `{"name":"a.b","description":"x"}`},
		{method: http.MethodGet, path: "/api/v1/event-type/a.b"},
		{method: http.MethodPut, path: "/api/v1/event-type/a.b", body: `{"description":"x"}`},
		{method: http.MethodPatch, path: "/api/v1/event-type/a.b", body: `{"description":"x"}`},
		{method: http.MethodDelete, path: "/api/v1/event-type/a.b"},
	}
	for _, r := range routes {
		r.auth = "Bearer wrong"
		if got := do(t, url, r); got.status != http.StatusUnauthorized {
			t.Errorf("%s %s with a wrong token: %d, want 401", r.method, r.path, got.status)
		}
	}
	if _, ok := s.EventType("a.b"); ok {
		t.Error("an unauthorized request created an event type")
	}
	for _, r := range []request{
		{method: http.MethodPost, path: "/api/v1/event-type/a.b", body: `{}`},
		{method: http.MethodGet, path: "/api/v1/event-type/a.b/c"},
		{method: http.MethodPost, path: "/api/v1/event-type/import/openapi", body: `{}`},
		{method: http.MethodDelete, path: "/api/v1/event-type"},
	} {
		r.auth = "Bearer right"
		if got := do(t, url, r); got.status != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", r.method, r.path, got.status)
		}
	}

	// Each operation has its own script queue.
	s.ScriptFor(CreateEventType, Response{Status: http.StatusServiceUnavailable})
	create := request{path: "/api/v1/event-type", auth: "Bearer right", body: `{"name":"a.b","description":"x"}`}
	if got := do(t, url, create); got.status != http.StatusServiceUnavailable {
		t.Fatalf("scripted create: %d, want 503", got.status)
	}
	if _, ok := s.EventType("a.b"); ok {
		t.Error("a scripted failure stored the event type")
	}
	if got := do(t, url, create); got.status != http.StatusCreated {
		t.Fatalf("create after the script: %d %s", got.status, got.body)
	}
	s.Reset()
	if _, ok := s.EventType("a.b"); ok {
		t.Error("Reset kept an event type")
	}
	if got := do(t, url, create); got.status != http.StatusCreated || !strings.Contains(string(got.body), `"a.b"`) {
		t.Errorf("create after Reset: %d %s", got.status, got.body)
	}
}
