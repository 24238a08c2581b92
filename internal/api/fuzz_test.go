package api_test

import (
	"net/http"
	"testing"
)

// FuzzRequestBodies sends arbitrary bodies to every operation that takes
// one: whatever arrives, the answer is a 2xx or a 4xx, never a 5xx.
func FuzzRequestBodies(f *testing.F) {
	h := newHarness(f, openStore(f, "", f.TempDir()), harnessOptions{allowPrivate: true})
	h.createApp("acme")
	ep := h.createEndpoint("acme", nil)["id"].(string)
	targets := []struct{ method, path string }{
		{http.MethodPost, "/api/v1/tokens"},
		{http.MethodPost, "/api/v1/applications"},
		{http.MethodPatch, "/api/v1/applications/acme"},
		{http.MethodPost, "/api/v1/applications/acme/endpoints"},
		{http.MethodPatch, "/api/v1/applications/acme/endpoints/" + ep},
		{http.MethodPost, "/api/v1/applications/acme/endpoints/" + ep + "/secret/rotate"},
	}
	for i, seed := range []string{
		`{"name":"ci","scopes":["read"]}`,
		`{"id":"x","name":"x","metadata":{"a":"b"}}`,
		`{"name":"renamed","metadata":null}`,
		`{"url":"https://93.184.216.34/","event_types":["a.b"],"secret":"whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"}`,
		`{"event_types":null,"disabled":true,"url":"http://[::1]:80/"}`,
		`{"secret":"whsec_"}`,
		`{"url":"https://2130706433/"}`, `[]`, `null`, `{"name":"\u0000"}`, `{"scopes":[1,2]}`,
	} {
		f.Add(uint8(i), seed)
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		target := targets[int(which)%len(targets)]
		h := *h // failing through this input's t
		h.t = t
		if a := h.do(h.admin, target.method, target.path, body); a.status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", target.method, target.path, body, a.status, a.body)
		}
	})
}
