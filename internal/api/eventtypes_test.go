package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/svixserver"
)

const amountSchema = `{"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer", "minimum": 0}}}`

func TestEventTypes(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		body := fmt.Sprintf(`{"name": "invoice.paid", "description": "An invoice was paid", "schema": %s}`, amountSchema)
		a := h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/event-types", body)
		if loc := a.header.Get("Location"); loc != "/api/v1/event-types/invoice.paid" {
			t.Errorf("Location %q", loc)
		}
		created := a.json(t)
		if created["name"] != "invoice.paid" || created["description"] != "An invoice was paid" || created["archived"] != false ||
			created["schema"].(map[string]any)["required"] == nil || !strings.HasSuffix(created["created_at"].(string), "Z") {
			t.Errorf("created %v", created)
		}
		if et := h.catalog.EventType("invoice.paid"); et == nil || et.Schema == nil {
			t.Error("the catalog does not hold the type's schema right after its creation")
		}
		h.must(http.StatusConflict, h.admin, http.MethodPost, "/api/v1/event-types", `{"name": "invoice.paid"}`)

		// A type without a schema: schema null.
		open := h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/event-types", `{"name": "user.created", "schema": null}`).json(t)
		if v, ok := open["schema"]; !ok || v != nil || open["description"] != "" {
			t.Errorf("created without a schema: %v", open)
		}

		// PATCH changes what it names: archived, then the schema removed.
		patched := h.must(http.StatusOK, h.admin, http.MethodPatch, "/api/v1/event-types/invoice.paid", `{"archived": true}`).json(t)
		if patched["archived"] != true || patched["schema"] == nil || patched["description"] != "An invoice was paid" {
			t.Errorf("patched archived: %v", patched)
		}
		if et := h.catalog.EventType("invoice.paid"); et == nil || !et.Archived {
			t.Error("the catalog does not hold the archived flag right after the change")
		}
		patched = h.must(http.StatusOK, h.admin, http.MethodPatch, "/api/v1/event-types/invoice.paid", `{"schema": null, "description": "x"}`).json(t)
		if patched["schema"] != nil || patched["description"] != "x" || patched["archived"] != true {
			t.Errorf("patched schema null: %v", patched)
		}
		h.must(http.StatusNotFound, h.admin, http.MethodPatch, "/api/v1/event-types/nothing", `{"archived": true}`)

		got := h.must(http.StatusOK, h.admin, http.MethodGet, "/api/v1/event-types/invoice.paid", nil).json(t)
		if got["description"] != "x" {
			t.Errorf("GET %v", got)
		}
		var list struct {
			Data []struct {
				Name string `json:"name"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(h.must(http.StatusOK, h.admin, http.MethodGet, "/api/v1/event-types?limit=1", nil).body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Data) != 1 || list.Data[0].Name != "invoice.paid" || list.NextCursor == nil {
			t.Fatalf("first page %+v", list)
		}
		if err := json.Unmarshal(h.must(http.StatusOK, h.admin, http.MethodGet, "/api/v1/event-types?limit=1&cursor="+*list.NextCursor, nil).body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Data) != 1 || list.Data[0].Name != "user.created" || list.NextCursor != nil {
			t.Fatalf("second page %+v", list)
		}

		// Scopes: read may read, only admin may change.
		read := h.token(store.NewToken{Name: "read", Scopes: []string{"read"}})
		h.must(http.StatusOK, read, http.MethodGet, "/api/v1/event-types", nil)
		h.must(http.StatusOK, read, http.MethodGet, "/api/v1/event-types/invoice.paid", nil)
		h.must(http.StatusForbidden, read, http.MethodPost, "/api/v1/event-types", `{"name": "a.b"}`)
		h.must(http.StatusForbidden, read, http.MethodPatch, "/api/v1/event-types/invoice.paid", `{"archived": false}`)
		h.must(http.StatusForbidden, read, http.MethodDelete, "/api/v1/event-types/invoice.paid", nil)
		h.createApp("app_1")
		manage := h.token(store.NewToken{Name: "manage", Scopes: []string{"manage"}, ApplicationID: "app_1"})
		h.must(http.StatusForbidden, manage, http.MethodGet, "/api/v1/event-types", nil)
		h.must(http.StatusUnauthorized, "", http.MethodGet, "/api/v1/event-types", nil)

		h.must(http.StatusNoContent, h.admin, http.MethodDelete, "/api/v1/event-types/invoice.paid", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/event-types/invoice.paid", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodDelete, "/api/v1/event-types/invoice.paid", nil)
		if h.catalog.EventType("invoice.paid") != nil {
			t.Error("the catalog still holds the type after its deletion")
		}
	})
}

func TestEventTypeRules(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{})
	for _, c := range []struct {
		name string
		body string
		want string
	}{
		{"bad name", `{"name": "a/b"}`, "name:pattern"},
		{"long name", `{"name": "` + strings.Repeat("a", 257) + `"}`, "name:max_length"},
		{"no name", `{}`, "name:required"},
		{"unknown field", `{"name": "a", "version": 2}`, "version:unknown_field"},
		{"schema not a schema", `{"name": "a", "schema": {"type": "objekt"}}`, "schema/type:"},
		{"schema with a bad minimum", `{"name": "a", "schema": {"properties": {"n": {"minimum": "zero"}}}}`, "schema/properties/n/minimum:"},
		{"schema of another draft", `{"name": "a", "schema": {"$schema": "http://json-schema.org/draft-07/schema#"}}`, "schema/$schema:draft"},
		{"schema not an object", `{"name": "a", "schema": [1]}`, "schema:type"},
		{"schema with a remote ref", `{"name": "a", "schema": {"$ref": "https://example.com/s.json"}}`, "schema:valid"},
	} {
		a := h.do(h.admin, http.MethodPost, "/api/v1/event-types", c.body)
		errs := a.problemErrors(t)
		if a.status != http.StatusBadRequest || !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, c.want) }) {
			t.Errorf("%s: status %d errors %v; want 400 with %s: %s", c.name, a.status, errs, c.want, a.body)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", c.name, ct)
		}
	}
	h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/event-types/a", nil)
	h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/event-types", `{"name": "a"}`)
	a := h.do(h.admin, http.MethodPatch, "/api/v1/event-types/a", `{"schema": {"type": 5}}`)
	if a.status != http.StatusBadRequest || !slices.ContainsFunc(a.problemErrors(t), func(e string) bool { return strings.HasPrefix(e, "schema/type:") }) {
		t.Errorf("PATCH with a bad schema: %d %s", a.status, a.body)
	}
	h.must(http.StatusBadRequest, h.admin, http.MethodGet, "/api/v1/event-types/a%20b", nil)
}

// With the Svix backend each event type is mirrored to Svix's event types
// (name, description, schema as version 1, archived) before Gwook stores
// it; Svix refusing is a 502 that changes nothing.
func TestEventTypesMirroredToSvix(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{svix: true})
	h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/event-types",
		fmt.Sprintf(`{"name": "invoice.paid", "description": "paid", "schema": %s}`, amountSchema))
	et, ok := h.svix.EventType("invoice.paid")
	var schemas map[string]map[string]any
	if ok {
		if err := json.Unmarshal(et.Schemas, &schemas); err != nil {
			t.Fatalf("Svix's schemas %s: %v", et.Schemas, err)
		}
	}
	if !ok || et.Description != "paid" || et.Archived || schemas["1"]["required"] == nil {
		t.Fatalf("Svix holds %+v (found %v), want the type with its schema as version 1", et, ok)
	}
	h.must(http.StatusOK, h.admin, http.MethodPatch, "/api/v1/event-types/invoice.paid", `{"archived": true, "schema": null}`)
	if et, _ := h.svix.EventType("invoice.paid"); !et.Archived || et.Schemas != nil || et.Description != "paid" {
		t.Errorf("after the change Svix holds %+v", et)
	}

	h.svix.ScriptFor(svixserver.UpdateEventType, svixserver.Response{Status: http.StatusBadRequest})
	h.must(http.StatusBadGateway, h.admin, http.MethodPatch, "/api/v1/event-types/invoice.paid", `{"description": "never"}`)
	if got := h.must(http.StatusOK, h.admin, http.MethodGet, "/api/v1/event-types/invoice.paid", nil).json(t)["description"]; got != "paid" {
		t.Errorf("after Svix refused the change the description is %v", got)
	}
	h.svix.ScriptFor(svixserver.UpdateEventType, svixserver.Response{Status: http.StatusBadRequest})
	h.must(http.StatusBadGateway, h.admin, http.MethodPost, "/api/v1/event-types", `{"name": "refused"}`)
	h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/event-types/refused", nil)

	h.must(http.StatusNoContent, h.admin, http.MethodDelete, "/api/v1/event-types/invoice.paid", nil)
	if et, ok := h.svix.EventType("invoice.paid"); ok && !et.Archived {
		t.Errorf("Svix holds %+v after the deletion, want it archived", et)
	}
}
