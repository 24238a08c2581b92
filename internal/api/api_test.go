package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
)

func TestOpenAPIDocumentNeedsNoToken(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{})
	doc := h.must(http.StatusOK, "", http.MethodGet, "/openapi.json", nil).json(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	paths, _ := doc["paths"].(map[string]any)
	for _, p := range []string{"/api/v1/tokens", "/api/v1/tokens/{token_id}", "/api/v1/applications", "/api/v1/applications/{app_id}",
		"/api/v1/applications/{app_id}/endpoints", "/api/v1/applications/{app_id}/endpoints/{endpoint_id}",
		"/api/v1/applications/{app_id}/endpoints/{endpoint_id}/secret", "/api/v1/applications/{app_id}/endpoints/{endpoint_id}/secret/rotate"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("the document lacks %s", p)
		}
	}
	if a := h.do("", http.MethodGet, "/docs", nil); a.status != http.StatusOK || !strings.Contains(string(a.body), "openapi") {
		t.Errorf("GET /docs: %d %.200s", a.status, a.body)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{})
	for name, token := range map[string]string{
		"none":    "",
		"unknown": store.NewTokenValue(),
		"garbage": "not-a-token",
	} {
		a := h.do(token, http.MethodGet, "/api/v1/applications", nil)
		if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: status %d, WWW-Authenticate %q; want 401 and Bearer", name, a.status, a.header.Get("WWW-Authenticate"))
		}
		if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q, want application/problem+json", name, ct)
		}
	}
	past := time.Now().Add(-time.Minute)
	expired := h.token(store.NewToken{Name: "old", Scopes: []string{"admin"}, ExpiresAt: &past})
	h.must(http.StatusUnauthorized, expired, http.MethodGet, "/api/v1/applications", nil)
}

var tokenValue = regexp.MustCompile(`^gwk_[A-Za-z0-9]{40,}$`)

func TestTokens(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		a := h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/tokens", map[string]any{"name": "ci", "scopes": []string{"read"}})
		created := a.json(t)
		value, _ := created["token"].(string)
		id, _ := created["id"].(string)
		if !tokenValue.MatchString(value) || !strings.HasPrefix(id, "tok_") {
			t.Fatalf("created %v: want a gwk_ value and a tok_ id", created)
		}
		if loc := a.header.Get("Location"); loc != "/api/v1/tokens/"+id {
			t.Errorf("Location %q", loc)
		}
		// Usable at once on this replica, and never shown again.
		h.must(http.StatusOK, value, http.MethodGet, "/api/v1/applications", nil)
		listed := h.must(http.StatusOK, h.admin, http.MethodGet, "/api/v1/tokens", nil)
		if strings.Contains(string(listed.body), value) || strings.Contains(string(listed.body), `"token"`) {
			t.Errorf("the list shows a token's value: %s", listed.body)
		}
		if n := len(listed.json(t)["data"].([]any)); n != 2 {
			t.Errorf("listed %d tokens, want 2", n)
		}
		h.must(http.StatusNoContent, h.admin, http.MethodDelete, "/api/v1/tokens/"+id, nil)
		h.must(http.StatusUnauthorized, value, http.MethodGet, "/api/v1/applications", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodDelete, "/api/v1/tokens/"+id, nil)
	})
}

func TestTokenRules(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{})
	h.createApp("acme")
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name string
		body any
		want string
	}{
		{"no name", map[string]any{"scopes": []string{"read"}}, "name:required"},
		{"long name", map[string]any{"name": strings.Repeat("n", 129), "scopes": []string{"read"}}, "name:max_length"},
		{"no scopes", map[string]any{"name": "x", "scopes": []string{}}, "scopes:min_items"},
		{"unknown scope", map[string]any{"name": "x", "scopes": []string{"root"}}, "scopes[0]:enum"},
		{"admin restricted", map[string]any{"name": "x", "scopes": []string{"admin"}, "application_id": "acme"}, "application_id:admin_unrestricted"},
		{"manage unrestricted", map[string]any{"name": "x", "scopes": []string{"manage"}}, "application_id:required"},
		{"missing application", map[string]any{"name": "x", "scopes": []string{"manage"}, "application_id": "nobody"}, "application_id:exists"},
		{"expired", map[string]any{"name": "x", "scopes": []string{"read"}, "expires_at": past}, "expires_at:future"},
		{"unknown field", map[string]any{"name": "x", "scopes": []string{"read"}, "owner": "me"}, "owner:unknown_field"},
		{"not JSON", `{"name":`, ""},
	} {
		a := h.do(h.admin, http.MethodPost, "/api/v1/tokens", c.body)
		if a.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", c.name, a.status, a.body)
			continue
		}
		if got := a.problemErrors(t); c.want != "" && !slices.Contains(got, c.want) {
			t.Errorf("%s: errors %v, want %s among them", c.name, got, c.want)
		}
	}
}

func TestScopes(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		h.createApp("acme")
		h.createApp("globex")
		ep := h.createEndpoint("acme", nil)["id"].(string)
		other := h.createEndpoint("globex", nil)["id"].(string)
		read := h.token(store.NewToken{Name: "r", Scopes: []string{"read"}})
		ingest := h.token(store.NewToken{Name: "i", Scopes: []string{"ingest"}})
		manage := h.token(store.NewToken{Name: "m", Scopes: []string{"manage"}, ApplicationID: "acme"})

		acme := "/api/v1/applications/acme"
		globex := "/api/v1/applications/globex"
		for _, c := range []struct {
			token, method, path string
			body                any
			want                int
		}{
			{read, http.MethodGet, "/api/v1/applications", nil, 200},
			{read, http.MethodGet, acme + "/endpoints/" + ep, nil, 200},
			{read, http.MethodGet, acme + "/endpoints/" + ep + "/secret", nil, 403},
			{read, http.MethodGet, "/api/v1/tokens", nil, 403},
			{read, http.MethodPost, "/api/v1/applications", map[string]any{"id": "x", "name": "x"}, 403},
			{read, http.MethodPost, acme + "/endpoints", map[string]any{"url": publicURL}, 403},
			{ingest, http.MethodGet, "/api/v1/applications", nil, 403},
			{ingest, http.MethodGet, acme, nil, 403},
			{manage, http.MethodGet, acme, nil, 200},
			{manage, http.MethodGet, acme + "/endpoints", nil, 200},
			{manage, http.MethodGet, acme + "/endpoints/" + ep + "/secret", nil, 200},
			{manage, http.MethodPatch, acme + "/endpoints/" + ep, map[string]any{"description": "mine"}, 200},
			{manage, http.MethodPost, acme + "/endpoints", map[string]any{"url": publicURL}, 201},
			{manage, http.MethodPatch, acme, map[string]any{"name": "renamed"}, 403},
			{manage, http.MethodDelete, acme, nil, 403},
			{manage, http.MethodGet, "/api/v1/tokens", nil, 403},
			// Another application's resources do not exist for it.
			{manage, http.MethodGet, globex, nil, 404},
			{manage, http.MethodGet, globex + "/endpoints", nil, 404},
			{manage, http.MethodGet, globex + "/endpoints/" + other, nil, 404},
			{manage, http.MethodDelete, globex + "/endpoints/" + other, nil, 404},
			{manage, http.MethodGet, acme + "/endpoints/" + other, nil, 404},
		} {
			if a := h.do(c.token, c.method, c.path, c.body); a.status != c.want {
				t.Errorf("%s %s with %s: status %d, want %d: %s", c.method, c.path, scopeOf(c.token, read, ingest, manage), a.status, c.want, a.body)
			}
		}
		// Listing applications with a restricted token shows its own.
		list := h.must(http.StatusOK, manage, http.MethodGet, "/api/v1/applications", nil).json(t)
		if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != "acme" {
			t.Errorf("a manage token lists %v, want acme only", data)
		}
	})
}

func scopeOf(token, read, ingest, manage string) string {
	switch token {
	case read:
		return "read"
	case ingest:
		return "ingest"
	case manage:
		return "manage"
	}
	return "admin"
}

func TestApplications(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		a := h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/applications",
			map[string]any{"id": "user-42", "name": "Acme", "metadata": map[string]string{"plan": "pro"}})
		if loc := a.header.Get("Location"); loc != "/api/v1/applications/user-42" {
			t.Errorf("Location %q", loc)
		}
		app := a.json(t)
		if app["name"] != "Acme" || app["metadata"].(map[string]any)["plan"] != "pro" || !strings.HasSuffix(app["created_at"].(string), "Z") {
			t.Errorf("created %v", app)
		}
		h.must(http.StatusConflict, h.admin, http.MethodPost, "/api/v1/applications", map[string]any{"id": "user-42", "name": "again"})
		patched := h.must(http.StatusOK, h.admin, http.MethodPatch, "/api/v1/applications/user-42", map[string]any{"name": "Acme Inc"}).json(t)
		if patched["name"] != "Acme Inc" || patched["metadata"].(map[string]any)["plan"] != "pro" {
			t.Errorf("patched %v: want the new name and the old metadata", patched)
		}
		if !h.catalog.HasApplication("user-42") {
			t.Error("the catalog does not know the application right after its creation")
		}
		h.createEndpoint("user-42", nil)
		h.must(http.StatusNoContent, h.admin, http.MethodDelete, "/api/v1/applications/user-42", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/user-42", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, "/api/v1/applications/user-42/endpoints", nil)
		h.must(http.StatusNotFound, h.admin, http.MethodDelete, "/api/v1/applications/user-42", nil)
		if h.catalog.HasApplication("user-42") {
			t.Error("the catalog still knows the application after its deletion")
		}
	})
}

func TestApplicationRules(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{})
	for _, c := range []struct {
		name string
		body any
		want string
	}{
		{"bad id", map[string]any{"id": "a/b", "name": "x"}, "id:pattern"},
		{"space in id", map[string]any{"id": "a b", "name": "x"}, "id:pattern"},
		{"long id", map[string]any{"id": strings.Repeat("a", 257), "name": "x"}, "id:max_length"},
		{"no name", map[string]any{"id": "a"}, "name:required"},
		{"empty name", map[string]any{"id": "a", "name": ""}, "name:min_length"},
		{"metadata not strings", map[string]any{"id": "a", "name": "x", "metadata": map[string]any{"n": 1}}, "metadata.n:type"},
		{"unknown field", map[string]any{"id": "a", "name": "x", "uid": "a"}, "uid:unknown_field"},
	} {
		a := h.do(h.admin, http.MethodPost, "/api/v1/applications", c.body)
		if a.status != http.StatusBadRequest || !slices.Contains(a.problemErrors(t), c.want) {
			t.Errorf("%s: status %d errors %v; want 400 with %s: %s", c.name, a.status, a.problemErrors(t), c.want, a.body)
		}
	}
	h.must(http.StatusBadRequest, h.admin, http.MethodGet, "/api/v1/applications/a%20b", nil)
	h.must(http.StatusNotFound, h.admin, http.MethodPatch, "/api/v1/applications/nobody", map[string]any{"name": "x"})
	big := map[string]any{"id": "big", "name": "x", "metadata": map[string]string{"k": strings.Repeat("v", 70<<10)}}
	h.must(http.StatusRequestEntityTooLarge, h.admin, http.MethodPost, "/api/v1/applications", big)
}

func TestEndpoints(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		h.createApp("acme")
		base := "/api/v1/applications/acme/endpoints"
		ep := h.createEndpoint("acme", map[string]any{"description": "orders", "event_types": []string{"order.paid"}})
		id := ep["id"].(string)
		if !strings.HasPrefix(id, "ep_") || ep["url"] != publicURL || ep["description"] != "orders" || ep["disabled"] != false {
			t.Errorf("created %v", ep)
		}
		if _, ok := ep["secret"]; ok {
			t.Errorf("the answer shows the secret: %v", ep)
		}
		secret := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+id+"/secret", nil).json(t)["secret"].(string)
		if !strings.HasPrefix(secret, "whsec_") {
			t.Errorf("secret %q", secret)
		}

		// PATCH: an absent field stays, null means every event type.
		got := h.must(http.StatusOK, h.admin, http.MethodPatch, base+"/"+id, map[string]any{"disabled": true}).json(t)
		if got["disabled"] != true || fmt.Sprint(got["event_types"]) != "[order.paid]" {
			t.Errorf("after disabling: %v", got)
		}
		got = h.must(http.StatusOK, h.admin, http.MethodPatch, base+"/"+id, `{"event_types": null}`).json(t)
		if got["event_types"] != nil || got["description"] != "orders" {
			t.Errorf("after event_types null: %v", got)
		}

		// Rotation: a new secret, the one given.
		given := "whsec_" + strings.Repeat("QUJD", 8)
		h.must(http.StatusNoContent, h.admin, http.MethodPost, base+"/"+id+"/secret/rotate", map[string]any{"secret": given})
		if s := h.must(http.StatusOK, h.admin, http.MethodGet, base+"/"+id+"/secret", nil).json(t)["secret"]; s != given {
			t.Errorf("secret after rotation %v, want %s", s, given)
		}
		h.must(http.StatusNoContent, h.admin, http.MethodPost, base+"/"+id+"/secret/rotate", nil)
		stored, err := st.GetEndpoint(t.Context(), "acme", id)
		if err != nil || stored.Secret == given || stored.PreviousSecret != given {
			t.Errorf("after a second rotation: secret %q previous %q, err %v; want a new secret and %q previous", stored.Secret, stored.PreviousSecret, err, given)
		}

		h.must(http.StatusNoContent, h.admin, http.MethodDelete, base+"/"+id, nil)
		h.must(http.StatusNotFound, h.admin, http.MethodGet, base+"/"+id, nil)
		h.must(http.StatusNotFound, h.admin, http.MethodPost, "/api/v1/applications/nobody/endpoints", map[string]any{"url": publicURL})
	})
}

func TestEndpointPages(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, harnessOptions{})
		h.createApp("acme")
		var want []string
		for range 5 {
			want = append(want, h.createEndpoint("acme", nil)["id"].(string))
		}
		var got []string
		path := "/api/v1/applications/acme/endpoints?limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("the pages do not end")
			}
			page := h.must(http.StatusOK, h.admin, http.MethodGet, path, nil)
			var body struct {
				Data       []struct{ ID string }
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.Unmarshal(page.body, &body); err != nil {
				t.Fatal(err)
			}
			for _, e := range body.Data {
				got = append(got, e.ID)
			}
			if body.NextCursor == nil {
				if !strings.Contains(string(page.body), `"next_cursor":null`) {
					t.Errorf("the last page's next_cursor is not null: %s", page.body)
				}
				break
			}
			path = "/api/v1/applications/acme/endpoints?limit=2&cursor=" + *body.NextCursor
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages hold %v, want %v (oldest first)", got, want)
		}
		for _, q := range []string{"limit=0", "limit=251", "limit=x", "cursor=garbage"} {
			h.must(http.StatusBadRequest, h.admin, http.MethodGet, "/api/v1/applications/acme/endpoints?"+q, nil)
		}
	})
}

func TestEndpointRules(t *testing.T) {
	h := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{})
	h.createApp("acme")
	base := "/api/v1/applications/acme/endpoints"
	for _, c := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"no url", map[string]any{}, "url:required"},
		{"plain http", map[string]any{"url": "http://93.184.216.34/"}, "url:url"},
		{"ftp", map[string]any{"url": "ftp://93.184.216.34/"}, "url:url"},
		{"relative", map[string]any{"url": "/hooks"}, "url:url"},
		{"loopback", map[string]any{"url": "https://127.0.0.1/"}, "url:public_address"},
		{"private", map[string]any{"url": "https://10.1.2.3/"}, "url:public_address"},
		{"metadata", map[string]any{"url": "https://169.254.169.254/latest"}, "url:public_address"},
		{"mapped", map[string]any{"url": "https://[::ffff:192.168.1.1]/"}, "url:public_address"},
		{"unique local", map[string]any{"url": "https://[fd00::1]/"}, "url:public_address"},
		{"localhost", map[string]any{"url": "https://localhost/"}, "url:public_address"},
		{"too long", map[string]any{"url": publicURL + "/" + strings.Repeat("a", 2048)}, "url:max_length"},
		{"bad event type", map[string]any{"url": publicURL, "event_types": []string{"a b"}}, "event_types[0]:pattern"},
		{"bad secret prefix", map[string]any{"url": publicURL, "secret": "sk_abc"}, "secret:format"},
		{"short secret", map[string]any{"url": publicURL, "secret": "whsec_QUJD"}, "secret:format"},
		{"unknown field", map[string]any{"url": publicURL, "filterTypes": []string{"a"}}, "filterTypes:unknown_field"},
	} {
		a := h.do(h.admin, http.MethodPost, base, c.body)
		if a.status != http.StatusBadRequest || !slices.Contains(a.problemErrors(t), c.want) {
			t.Errorf("%s: status %d errors %v; want 400 with %s: %s", c.name, a.status, a.problemErrors(t), c.want, a.body)
		}
	}
	id := h.createEndpoint("acme", nil)["id"].(string)
	h.must(http.StatusBadRequest, h.admin, http.MethodPatch, base+"/"+id, map[string]any{"url": "https://192.168.0.1/"})
	h.must(http.StatusBadRequest, h.admin, http.MethodPost, base+"/"+id+"/secret/rotate", map[string]any{"secret": "whsec_!!"})

	// Private networks allowed, for development.
	dev := newHarness(t, openStore(t, "", t.TempDir()), harnessOptions{allowPrivate: true})
	dev.createApp("acme")
	dev.createEndpoint("acme", map[string]any{"url": "http://127.0.0.1:8080/hooks"})
}
