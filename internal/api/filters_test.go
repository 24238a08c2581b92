package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/store"
)

func TestFilters(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		h.createApp("app_1")
		h.createApp("app_2")
		path := "/api/v1/applications/app_1/filter"

		if a := h.must(http.StatusNotFound, h.admin, http.MethodGet, path, nil); !strings.Contains(string(a.body), "has no filter") {
			t.Errorf("no filter yet: %s", a.body)
		}
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/app_9/filter", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodPut, "/api/v1/applications/app_9/filter", map[string]any{})

		body := map[string]any{"include_types": []string{"invoice.*"}, "exclude_types": []string{"invoice.draft"},
			"expression": `event.data.amount > 100`}
		h.must(http.StatusOK, h.admin, http.MethodPut, path, body)
		got := h.must(http.StatusOK, h.admin, http.MethodGet, path, nil).json(t)
		if got["application_id"] != "app_1" || got["expression"] != `event.data.amount > 100` ||
			toJSON(t, got["include_types"]) != `["invoice.*"]` || toJSON(t, got["exclude_types"]) != `["invoice.draft"]` {
			t.Errorf("GET after PUT: %v", got)
		}

		// A PUT replaces the whole filter: what it leaves out is null.
		replaced := h.must(http.StatusOK, h.admin, http.MethodPut, path, map[string]any{"include_types": []string{}}).json(t)
		if toJSON(t, replaced["include_types"]) != "[]" || replaced["exclude_types"] != nil || replaced["expression"] != nil {
			t.Errorf("after a PUT of only include_types []: %v", replaced)
		}
		if replaced["created_at"] != got["created_at"] {
			t.Errorf("created_at changed on replace: %v then %v", got["created_at"], replaced["created_at"])
		}

		// Scopes: read may read, manage of the application may change, a
		// token of another application learns nothing.
		read := h.token(store.NewToken{Name: "read", Scopes: []string{"read"}})
		h.must(http.StatusOK, read, http.MethodGet, path, nil)
		h.must(http.StatusForbidden, read, http.MethodPut, path, map[string]any{})
		manage := h.token(store.NewToken{Name: "manage", Scopes: []string{"manage"}, ApplicationID: "app_1"})
		h.must(http.StatusOK, manage, http.MethodPut, path, map[string]any{"expression": "true"})
		other := h.token(store.NewToken{Name: "other", Scopes: []string{"manage"}, ApplicationID: "app_2"})
		h.must(http.StatusNotFound, other, http.MethodGet, path, nil)
		h.must(http.StatusNotFound, other, http.MethodDelete, path, nil)

		h.must(http.StatusNoContent, h.admin, http.MethodDelete, path, nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, path, nil)
		h.must(http.StatusNotFound, h.admin, http.MethodDelete, path, nil)
	})
}

func TestFilterRules(t *testing.T) {
	st := openStore(t, "", t.TempDir())
	h := newHarness(t, st, harnessOptions{})
	h.createApp("app_1")
	path := "/api/v1/applications/app_1/filter"
	for _, tc := range []struct {
		name   string
		body   any
		want   string // field:rule of the first error
		detail string // part of its detail
	}{
		{"syntax error", map[string]any{"expression": "event.type =="}, "expression:syntax", "1:"},
		{"not boolean", map[string]any{"expression": "event.type"}, "expression:type", "bool"},
		{"unknown event field", map[string]any{"expression": `event.tpye == "x"`}, "expression:", "tpye"},
		{"bad pattern", map[string]any{"include_types": []string{"in valid"}}, "include_types[0]:pattern", ""},
		{"pattern star inside", map[string]any{"exclude_types": []string{"a.*.b"}}, "exclude_types[0]:pattern", ""},
		{"too long", map[string]any{"expression": strings.Repeat("a", 4097)}, "expression:max_length", ""},
		{"unknown field", map[string]any{"expr": "true"}, "expr:unknown_field", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := h.must(http.StatusBadRequest, h.admin, http.MethodPut, path, tc.body)
			errs := a.problemErrors(t)
			if len(errs) == 0 || !strings.HasPrefix(errs[0], tc.want) {
				t.Fatalf("errors %v, want the first to start with %q: %s", errs, tc.want, a.body)
			}
			if !strings.Contains(string(a.body), tc.detail) {
				t.Errorf("the problem does not mention %q: %s", tc.detail, a.body)
			}
		})
	}
	h.must(http.StatusNotFound, h.admin, http.MethodGet, path, nil) // nothing was stored
}

func TestFilterTest(t *testing.T) {
	st := openStore(t, "", t.TempDir())
	h := newHarness(t, st, harnessOptions{globalTypes: filter.GlobalTypes(nil, []string{"internal.*"})})
	h.createApp("app_1")
	base := "/api/v1/applications/app_1/filter"
	h.must(http.StatusOK, h.admin, http.MethodPut, base, map[string]any{
		"include_types": []string{"invoice.*"}, "exclude_types": []string{"invoice.draft"},
		"expression": `event.data.amount > 100`,
	})
	ev := func(typ, data string) map[string]any {
		return map[string]any{"event": rawJSON(`{"id":"evt_1","type":"` + typ + `","source":"billing","project":"p",` +
			`"user_id":"someone_else","time":"2026-12-01T10:00:00Z","data":` + data + `}`)}
	}
	for _, tc := range []struct {
		name    string
		body    map[string]any
		allowed bool
		rule    any
		reason  string
	}{
		{"passes every rule", ev("invoice.paid", `{"amount":150.5}`), true, nil, ""},
		{"global type filter", ev("internal.audit", `{"amount":150}`), false, "global_types", "FILTER_"},
		{"not included", ev("user.created", `{"amount":150}`), false, "include_types", "user.created"},
		{"excluded", ev("invoice.draft", `{"amount":150}`), false, "exclude_types", "invoice.draft"},
		{"expression false", ev("invoice.paid", `{"amount":50}`), false, "expression", "false"},
		{"expression error", ev("invoice.paid", `{"total":50}`), false, "expression_error", "amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.must(http.StatusOK, h.admin, http.MethodPost, base+"/test", tc.body).json(t)
			if got["allowed"] != tc.allowed || got["rule"] != tc.rule || !strings.Contains(got["reason"].(string), tc.reason) {
				t.Errorf("got %v, want allowed %v, rule %v, a reason with %q", got, tc.allowed, tc.rule, tc.reason)
			}
		})
	}

	// A filter tried before it is stored, in place of the stored one.
	try := ev("user.created", `{}`)
	try["filter"] = map[string]any{"expression": `event.type.startsWith("user.")`}
	if got := h.must(http.StatusOK, h.admin, http.MethodPost, base+"/test", try).json(t); got["allowed"] != true {
		t.Errorf("trying a filter that allows user.*: %v", got)
	}
	try["filter"] = map[string]any{"expression": `event.type ==`}
	if errs := h.must(http.StatusBadRequest, h.admin, http.MethodPost, base+"/test", try).problemErrors(t); len(errs) == 0 || errs[0] != "filter.expression:syntax" {
		t.Errorf("a tried filter that does not compile: %v", errs)
	}

	// The event is checked as /notifications checks it.
	bad := map[string]any{"event": rawJSON(`{"id":"evt_1","type":"invoice.paid"}`)}
	errs := h.must(http.StatusBadRequest, h.admin, http.MethodPost, base+"/test", bad).problemErrors(t)
	if !slices.Contains(errs, "event.source:required") {
		t.Errorf("an event without source: %v", errs)
	}

	// Without a filter of its own, an application gets every event the
	// global filter lets through.
	h.createApp("app_2")
	if got := h.must(http.StatusOK, h.admin, http.MethodPost, "/api/v1/applications/app_2/filter/test", ev("user.created", `{}`)).json(t); got["allowed"] != true {
		t.Errorf("an application without a filter: %v", got)
	}
	h.must(http.StatusNotFound, h.admin, http.MethodPost, "/api/v1/applications/app_9/filter/test", ev("user.created", `{}`))
}

// rawJSON is JSON text that json.Marshal sends as it is.
type rawJSON = json.RawMessage

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
