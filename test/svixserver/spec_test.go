package svixserver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDowngradeToOpenAPI30(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{
			name: "rewrites the top-level field only",
			in:   "{\n  \"openapi\": \"3.1.0\",\n  \"x\": {\"openapi\": \"3.1.0\"}\n}",
			want: "{\n  \"openapi\": \"3.0.3\",\n  \"x\": {\"openapi\": \"3.1.0\"}\n}",
		},
		{name: "compact", in: `{"openapi":"3.1.1"}`, want: `{"openapi": "3.0.3"}`},
		{name: "not 3.1", in: `{"openapi": "3.0.0"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := downgradeToOpenAPI30([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSpecPath(t *testing.T) {
	t.Run("environment override", func(t *testing.T) {
		t.Setenv(SpecPathEnv, "/somewhere/openapi.json")
		got, err := SpecPath()
		if err != nil || got != "/somewhere/openapi.json" {
			t.Errorf("SpecPath() = %q, %v", got, err)
		}
	})
	t.Run("svix module", func(t *testing.T) {
		t.Setenv(SpecPathEnv, "")
		got, err := SpecPath()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(filepath.ToSlash(got), "/codegen/lib-openapi.json") {
			t.Errorf("SpecPath() = %q", got)
		}
		if _, err := os.Stat(got); err != nil {
			t.Error(err)
		}
	})
}

// TestAnswersMatchSpec checks the server's own answers against the
// responses the OpenAPI document declares.
func TestAnswersMatchSpec(t *testing.T) {
	v, err := sharedSpecValidator()
	if err != nil {
		t.Fatal(err)
	}
	var violations []error // ServeHTTP is called from this goroutine only
	s, err := NewServer(Options{Validate: true, OnViolation: func(err error) { violations = append(violations, err) }})
	if err != nil {
		t.Fatal(err)
	}

	type exchange struct {
		name       string
		prepare    func()
		method     string
		path       string
		auth       string
		key        string
		body       string
		wantStatus int
		// svixRefusal marks a 422 that Svix's own rules give to a request
		// the OpenAPI document allows, so that it is no violation.
		svixRefusal bool
	}
	body := `{"eventType":"user.signup","eventId":"evt-1","payload":{"a":1},"channels":["c1"],"tags":["t1"]}`
	exchanges := []exchange{
		{name: "created", path: "/api/v1/app/app_1/msg", auth: "Bearer t", key: "k1", body: body, wantStatus: 202},
		{name: "created without content", path: "/api/v1/app/app_1/msg?with_content=false", auth: "Bearer t", key: "k2",
			body: `{"eventType":"user.signup","payload":{"a":1}}`, wantStatus: 202},
		{name: "replayed", path: "/api/v1/app/app_1/msg", auth: "Bearer t", key: "k1", body: body, wantStatus: 202},
		{name: "conflict", path: "/api/v1/app/app_1/msg", auth: "Bearer t", key: "k3", body: body, wantStatus: 409},
		{name: "unauthorized", path: "/api/v1/app/app_1/msg", body: body, wantStatus: 401},
		{name: "invalid", path: "/api/v1/app/app_1/msg", auth: "Bearer t", body: `{"eventType":"a b","payload":{}}`, wantStatus: 422},
		{name: "rate limited", prepare: func() { s.Script(Response{Status: 429, RetryAfter: "1"}) },
			path: "/api/v1/app/app_1/msg", auth: "Bearer t", key: "k4", body: body, wantStatus: 429},
		{name: "health", method: http.MethodGet, path: "/api/v1/health", wantStatus: 204},
		{name: "applications listed", method: http.MethodGet, path: "/api/v1/app?limit=1", auth: "Bearer t", wantStatus: 200},
		{name: "applications listed without a limit", method: http.MethodGet, path: "/api/v1/app", auth: "Bearer t", wantStatus: 200},
		{name: "applications unauthorized", method: http.MethodGet, path: "/api/v1/app?limit=1", wantStatus: 401},
		{name: "applications with a limit out of range", method: http.MethodGet, path: "/api/v1/app?limit=0", auth: "Bearer t", wantStatus: 422},
		{name: "application created", path: "/api/v1/app", auth: "Bearer t",
			body: `{"name":"Shop","uid":"usr_1","metadata":{"k":"v"}}`, wantStatus: 201},
		{name: "application exists", path: "/api/v1/app", auth: "Bearer t", body: `{"name":"Shop","uid":"usr_1"}`, wantStatus: 409},
		{name: "application got if it exists", path: "/api/v1/app?get_if_exists=true", auth: "Bearer t",
			body: `{"name":"Shop","uid":"usr_1"}`, wantStatus: 200},
		{name: "application read", method: http.MethodGet, path: "/api/v1/app/usr_1", auth: "Bearer t", wantStatus: 200},
		{name: "application missing", method: http.MethodGet, path: "/api/v1/app/usr_9", auth: "Bearer t", wantStatus: 404},
		{name: "application updated", method: http.MethodPut, path: "/api/v1/app/usr_1", auth: "Bearer t",
			body: `{"name":"Shop 2","uid":"usr_1"}`, wantStatus: 200},
		{name: "application upserted", method: http.MethodPut, path: "/api/v1/app/usr_2", auth: "Bearer t",
			body: `{"name":"Two","uid":"usr_2"}`, wantStatus: 201},
		{name: "application invalid", method: http.MethodPut, path: "/api/v1/app/usr_2", auth: "Bearer t", body: `{"name":""}`, wantStatus: 422},
		{name: "event type created", path: "/api/v1/event-type", auth: "Bearer t",
			body: `{"name":"a.b","description":"A b","schemas":{"1":{"type":"object"}},"groupName":"a","featureFlags":["beta"]}`, wantStatus: 201},
		{name: "event type exists", path: "/api/v1/event-type", auth: "Bearer t", body: `{"name":"a.b","description":"again"}`, wantStatus: 409},
		{name: "event type invalid", path: "/api/v1/event-type", auth: "Bearer t", body: `{"name":"a b","description":"x"}`, wantStatus: 422},
		{name: "event type without a description", path: "/api/v1/event-type", auth: "Bearer t", body: `{"name":"a.c"}`, wantStatus: 422},
		{name: "event type read", method: http.MethodGet, path: "/api/v1/event-type/a.b", auth: "Bearer t", wantStatus: 200},
		{name: "event type missing", method: http.MethodGet, path: "/api/v1/event-type/a.z", auth: "Bearer t", wantStatus: 404},
		{name: "event types listed", method: http.MethodGet, path: "/api/v1/event-type?limit=1&with_content=true&include_archived=true",
			auth: "Bearer t", wantStatus: 200},
		{name: "event types listed without options", method: http.MethodGet, path: "/api/v1/event-type", auth: "Bearer t", wantStatus: 200},
		{name: "event type upserted", method: http.MethodPut, path: "/api/v1/event-type/c.d", auth: "Bearer t",
			body: `{"description":"C d"}`, wantStatus: 201},
		{name: "event type updated", method: http.MethodPut, path: "/api/v1/event-type/c.d", auth: "Bearer t",
			body: `{"description":"C d 2","deprecated":true}`, wantStatus: 200},
		{name: "event type patched", method: http.MethodPatch, path: "/api/v1/event-type/c.d", auth: "Bearer t",
			body: `{"schemas":null,"groupName":null}`, wantStatus: 200},
		{name: "event type archived", method: http.MethodDelete, path: "/api/v1/event-type/c.d", auth: "Bearer t", wantStatus: 204},
		{name: "endpoint on an unknown event type", path: "/api/v1/app/usr_1/endpoint", auth: "Bearer t",
			body: `{"url":"https://example.com/hook","filterTypes":["a.b","c.d","e.f"]}`, wantStatus: 422, svixRefusal: true},
		{name: "event type expunged", method: http.MethodDelete, path: "/api/v1/event-type/c.d?expunge=true", auth: "Bearer t", wantStatus: 204},
		{name: "event type gone", method: http.MethodDelete, path: "/api/v1/event-type/c.d", auth: "Bearer t", wantStatus: 404},
		{name: "endpoint created", path: "/api/v1/app/usr_1/endpoint", auth: "Bearer t",
			body: `{"url":"https://example.com/hook","uid":"ep_1","filterTypes":["a.b"],"channels":["c"],"secret":"` + testSecretA + `"}`, wantStatus: 201},
		{name: "endpoint exists", path: "/api/v1/app/usr_1/endpoint", auth: "Bearer t",
			body: `{"url":"https://example.com/hook","uid":"ep_1"}`, wantStatus: 409},
		{name: "endpoint read", method: http.MethodGet, path: "/api/v1/app/usr_1/endpoint/ep_1", auth: "Bearer t", wantStatus: 200},
		{name: "endpoint updated", method: http.MethodPut, path: "/api/v1/app/usr_1/endpoint/ep_1", auth: "Bearer t",
			body: `{"url":"https://example.com/new","uid":"ep_1"}`, wantStatus: 200},
		{name: "endpoint upserted", method: http.MethodPut, path: "/api/v1/app/usr_1/endpoint/ep_2", auth: "Bearer t",
			body: `{"url":"https://example.com/two","uid":"ep_2"}`, wantStatus: 201},
		{name: "endpoint invalid", path: "/api/v1/app/usr_1/endpoint", auth: "Bearer t",
			body: `{"url":"https://example.com/hook","filterTypes":[]}`, wantStatus: 422},
		{name: "endpoint secret read", method: http.MethodGet, path: "/api/v1/app/usr_1/endpoint/ep_1/secret", auth: "Bearer t", wantStatus: 200},
		{name: "endpoint secret rotated", path: "/api/v1/app/usr_1/endpoint/ep_1/secret/rotate", auth: "Bearer t",
			body: `{"key":"` + testSecretB + `"}`, wantStatus: 204},
		{name: "endpoint in a missing application", path: "/api/v1/app/usr_9/endpoint", auth: "Bearer t",
			body: `{"url":"https://example.com/hook"}`, wantStatus: 404},
		{name: "endpoint deleted", method: http.MethodDelete, path: "/api/v1/app/usr_1/endpoint/ep_1", auth: "Bearer t", wantStatus: 204},
		{name: "endpoint missing", method: http.MethodDelete, path: "/api/v1/app/usr_1/endpoint/ep_1", auth: "Bearer t", wantStatus: 404},
		{name: "endpoint scripted 429", prepare: func() { s.ScriptFor(GetEndpoint, Response{Status: 429, RetryAfter: "1"}) },
			method: http.MethodGet, path: "/api/v1/app/usr_1/endpoint/ep_2", auth: "Bearer t", wantStatus: 429},
		{name: "application deleted", method: http.MethodDelete, path: "/api/v1/app/usr_1", auth: "Bearer t", wantStatus: 204},
	}
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			violations = nil
			if ex.prepare != nil {
				ex.prepare()
			}
			method := ex.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, ex.path, strings.NewReader(ex.body))
			req.Header.Set("Content-Type", "application/json")
			if ex.auth != "" {
				req.Header.Set("Authorization", ex.auth)
			}
			if ex.key != "" {
				req.Header.Set("idempotency-key", ex.key)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			resp := rec.Result()
			if resp.StatusCode != ex.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, rec.Body, ex.wantStatus)
			}
			if wantViolations := map[bool]int{true: 1}[ex.wantStatus == 422 && !ex.svixRefusal]; len(violations) != wantViolations {
				t.Errorf("violations %v, want %d", violations, wantViolations)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(respBody))
			specReq := httptest.NewRequest(method, ex.path, strings.NewReader(ex.body))
			if ok, errs := v.ValidateHttpResponse(specReq, resp); !ok {
				for _, e := range errs {
					t.Errorf("answer %s does not match the spec: %v", respBody, e)
				}
			}
		})
	}
}
