package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gwook/gwook/internal/api"
	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/test/pgtest"
	"github.com/gwook/gwook/test/svixserver"
)

// databases are the stores every API test runs on.
var databases = []struct {
	name string
	open func(t testing.TB) *store.Store
}{
	{"SQLite", func(t testing.TB) *store.Store { return openStore(t, "", t.TempDir()) }},
	{"Postgres", func(t testing.TB) *store.Store { return openStore(t, pgtest.NewDatabase(t), "") }},
}

func openStore(t testing.TB, url, dir string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, url, dir)
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

// forEachDatabase runs test on SQLite and on a fresh PostgreSQL database.
func forEachDatabase(t *testing.T, test func(t *testing.T, st *store.Store)) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			test(t, db.open(t))
		})
	}
}

// harness is the API served over HTTP on one store, with an admin token.
type harness struct {
	t       testing.TB
	url     string
	store   *store.Store
	catalog *catalog.Catalog
	svix    *svixserver.Server // nil without the Svix mirror
	// queue is the queue of direct delivery, not started; nil without
	// harnessOptions.direct.
	queue *direct.Queue
	admin string
}

type harnessOptions struct {
	svix bool
	// svixURL, when set, is where the mirror sends instead of the test
	// server.
	svixURL string
	// allowPrivate allows endpoint URLs on private networks.
	allowPrivate bool
	// globalTypes is the global type filter (FILTER_*).
	globalTypes filter.Types
	// direct makes a queue of direct delivery (harness.queue), which the
	// messages operations read and resend through.
	direct bool
}

func newHarness(t testing.TB, st *store.Store, opts harnessOptions) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := catalog.New(st, catalog.Options{Logger: logger})
	if err := cat.Start(ctx); err != nil {
		t.Fatalf("starting the catalog: %v", err)
	}
	t.Cleanup(cat.Close)
	h := &harness{t: t, store: st, catalog: cat}
	p := pipeline.New(pipeline.Config{Filter: opts.globalTypes, AppFilter: cat.Filter, Applications: cat.HasApplication, Logger: logger})
	deps := api.Deps{Store: st, Catalog: cat, Pipeline: p, URLs: netguard.Policy{AllowPrivate: opts.allowPrivate}, Logger: logger, Version: "test"}
	if opts.direct {
		h.queue = newDirectQueue(t, st, cat)
		deps.Messages = h.queue
	}
	if opts.svix {
		h.svix = svixserver.New(t)
		url := h.svix.URL()
		if opts.svixURL != "" {
			url = opts.svixURL
		}
		sender, err := svix.New(svix.Config{Token: "testsk", ServerURL: url, MaxConnsPerHost: 4, Timeout: 2 * time.Second,
			Logger: logger, Retry: svix.RetryPolicy{MaxAttempts: 2, MaxElapsed: 3 * time.Second, InitialInterval: 10 * time.Millisecond,
				MaxInterval: 50 * time.Millisecond, RetryAfterMax: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		deps.Svix = sender
	}
	r := chi.NewRouter()
	api.New(r, deps)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.admin = h.token(store.NewToken{Name: "admin", Scopes: []string{"admin"}})
	return h
}

// token creates a token in the store directly and returns its value, known
// to the catalog.
func (h *harness) token(nt store.NewToken) string {
	h.t.Helper()
	_, value, err := h.store.CreateToken(context.Background(), nt)
	if err != nil {
		h.t.Fatalf("creating a token: %v", err)
	}
	if err := h.catalog.Sync(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return value
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", a.status, err, a.body)
	}
	return v
}

// problemErrors returns the {field, rule} pairs of a problem's errors.
func (a answer) problemErrors(t testing.TB) []string {
	t.Helper()
	var p struct {
		Errors []struct{ Field, Rule string }
	}
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("not a problem: %s", a.body)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field+":"+e.Rule)
	}
	return out
}

// do sends method path with body (a string is sent as is, anything else as
// JSON) and token (empty: no Authorization).
func (h *harness) do(token, method, path string, body any) answer {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: raw}
}

// must sends like do and fails the test unless the status is want.
func (h *harness) must(want int, token, method, path string, body any) answer {
	h.t.Helper()
	a := h.do(token, method, path, body)
	if a.status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, a.status, want, a.body)
	}
	return a
}

// publicURL is an endpoint URL on a public address, which needs no DNS.
const publicURL = "https://93.184.216.34/webhooks"

func (h *harness) createApp(id string) {
	h.t.Helper()
	h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/applications", map[string]any{"id": id, "name": "App " + id})
}

func (h *harness) createEndpoint(appID string, body map[string]any) map[string]any {
	h.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["url"]; !ok {
		body["url"] = publicURL
	}
	return h.must(http.StatusCreated, h.admin, http.MethodPost, "/api/v1/applications/"+appID+"/endpoints", body).json(h.t)
}
