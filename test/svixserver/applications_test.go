package svixserver

import (
	"context"
	"net/http"
	"testing"

	svix "github.com/svix/svix-webhooks/go"
)

func appIn(name, uid string, metadata map[string]string) svix.ApplicationIn {
	in := svix.ApplicationIn{Name: name}
	if uid != "" {
		in.Uid = &uid
	}
	if metadata != nil {
		in.Metadata = &metadata
	}
	return in
}

func TestSDKApplicationLifecycle(t *testing.T) {
	fake := &recordingTB{TB: t}
	s := New(fake)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()

	created, err := client.Application.Create(ctx, appIn("Shop", "usr_1", map[string]string{"plan": "pro"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !appIDPattern.MatchString(created.Id) || created.Uid == nil || *created.Uid != "usr_1" || created.Name != "Shop" || created.Metadata["plan"] != "pro" {
		t.Fatalf("created %+v", created)
	}
	if _, err := client.Application.Create(ctx, appIn("Other", "usr_1", nil), nil); sdkStatus(err) != http.StatusConflict {
		t.Errorf("creating a taken uid: %v, want 409", err)
	}
	got, err := client.Application.GetOrCreate(ctx, appIn("Other", "usr_1", nil), nil)
	if err != nil || got.Id != created.Id || got.Name != "Shop" {
		t.Errorf("GetOrCreate of an existing uid = %+v, %v; want the existing application unchanged", got, err)
	}
	for _, key := range []string{"usr_1", created.Id} {
		if got, err := client.Application.Get(ctx, key); err != nil || got.Id != created.Id {
			t.Errorf("Get(%s) = %+v, %v", key, got, err)
		}
	}

	updated, err := client.Application.Update(ctx, "usr_1", appIn("Shop renamed", "usr_1", nil))
	if err != nil || updated.Id != created.Id || updated.Name != "Shop renamed" || len(updated.Metadata) != 0 {
		t.Errorf("Update = %+v, %v; want the same application renamed, its metadata reset", updated, err)
	}
	if app, ok := s.Application("usr_1"); !ok || app.ID != created.Id || app.Name != "Shop renamed" || app.UpdatedAt.Before(app.CreatedAt) {
		t.Errorf("Application(usr_1) = %+v, %v", app, ok)
	}
	upserted, err := client.Application.Update(ctx, "usr_2", appIn("Second", "usr_2", nil))
	if err != nil || upserted.Id == created.Id || upserted.Uid == nil || *upserted.Uid != "usr_2" {
		t.Errorf("Update of a missing application = %+v, %v; want a new one with uid usr_2", upserted, err)
	}
	if n := s.Requests(UpdateApplication); n != 2 {
		t.Errorf("Requests(UpdateApplication) = %d, want 2", n)
	}

	if err := client.Application.Delete(ctx, "usr_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Application.Get(ctx, "usr_1"); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("Get after Delete: %v, want 404", err)
	}
	if err := client.Application.Delete(ctx, "usr_1"); sdkStatus(err) != http.StatusNotFound {
		t.Errorf("second Delete: %v, want 404", err)
	}
	if _, ok := s.Application("usr_1"); ok {
		t.Error("Application(usr_1) still there")
	}
	if errs := fake.Errors(); len(errs) != 0 {
		t.Errorf("violations: %q", errs)
	}
}

func TestPutWithoutUIDLeavesTheApplicationWithoutOne(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()
	created, err := client.Application.Create(ctx, appIn("Shop", "usr_1", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	// As in Svix, PUT replaces every field, the uid included.
	if _, err := client.Application.Update(ctx, "usr_1", appIn("Shop", "", nil)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Application("usr_1"); ok {
		t.Error("the uid survived a PUT without one")
	}
	if app, ok := s.Application(created.Id); !ok || app.UID != "" {
		t.Errorf("Application(%s) = %+v, %v; want it without a uid", created.Id, app, ok)
	}
}

func TestListApplicationsShowsCreatedApplications(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()
	if _, err := client.Application.Create(ctx, appIn("Created", "usr_created", map[string]string{"k": "v"}), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Message.Create(ctx, "usr_messaged", rawMessageIn("user.signup", "evt-1", `{}`), nil); err != nil {
		t.Fatal(err)
	}
	list, err := client.Application.List(ctx, nil)
	if err != nil || len(list.Data) != 2 {
		t.Fatalf("List = %+v, %v; want two applications", list, err)
	}
	byUID := map[string]svix.ApplicationOut{}
	for _, a := range list.Data {
		byUID[*a.Uid] = a
	}
	if a := byUID["usr_created"]; a.Name != "Created" || a.Metadata["k"] != "v" {
		t.Errorf("created application listed as %+v", a)
	}
	if a := byUID["usr_messaged"]; a.Name != "usr_messaged" {
		t.Errorf("application of a message listed as %+v", a)
	}
	// A message to an application created through the API lands in it.
	if _, err := client.Message.Create(ctx, "usr_created", rawMessageIn("user.signup", "evt-2", `{}`), nil); err != nil {
		t.Fatal(err)
	}
	if list, _ := client.Application.List(ctx, nil); len(list.Data) != 2 {
		t.Errorf("List after a message to usr_created: %d applications, want 2", len(list.Data))
	}
}

func TestResetForgetsApplicationsAndEndpoints(t *testing.T) {
	s := New(t)
	client := newSDKClient(t, s.URL(), "test-token")
	ctx := context.Background()
	if _, err := client.Application.Create(ctx, appIn("Shop", "usr_1", nil), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Endpoint.Create(ctx, "usr_1", newEndpointIn("https://example.com/hook", "ep_1"), nil); err != nil {
		t.Fatal(err)
	}
	s.ScriptFor(CreateApplication, Response{Status: http.StatusServiceUnavailable})
	s.Reset()
	if _, ok := s.Application("usr_1"); ok {
		t.Error("the application survived Reset")
	}
	if _, ok := s.Endpoint("usr_1", "ep_1"); ok {
		t.Error("the endpoint survived Reset")
	}
	if n := s.Requests(CreateApplication); n != 0 {
		t.Errorf("Requests(CreateApplication) = %d after Reset", n)
	}
	if _, err := client.Application.Create(ctx, appIn("Shop", "usr_1", nil), nil); err != nil {
		t.Errorf("Create after Reset: %v; want neither a conflict nor the scripted 503", err)
	}
}
