package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/svixserver"
)

// TestSvixMirror checks what Svix received for each change: the same
// application (uid = id) and endpoint (uid = id, the same secret), and that
// a change Svix refuses is not made in Gwook.
func TestSvixMirror(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{svix: true})
		h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/applications",
			map[string]any{"id": "acme", "name": "Acme", "metadata": map[string]string{"plan": "pro"}})
		app, ok := h.svix.Application("acme")
		if !ok || app.UID != "acme" || app.Name != "Acme" || app.Metadata["plan"] != "pro" {
			t.Fatalf("Svix holds %+v (found %v), want the application with uid acme", app, ok)
		}
		h.must(http.StatusOK, h.admin, http.MethodPatch, "/api/v1/applications/acme", map[string]any{"name": "Acme Inc"})
		if app, _ := h.svix.Application("acme"); app.Name != "Acme Inc" {
			t.Errorf("Svix's application is named %q after the change", app.Name)
		}

		base := "/api/v1/applications/acme/endpoints"
		id := h.createEndpoint("acme", map[string]any{"description": "orders", "event_types": []string{"order.paid"}})["id"].(string)
		secret := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+id+"/secret", nil).json(t)["secret"].(string)
		ep, ok := h.svix.Endpoint("acme", id)
		if !ok || ep.UID != id || ep.URL != publicURL || ep.Description != "orders" || !slices.Equal(ep.FilterTypes, []string{"order.paid"}) ||
			ep.Secret != secret || ep.Disabled {
			t.Fatalf("Svix holds %+v (found %v), want the endpoint %s with its secret", ep, ok, id)
		}
		h.must(http.StatusOK, h.admin, http.MethodPatch, base+"/"+id, `{"event_types": null, "disabled": true}`)
		if ep, _ := h.svix.Endpoint("acme", id); ep.FilterTypes != nil || !ep.Disabled || ep.Secret != secret {
			t.Errorf("after the change Svix holds %+v", ep)
		}
		h.must(http.StatusNoContent, h.admin, http.MethodPost, base+"/"+id+"/secret/rotate", nil)
		rotated := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+id+"/secret", nil).json(t)["secret"].(string)
		if ep, _ := h.svix.Endpoint("acme", id); ep.Secret != rotated || len(ep.PreviousSecrets) != 1 || ep.PreviousSecrets[0].Secret != secret {
			t.Errorf("after the rotation Svix holds secret %q and previous %v; want %q and %q", ep.Secret, ep.PreviousSecrets, rotated, secret)
		}

		// Svix refuses: 502, and nothing changes in Gwook.
		h.svix.ScriptFor(svixserver.CreateEndpoint, svixserver.Response{Status: http.StatusUnprocessableEntity})
		a := h.do(h.admin, http.MethodPost, base, map[string]any{"url": publicURL})
		if a.status != http.StatusBadGateway || !strings.Contains(string(a.body), "urn:gwook:problem:svix") || !strings.Contains(string(a.body), "Svix") {
			t.Errorf("a refused endpoint: %d %s, want a 502 svix problem", a.status, a.body)
		}
		h.svix.ScriptFor(svixserver.UpdateEndpoint, svixserver.Response{Status: 500}, svixserver.Response{Status: 500}, svixserver.Response{Status: 500})
		h.must(http.StatusBadGateway, h.admin, http.MethodPatch, base+"/"+id, map[string]any{"description": "never"})
		if got := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+id, nil).json(t)["description"]; got != "orders" {
			t.Errorf("after Svix failed the change the description is %v, want it unchanged", got)
		}
		list := h.must(http.StatusOK, h.admin, http.MethodGet, base, nil).json(t)["data"].([]any)
		if len(list) != 1 {
			t.Errorf("Gwook holds %d endpoints after Svix refused one, want 1", len(list))
		}
		h.svix.ScriptFor(svixserver.CreateApplication, svixserver.Response{Status: http.StatusBadRequest})
		h.svix.ScriptFor(svixserver.UpdateApplication, svixserver.Response{Status: http.StatusBadRequest})
		h.must(http.StatusBadGateway, h.admin, http.MethodPost, "/api/v1/applications", map[string]any{"id": "refused", "name": "x"})
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/refused", nil)

		h.must(http.StatusNoContent, h.admin, http.MethodDelete, base+"/"+id, nil)
		if _, ok := h.svix.Endpoint("acme", id); ok {
			t.Error("Svix still holds the deleted endpoint")
		}
		h.must(http.StatusNoContent, h.admin, http.MethodDelete, "/api/v1/applications/acme", nil)
		if _, ok := h.svix.Application("acme"); ok {
			t.Error("Svix still holds the deleted application")
		}
	})
}

// TestSvixOutOfReach: a change Svix never heard of is a 502 that does not
// show the client where Svix is, and nothing is stored.
func TestSvixOutOfReach(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{svix: true, svixURL: "http://127.0.0.1:9"})
	a := h.must(http.StatusBadGateway, h.admin, http.MethodPost, "/api/v1/applications", map[string]any{"id": "acme", "name": "Acme"})
	if strings.Contains(string(a.body), "127.0.0.1") || !strings.Contains(string(a.body), "could not be reached") {
		t.Errorf("Svix out of reach: %s; want a 502 that names no address", a.body)
	}
	h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/acme", nil)
}
