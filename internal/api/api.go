// Package api serves Gwook's management API under /api/v1: API tokens,
// applications (one per customer), their webhook endpoints and filters,
// the catalogue of event types (with the JSON Schema of each type's data,
// refused with every problem listed when it is not a valid schema of draft
// 2020-12), per-application stats, and, under direct delivery, the messages sent to
// each application (listed, inspected with their attempts, and resent), on the database of package store. The wire contract is API.md; Huma v2 on chi
// generates the OpenAPI 3.1 document (GET /openapi.json, rendered at
// GET /docs) from the Go types and validates every request against it.
//
// # Errors
//
// Every error is an RFC 9457 problem (application/problem+json) whose type is
// urn:gwook:problem: and a kind: invalid (400, with errors listing every
// broken rule as {field, rule, detail}; a body that breaks the schema, unknown
// fields included, is a 400, never Huma's 422), unauthorized (401, with
// WWW-Authenticate: Bearer), forbidden (403), not_found (404), conflict (409),
// too_large (413) and svix (502: Svix refused or failed a change, which then
// was not made in Gwook either).
//
// # Authentication and scopes
//
// Every operation but the OpenAPI document and its rendering needs a bearer
// token, verified by the catalog in memory (no database query). A token of
// the admin scope may do everything; read may read everything but tokens and
// endpoint secrets; only admin may change the catalogue of event types;
// manage may read and change the endpoints and the
// filter, and read the stats, of its own application; ingest may only send events. A token restricted to one
// application is answered 404 for another application's resources, whatever
// its scopes, so that it cannot learn that they exist; listing applications
// with it shows its own only.
//
// # Changes and replicas
//
// After each change the answering replica polls the change log before it
// answers (catalog.Sync), so every event it accepts after its answer sees the
// change; other replicas see it within the catalog's poll interval (1 s).
//
// # Svix
//
// With the Svix backend, a change to an application, an endpoint or an event
// type is made in Svix first, through upserts keyed by Gwook's ids (the Svix uid), and stored
// in Gwook only once Svix accepted it. A Svix failure is a 502 and nothing is
// stored. When the database write then fails (rare: the same request reads
// the row just before), the answer is a 500 and the Svix side holds the new
// values: repeating the request converges, because each Svix call is an
// idempotent upsert or delete by uid. A new endpoint whose database insert
// fails is deleted from Svix again, so that no endpoint Gwook does not know
// receives messages; were that deletion to fail too, it is logged at error
// level with the endpoint's id.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"

	"github.com/gwook/gwook/internal/catalog"
	"github.com/gwook/gwook/internal/direct"
	"github.com/gwook/gwook/internal/httpapi"
	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/internal/telemetry"
)

// BasePath prefixes every operation of the API.
const BasePath = "/api/v1"

// maxBodyBytes bounds a request body of the API: the largest valid one (an
// application with its metadata) is a few KiB.
const maxBodyBytes = 64 << 10

// Deps is what the API needs.
type Deps struct {
	Store   *store.Store
	Catalog *catalog.Catalog
	// Pipeline decides, for POST .../filter/test, what its filters make of
	// an event.
	Pipeline *pipeline.Pipeline
	// Svix, when set, mirrors applications and endpoints to Svix.
	Svix *svix.Sender
	// Messages, set under direct delivery, resends messages; without it
	// the messages operations answer 404.
	Messages *direct.Queue
	// URLs checks endpoint URLs.
	URLs    netguard.Policy
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	// Version is the API document's version.
	Version string
}

// server holds the handlers' dependencies.
type server struct {
	Deps
	api huma.API
}

// Mount returns the function that adds the API's routes, and /openapi.json
// and /docs, to a chi router (httpapi.Deps.API).
func Mount(d Deps) func(chi.Router) {
	return func(r chi.Router) { New(r, d) }
}

// New registers the API on r and returns it.
func New(r chi.Router, d Deps) huma.API {
	config := huma.DefaultConfig("Gwook management API", d.Version)
	// No $schema links in answers: the document is at /openapi.json.
	config.CreateHooks = nil
	config.Info.Description = "Applications, webhook endpoints and API tokens of Gwook. Errors are RFC 9457 problems."
	config.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "A Gwook API token: gwk_ and 43 characters."},
	}
	s := &server{Deps: d}
	s.api = humachi.New(r, config)
	s.api.UseMiddleware(s.authenticate)
	s.registerTokens()
	s.registerApplications()
	s.registerEndpoints()
	s.registerFilters()
	s.registerEventTypes()
	s.registerStats()
	s.registerMessages()
	return s.api
}

// operation returns a Huma operation that needs a bearer token.
func operation(method, path, id, summary string, status int, errs ...int) huma.Operation {
	return huma.Operation{
		OperationID:   id,
		Method:        method,
		Path:          BasePath + path,
		Summary:       summary,
		DefaultStatus: status,
		MaxBodyBytes:  maxBodyBytes,
		Security:      []map[string][]string{{"bearer": {}}},
		Errors:        append([]int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden}, errs...),
	}
}

type principalKey struct{}

// authenticate is a Huma middleware: it lets through the operations that
// need no token, and refuses the others without a valid one with 401.
func (s *server) authenticate(ctx huma.Context, next func(huma.Context)) {
	if len(ctx.Operation().Security) == 0 {
		next(ctx)
		return
	}
	value, ok := httpapi.BearerToken(ctx.Header("Authorization"))
	if !ok {
		s.unauthorized(ctx, "no bearer token: send Authorization: Bearer gwk_...")
		return
	}
	t, err := s.Catalog.Authenticate(value)
	if err != nil {
		s.unauthorized(ctx, "unknown or expired token")
		return
	}
	httpapi.TokenUsed(ctx.Context(), s.Metrics, t.ID)
	next(huma.WithValue(ctx, principalKey{}, t))
}

func (s *server) unauthorized(ctx huma.Context, detail string) {
	s.Metrics.AuthFailure("api_token")
	ctx.SetHeader("WWW-Authenticate", `Bearer realm="gwook"`)
	_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized, detail)
}

// access is what an operation allows.
type access int

const (
	// adminOnly: the admin scope.
	adminOnly access = iota
	// readAll: admin or read.
	readAll
	// readApp: admin, read, or manage of the application.
	readApp
	// changeApp: admin, or manage of the application.
	changeApp
)

// authorize returns the request's token when it may do what a allows to the
// application appID (empty: none in particular): a 404 when the token is
// restricted to another application, a 403 when its scopes do not allow it.
func authorize(ctx context.Context, a access, appID string) (store.Token, error) {
	t, _ := ctx.Value(principalKey{}).(store.Token)
	if t.ApplicationID != "" && appID != "" && appID != t.ApplicationID {
		return t, notFound(ctx, "application", appID)
	}
	has := func(scope string) bool { return slices.Contains(t.Scopes, scope) }
	ok := has("admin")
	switch a {
	case readAll:
		ok = ok || has("read")
	case readApp:
		ok = ok || has("read") || has("manage") && t.ApplicationID != ""
	case changeApp:
		ok = ok || has("manage") && t.ApplicationID != ""
	}
	if !ok {
		return t, newProblem(ctx, http.StatusForbidden, "the token's scopes ("+strings.Join(t.Scopes, ", ")+") do not allow this")
	}
	return t, nil
}

func notFound(ctx context.Context, what, id string) *Problem {
	return newProblem(ctx, http.StatusNotFound, "no "+what+" "+quote(id))
}

// quote quotes an id from a request for a problem's detail, cut at 64
// characters.
func quote(id string) string {
	if len(id) > 64 {
		id = id[:64] + "..."
	}
	return `"` + id + `"`
}

// storeError answers an error of the store: 404 for what is missing, 409
// for what exists, 400 for a page request the store refused, 500 (logged,
// not shown) for anything else.
func (s *server) storeError(ctx context.Context, err error, what, id string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound(ctx, what, id)
	case errors.Is(err, store.ErrConflict):
		return newProblem(ctx, http.StatusConflict, "a "+what+" "+quote(id)+" exists already")
	case errors.Is(err, store.ErrInvalidPage):
		return invalidField(ctx, "cursor", "valid", "not a cursor of this list: start again without one")
	}
	s.Logger.ErrorContext(ctx, "database error", "error", err.Error(), "request_id", httpapi.RequestID(ctx))
	return newProblem(ctx, http.StatusInternalServerError, "the database failed; try again")
}

// svixError answers a failure to mirror a change to Svix: 502.
func (s *server) svixError(ctx context.Context, err error) error {
	s.Logger.WarnContext(ctx, "svix refused a change", "error", err.Error(), "request_id", httpapi.RequestID(ctx))
	// Svix's own answer is the client's to see; a connection error, which
	// names internal addresses, goes to the log line only.
	detail := "Svix could not be reached, so Gwook did not make the change; try again"
	if mirrorErr, ok := errors.AsType[*svix.MirrorError](err); ok && mirrorErr.Status != 0 {
		detail = "Svix did not take the change, so Gwook did not make it: " + err.Error()
	}
	if errors.Is(err, svix.ErrUnauthorized) {
		detail = "Svix refused Gwook's token (SVIX_AUTH_TOKEN), so the change was not made"
	}
	return newProblem(ctx, http.StatusBadGateway, detail)
}

// synced polls the change log so that this replica applies the change just
// made before it answers. A failure only delays that to the next poll.
func (s *server) synced(ctx context.Context) {
	if err := s.Catalog.Sync(ctx); err != nil {
		s.Logger.WarnContext(ctx, "could not apply a change at once; the next poll will", "error", err.Error())
	}
}

func invalidField(ctx context.Context, field, rule, detail string) *Problem {
	return invalid(ctx, fieldErr(field, rule, detail))
}

// pageOf is the store's request for the page that a list's query (limit
// and cursor, fields of each list's input: Huma reads parameters only from
// an input's own fields) asks for.
func pageOf(limit int, cursor string) store.ListOptions {
	return store.ListOptions{Limit: limit, Cursor: cursor}
}

// list is a page of a list, as every list answers.
type list[T any] struct {
	Data       []T     `json:"data" nullable:"false"`
	NextCursor *string `json:"next_cursor" doc:"null on the last page"`
}

type listOutput[T any] struct {
	Body list[T]
}

// listOf converts a page of the store.
func listOf[S, T any](page store.Page[S], convert func(S) T) *listOutput[T] {
	out := &listOutput[T]{Body: list[T]{Data: make([]T, 0, len(page.Items))}}
	for _, item := range page.Items {
		out.Body.Data = append(out.Body.Data, convert(item))
	}
	if page.NextCursor != "" {
		out.Body.NextCursor = &page.NextCursor
	}
	return out
}

// utc is t in UTC, as every time the API answers.
func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
