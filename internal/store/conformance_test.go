package store_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/store"
)

// opener returns a new, empty, migrated Store that is closed when the test
// ends. Each call gives a database of its own.
type opener func(t *testing.T) *store.Store

// runConformance checks the behaviour that every database behind a Store
// must show.
func runConformance(t *testing.T, open opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"ApplicationCRUD", testApplicationCRUD},
		{"ApplicationNotFound", testApplicationNotFound},
		{"ApplicationConflict", testApplicationConflict},
		{"EndpointCRUD", testEndpointCRUD},
		{"EndpointEventTypes", testEndpointEventTypes},
		{"EndpointNotFound", testEndpointNotFound},
		{"EndpointConflict", testEndpointConflict},
		{"EndpointRotation", testEndpointRotation},
		{"TokenCRUD", testTokenCRUD},
		{"TokenByHash", testTokenByHash},
		{"TokenNotFound", testTokenNotFound},
		{"TokenExpiry", testTokenExpiry},
		{"TouchTokens", testTouchTokens},
		{"CascadeDelete", testCascadeDelete},
		{"PaginateApplications", testPaginateApplications},
		{"PaginateStableUnderInserts", testPaginateStableUnderInserts},
		{"PaginateTiedTimes", testPaginateTiedTimes},
		{"PaginateTokensAndEndpoints", testPaginateTokensAndEndpoints},
		{"PageRequestErrors", testPageRequestErrors},
		{"Changes", testChanges},
		{"ChangesPruned", testChangesPruned},
		{"FilterCRUD", testFilterCRUD},
		{"FilterTypeLists", testFilterTypeLists},
		{"FilterNotFound", testFilterNotFound},
		{"FilterCascade", testFilterCascade},
		{"FilterChanges", testFilterChanges},
		{"PaginateFilters", testPaginateFilters},
		{"EventTypeCRUD", testEventTypeCRUD},
		{"EventTypeChanges", testEventTypeChanges},
		{"PaginateEventTypes", testPaginateEventTypes},
		{"StatsAdd", testStatsAdd},
		{"StatsRejects", testStatsRejects},
		{"StatsChunks", testStatsChunks},
		{"StatsConcurrent", testStatsConcurrent},
		{"StatsBuckets", testStatsBuckets},
		{"StatsQueryErrors", testStatsQueryErrors},
		{"PruneStats", testPruneStats},
		{"TopFiltered", testTopFiltered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// mustNot fails the test on err.
func mustNot(t *testing.T, err error, doing string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

// wantErr fails the test unless err is target.
func wantErr(t *testing.T, err, target error, doing string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", doing, err, target)
	}
}

func createApp(t *testing.T, s *store.Store, id string) store.Application {
	t.Helper()
	a, err := s.CreateApplication(ctxFor(t), store.Application{ID: id, Name: "app " + id})
	mustNot(t, err, "creating application "+id)
	return a
}

func createEndpoint(t *testing.T, s *store.Store, appID string) store.Endpoint {
	t.Helper()
	e, err := s.CreateEndpoint(ctxFor(t), store.Endpoint{ApplicationID: appID, URL: "https://example.com/hook"})
	mustNot(t, err, "creating an endpoint of "+appID)
	return e
}

func createToken(t *testing.T, s *store.Store, nt store.NewToken) (store.Token, string) {
	t.Helper()
	if nt.Name == "" {
		nt.Name = "test"
	}
	if nt.Scopes == nil {
		nt.Scopes = []string{"admin"}
	}
	tok, value, err := s.CreateToken(ctxFor(t), nt)
	mustNot(t, err, "creating a token")
	return tok, value
}

// checkFresh fails unless t is a time the store set during the test: after
// before, not in the future, truncated to the microsecond, in UTC.
func checkFresh(t *testing.T, what string, got, before time.Time) {
	t.Helper()
	if got.Before(before.Truncate(time.Microsecond)) || got.After(time.Now()) {
		t.Errorf("%s = %v, want between %v and now", what, got, before)
	}
	if got.Location() != time.UTC || got.Nanosecond()%1000 != 0 {
		t.Errorf("%s = %v, want UTC with whole microseconds", what, got)
	}
}

func testApplicationCRUD(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	before := time.Now()
	meta := map[string]string{"plan": "pro", "région": "eu-west", "empty": ""}
	created, err := s.CreateApplication(ctx, store.Application{ID: "acme-1.prod_x", Name: "Acme", Metadata: meta})
	mustNot(t, err, "creating")
	checkFresh(t, "CreatedAt", created.CreatedAt, before)
	if !created.UpdatedAt.Equal(created.CreatedAt) {
		t.Errorf("UpdatedAt %v != CreatedAt %v on create", created.UpdatedAt, created.CreatedAt)
	}
	meta["plan"] = "changed after create" // the store must have copied it

	got, err := s.GetApplication(ctx, "acme-1.prod_x")
	mustNot(t, err, "reading")
	want := store.Application{ID: "acme-1.prod_x", Name: "Acme",
		Metadata:  map[string]string{"plan": "pro", "région": "eu-west", "empty": ""},
		CreatedAt: created.CreatedAt, UpdatedAt: created.CreatedAt}
	if !appEqual(got, want) || !appEqual(created, want) {
		t.Fatalf("read back %+v, created %+v, want %+v", got, created, want)
	}

	noMeta, err := s.CreateApplication(ctx, store.Application{ID: "no-meta", Name: "No metadata"})
	mustNot(t, err, "creating without metadata")
	got, err = s.GetApplication(ctx, "no-meta")
	mustNot(t, err, "reading")
	if got.Metadata == nil || len(got.Metadata) != 0 || noMeta.Metadata == nil {
		t.Errorf("metadata of an application created without it: read %#v, created %#v; want an empty map", got.Metadata, noMeta.Metadata)
	}

	beforeUpdate := time.Now()
	updated, err := s.UpdateApplication(ctx, store.Application{ID: "acme-1.prod_x", Name: "Acme Corp", Metadata: map[string]string{"tier": "gold"}})
	mustNot(t, err, "updating")
	checkFresh(t, "UpdatedAt", updated.UpdatedAt, beforeUpdate)
	if updated.Name != "Acme Corp" || !maps.Equal(updated.Metadata, map[string]string{"tier": "gold"}) || !updated.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("updated = %+v", updated)
	}
	got, err = s.GetApplication(ctx, "acme-1.prod_x")
	mustNot(t, err, "reading after update")
	if !appEqual(got, updated) {
		t.Fatalf("read back %+v after update, want %+v", got, updated)
	}

	page, err := s.ListApplications(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if ids := appIDs(page.Items); !slices.Equal(ids, []string{"acme-1.prod_x", "no-meta"}) || page.NextCursor != "" {
		t.Fatalf("listed %v (next %q), want [acme-1.prod_x no-meta] and no next page", ids, page.NextCursor)
	}

	mustNot(t, s.DeleteApplication(ctx, "acme-1.prod_x"), "deleting")
	_, err = s.GetApplication(ctx, "acme-1.prod_x")
	wantErr(t, err, store.ErrNotFound, "reading a deleted application")
	page, err = s.ListApplications(ctx, store.ListOptions{})
	mustNot(t, err, "listing after delete")
	if ids := appIDs(page.Items); !slices.Equal(ids, []string{"no-meta"}) {
		t.Fatalf("listed %v after delete, want [no-meta]", ids)
	}
}

func testApplicationNotFound(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	_, err := s.GetApplication(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "reading")
	_, err = s.UpdateApplication(ctx, store.Application{ID: "nope", Name: "x"})
	wantErr(t, err, store.ErrNotFound, "updating")
	wantErr(t, s.DeleteApplication(ctx, "nope"), store.ErrNotFound, "deleting")
	_, err = s.GetApplication(ctx, "NOPE")
	wantErr(t, err, store.ErrNotFound, "reading")
	page, err := s.ListApplications(ctx, store.ListOptions{})
	mustNot(t, err, "listing none")
	if page.Items == nil || len(page.Items) != 0 || page.NextCursor != "" {
		t.Fatalf("empty list = %#v, want no items, non-nil, and no cursor", page)
	}
}

func testApplicationConflict(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	first := createApp(t, s, "dup")
	_, err := s.CreateApplication(ctx, store.Application{ID: "dup", Name: "second"})
	wantErr(t, err, store.ErrConflict, "creating an existing id")
	got, err := s.GetApplication(ctx, "dup")
	mustNot(t, err, "reading")
	if !appEqual(got, first) {
		t.Fatalf("after a conflicting create: %+v, want the first %+v", got, first)
	}
	// Ids are case-sensitive on both databases.
	createApp(t, s, "DUP")
	if _, err := s.CreateApplication(ctx, store.Application{Name: "no id"}); err == nil {
		t.Fatal("created an application without an id")
	}
}

var (
	endpointIDPattern     = regexp.MustCompile(`^ep_[0-9A-Za-z]{22}$`)
	tokenIDPattern        = regexp.MustCompile(`^tok_[0-9A-Za-z]{22}$`)
	tokenValuePattern     = regexp.MustCompile(`^gwk_[0-9A-Za-z]{43}$`)
	endpointSecretPattern = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{32}$`)
)

func testEndpointCRUD(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	before := time.Now()
	created, err := s.CreateEndpoint(ctx, store.Endpoint{
		ApplicationID: "app", URL: "https://example.com/a", Description: "first", Disabled: true,
	})
	mustNot(t, err, "creating")
	if !endpointIDPattern.MatchString(created.ID) {
		t.Errorf("generated id %q, want ep_ and 22 base-62 characters", created.ID)
	}
	if !endpointSecretPattern.MatchString(created.Secret) {
		t.Errorf("generated secret %q, want whsec_ and base64 of 24 bytes", created.Secret)
	}
	checkFresh(t, "CreatedAt", created.CreatedAt, before)
	got, err := s.GetEndpoint(ctx, "app", created.ID)
	mustNot(t, err, "reading")
	if !endpointEqual(got, created) {
		t.Fatalf("read back %+v, want %+v", got, created)
	}
	if got.URL != "https://example.com/a" || got.Description != "first" || !got.Disabled || got.EventTypes != nil ||
		got.PreviousSecret != "" || got.PreviousSecretExpiresAt != nil {
		t.Fatalf("read back %+v", got)
	}

	given, err := s.CreateEndpoint(ctx, store.Endpoint{
		ID: "ep_given", ApplicationID: "app", URL: "https://example.com/b", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	})
	mustNot(t, err, "creating with an id and a secret")
	if given.ID != "ep_given" || given.Secret != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Fatalf("created %+v, want the given id and secret", given)
	}
	got, err = s.GetEndpoint(ctx, "app", "ep_given")
	mustNot(t, err, "reading")
	if got.Secret != given.Secret || got.Disabled {
		t.Fatalf("read back %+v", got)
	}

	beforeUpdate := time.Now()
	upd := got
	upd.URL, upd.Description, upd.EventTypes, upd.Disabled = "https://example.org/c", "changed", []string{"user.created"}, true
	upd.Secret = "whsec_ignored" // secrets change only by rotation
	updated, err := s.UpdateEndpoint(ctx, upd)
	mustNot(t, err, "updating")
	checkFresh(t, "UpdatedAt", updated.UpdatedAt, beforeUpdate)
	if updated.URL != "https://example.org/c" || updated.Description != "changed" || !updated.Disabled ||
		!slices.Equal(updated.EventTypes, []string{"user.created"}) || updated.Secret != given.Secret ||
		!updated.CreatedAt.Equal(given.CreatedAt) {
		t.Fatalf("updated %+v", updated)
	}
	got, err = s.GetEndpoint(ctx, "app", "ep_given")
	mustNot(t, err, "reading after update")
	if !endpointEqual(got, updated) {
		t.Fatalf("read back %+v, want %+v", got, updated)
	}

	page, err := s.ListEndpoints(ctx, "app", store.ListOptions{})
	mustNot(t, err, "listing")
	if ids := endpointIDs(page.Items); !slices.Equal(ids, []string{created.ID, "ep_given"}) {
		t.Fatalf("listed %v, want [%s ep_given]", ids, created.ID)
	}
	if !endpointEqual(page.Items[1], updated) {
		t.Fatalf("listed %+v, want %+v", page.Items[1], updated)
	}

	mustNot(t, s.DeleteEndpoint(ctx, "app", created.ID), "deleting")
	_, err = s.GetEndpoint(ctx, "app", created.ID)
	wantErr(t, err, store.ErrNotFound, "reading a deleted endpoint")
	page, err = s.ListEndpoints(ctx, "app", store.ListOptions{})
	mustNot(t, err, "listing after delete")
	if ids := endpointIDs(page.Items); !slices.Equal(ids, []string{"ep_given"}) {
		t.Fatalf("listed %v after delete, want [ep_given]", ids)
	}
}

func testEndpointEventTypes(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	for _, types := range [][]string{nil, {}, {"a.b", "c-d_e", "ünïcode"}} {
		e, err := s.CreateEndpoint(ctx, store.Endpoint{ApplicationID: "app", URL: "https://example.com", EventTypes: types})
		mustNot(t, err, "creating")
		got, err := s.GetEndpoint(ctx, "app", e.ID)
		mustNot(t, err, "reading")
		if (got.EventTypes == nil) != (types == nil) || !slices.Equal(got.EventTypes, types) {
			t.Errorf("event types %#v read back as %#v", types, got.EventTypes)
		}
		// And back to null through an update.
		got.EventTypes = nil
		upd, err := s.UpdateEndpoint(ctx, got)
		mustNot(t, err, "updating")
		if upd.EventTypes != nil {
			t.Errorf("event types set to nil came back as %#v", upd.EventTypes)
		}
	}
}

func testEndpointNotFound(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "mine")
	createApp(t, s, "other")
	e := createEndpoint(t, s, "other")

	_, err := s.CreateEndpoint(ctx, store.Endpoint{ApplicationID: "missing", URL: "https://example.com"})
	wantErr(t, err, store.ErrNotFound, "creating an endpoint of a missing application")
	_, err = s.ListEndpoints(ctx, "missing", store.ListOptions{})
	wantErr(t, err, store.ErrNotFound, "listing the endpoints of a missing application")
	page, err := s.ListEndpoints(ctx, "mine", store.ListOptions{})
	mustNot(t, err, "listing an application without endpoints")
	if page.Items == nil || len(page.Items) != 0 {
		t.Fatalf("endpoints of an application without any: %#v", page.Items)
	}

	// Another application's endpoint is not found through this one.
	_, err = s.GetEndpoint(ctx, "mine", e.ID)
	wantErr(t, err, store.ErrNotFound, "reading another application's endpoint")
	_, err = s.UpdateEndpoint(ctx, store.Endpoint{ID: e.ID, ApplicationID: "mine", URL: "https://evil.example"})
	wantErr(t, err, store.ErrNotFound, "updating another application's endpoint")
	_, err = s.RotateEndpointSecret(ctx, "mine", e.ID, "")
	wantErr(t, err, store.ErrNotFound, "rotating another application's endpoint")
	wantErr(t, s.DeleteEndpoint(ctx, "mine", e.ID), store.ErrNotFound, "deleting another application's endpoint")
	got, err := s.GetEndpoint(ctx, "other", e.ID)
	mustNot(t, err, "reading the endpoint through its own application")
	if !endpointEqual(got, e) {
		t.Fatalf("the other application's endpoint changed: %+v, want %+v", got, e)
	}

	_, err = s.GetEndpoint(ctx, "other", "ep_missing")
	wantErr(t, err, store.ErrNotFound, "reading a missing endpoint")
	_, err = s.UpdateEndpoint(ctx, store.Endpoint{ID: "ep_missing", ApplicationID: "other", URL: "https://example.com"})
	wantErr(t, err, store.ErrNotFound, "updating a missing endpoint")
	wantErr(t, s.DeleteEndpoint(ctx, "other", "ep_missing"), store.ErrNotFound, "deleting a missing endpoint")
}

func testEndpointConflict(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "a")
	createApp(t, s, "b")
	_, err := s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_x", ApplicationID: "a", URL: "https://example.com"})
	mustNot(t, err, "creating")
	_, err = s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_x", ApplicationID: "a", URL: "https://example.com"})
	wantErr(t, err, store.ErrConflict, "creating the same endpoint id again")
	_, err = s.CreateEndpoint(ctx, store.Endpoint{ID: "ep_x", ApplicationID: "b", URL: "https://example.com"})
	wantErr(t, err, store.ErrConflict, "creating the same endpoint id in another application")
}

func testEndpointRotation(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	e := createEndpoint(t, s, "app")
	if got := e.Secrets(time.Now()); !slices.Equal(got, []string{e.Secret}) {
		t.Fatalf("secrets before rotation: %v, want [%s]", got, e.Secret)
	}

	before := time.Now()
	r1, err := s.RotateEndpointSecret(ctx, "app", e.ID, "")
	mustNot(t, err, "rotating")
	after := time.Now()
	if !endpointSecretPattern.MatchString(r1.Secret) || r1.Secret == e.Secret {
		t.Fatalf("new secret %q (old %q)", r1.Secret, e.Secret)
	}
	if r1.PreviousSecret != e.Secret || r1.PreviousSecretExpiresAt == nil {
		t.Fatalf("previous secret %q until %v, want %q", r1.PreviousSecret, r1.PreviousSecretExpiresAt, e.Secret)
	}
	exp := *r1.PreviousSecretExpiresAt
	if exp.Before(before.Add(store.PreviousSecretTTL).Truncate(time.Microsecond)) || exp.After(after.Add(store.PreviousSecretTTL)) {
		t.Fatalf("previous secret expires at %v, want 24 h after the rotation (%v–%v)", exp, before, after)
	}
	got, err := s.GetEndpoint(ctx, "app", e.ID)
	mustNot(t, err, "reading")
	if !endpointEqual(got, r1) {
		t.Fatalf("read back %+v, want %+v", got, r1)
	}
	if secrets := got.Secrets(after); !slices.Equal(secrets, []string{r1.Secret, e.Secret}) {
		t.Fatalf("secrets during the overlap: %v", secrets)
	}
	if secrets := got.Secrets(exp); !slices.Equal(secrets, []string{r1.Secret}) {
		t.Fatalf("secrets when the previous one expires: %v", secrets)
	}

	r2, err := s.RotateEndpointSecret(ctx, "app", e.ID, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	mustNot(t, err, "rotating to a given secret")
	if r2.Secret != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" || r2.PreviousSecret != r1.Secret {
		t.Fatalf("after the second rotation: secret %q previous %q, want the given one and %q", r2.Secret, r2.PreviousSecret, r1.Secret)
	}
	if secrets := r2.Secrets(time.Now()); slices.Contains(secrets, e.Secret) || len(secrets) != 2 {
		t.Fatalf("the first secret still signs after two rotations: %v", secrets)
	}
	_, err = s.RotateEndpointSecret(ctx, "app", "ep_missing", "")
	wantErr(t, err, store.ErrNotFound, "rotating a missing endpoint")
}

func testTokenCRUD(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	before := time.Now()
	expires := time.Now().Add(720 * time.Hour)
	tok, value, err := s.CreateToken(ctx, store.NewToken{Name: "ci", Scopes: []string{"read", "manage"}, ApplicationID: "app", ExpiresAt: &expires})
	mustNot(t, err, "creating")
	if !tokenIDPattern.MatchString(tok.ID) {
		t.Errorf("token id %q, want tok_ and 22 base-62 characters", tok.ID)
	}
	if !tokenValuePattern.MatchString(value) {
		t.Errorf("token value %q, want gwk_ and 43 base-62 characters", value)
	}
	if !store.TokenHashEqual(tok.Hash, store.HashToken(value)) {
		t.Errorf("stored hash %x is not the hash of the value", tok.Hash)
	}
	checkFresh(t, "CreatedAt", tok.CreatedAt, before)
	if tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(expires.Truncate(time.Microsecond)) || tok.LastUsedAt != nil {
		t.Errorf("created %+v, want it to expire at %v and never used", tok, expires)
	}
	got, err := s.GetToken(ctx, tok.ID)
	mustNot(t, err, "reading")
	if !tokenEqual(got, tok) {
		t.Fatalf("read back %+v, want %+v", got, tok)
	}

	admin, adminValue := createToken(t, s, store.NewToken{Name: "admin"})
	if admin.ApplicationID != "" || admin.ExpiresAt != nil || adminValue == value {
		t.Fatalf("admin token %+v", admin)
	}

	page, err := s.ListTokens(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if len(page.Items) != 2 || !tokenEqual(page.Items[0], tok) || !tokenEqual(page.Items[1], admin) {
		t.Fatalf("listed %+v, want [%+v %+v]", page.Items, tok, admin)
	}

	mustNot(t, s.DeleteToken(ctx, tok.ID), "deleting")
	_, err = s.GetToken(ctx, tok.ID)
	wantErr(t, err, store.ErrNotFound, "reading a deleted token")
	_, err = s.TokenByHash(ctx, store.HashToken(value), time.Now())
	wantErr(t, err, store.ErrNotFound, "looking up a deleted token")
	page, err = s.ListTokens(ctx, store.ListOptions{})
	mustNot(t, err, "listing after delete")
	if len(page.Items) != 1 || page.Items[0].ID != admin.ID {
		t.Fatalf("listed %+v after delete, want only %s", page.Items, admin.ID)
	}
}

func testTokenByHash(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	a, aValue := createToken(t, s, store.NewToken{Name: "a"})
	b, bValue := createToken(t, s, store.NewToken{Name: "b", Scopes: []string{"ingest"}})
	for _, c := range []struct {
		value string
		want  store.Token
	}{{aValue, a}, {bValue, b}} {
		got, err := s.TokenByHash(ctx, store.HashToken(c.value), time.Now())
		mustNot(t, err, "looking up")
		if !tokenEqual(got, c.want) {
			t.Fatalf("looked up %+v, want %+v", got, c.want)
		}
	}
	for _, bad := range []string{"", "gwk_", aValue + "x", aValue[:len(aValue)-1], strings.ToUpper(aValue), store.NewTokenValue()} {
		_, err := s.TokenByHash(ctx, store.HashToken(bad), time.Now())
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("looking up %q", bad))
	}
}

func testTokenNotFound(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	_, _, err := s.CreateToken(ctx, store.NewToken{Name: "x", Scopes: []string{"manage"}, ApplicationID: "missing"})
	wantErr(t, err, store.ErrNotFound, "creating a token for a missing application")
	_, err = s.GetToken(ctx, "tok_missing")
	wantErr(t, err, store.ErrNotFound, "reading a missing token")
	wantErr(t, s.DeleteToken(ctx, "tok_missing"), store.ErrNotFound, "deleting a missing token")
	page, err := s.ListTokens(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if len(page.Items) != 0 {
		t.Fatalf("a failed create left %+v", page.Items)
	}
}

func testTokenExpiry(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	now := time.Now()
	past := now.Add(-time.Second)
	future := now.Add(time.Hour)
	expired, expiredValue := createToken(t, s, store.NewToken{Name: "expired", ExpiresAt: &past})
	live, liveValue := createToken(t, s, store.NewToken{Name: "live", ExpiresAt: &future})

	_, err := s.TokenByHash(ctx, store.HashToken(expiredValue), now)
	wantErr(t, err, store.ErrNotFound, "looking up an expired token")
	got, err := s.TokenByHash(ctx, store.HashToken(liveValue), now)
	mustNot(t, err, "looking up a live token")
	if got.ID != live.ID || got.Expired(now) {
		t.Fatalf("looked up %+v", got)
	}
	// At the very moment it expires, and after, it is refused.
	for _, at := range []time.Time{*live.ExpiresAt, live.ExpiresAt.Add(time.Microsecond), future.Add(time.Hour)} {
		_, err = s.TokenByHash(ctx, store.HashToken(liveValue), at)
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("looking up a token expiring at %v at %v", live.ExpiresAt, at))
		if !live.Expired(at) {
			t.Errorf("Expired(%v) = false for a token expiring at %v", at, live.ExpiresAt)
		}
	}
	got, err = s.TokenByHash(ctx, store.HashToken(liveValue), live.ExpiresAt.Add(-time.Microsecond))
	mustNot(t, err, "looking up a token a microsecond before it expires")
	if got.ID != live.ID {
		t.Fatalf("looked up %s, want %s", got.ID, live.ID)
	}

	// An expired token is still there to read and list (and delete).
	got, err = s.GetToken(ctx, expired.ID)
	mustNot(t, err, "reading an expired token")
	if !got.Expired(now) {
		t.Fatalf("Expired(now) = false for %+v", got)
	}
	page, err := s.ListTokens(ctx, store.ListOptions{})
	mustNot(t, err, "listing")
	if len(page.Items) != 2 {
		t.Fatalf("listed %d tokens, want the expired and the live one", len(page.Items))
	}
}

func testTouchTokens(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	a, _ := createToken(t, s, store.NewToken{Name: "a"})
	b, _ := createToken(t, s, store.NewToken{Name: "b"})
	c, _ := createToken(t, s, store.NewToken{Name: "c"})
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

	mustNot(t, s.TouchTokens(ctx, nil), "touching nothing")
	mustNot(t, s.TouchTokens(ctx, map[string]time.Time{a.ID: t0, b.ID: t0.Add(time.Minute), "tok_deleted": t0}), "touching")
	lastUsed := func(id string) *time.Time {
		got, err := s.GetToken(ctx, id)
		mustNot(t, err, "reading")
		return got.LastUsedAt
	}
	if got := lastUsed(a.ID); got == nil || !got.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("a last used at %v, want %v", got, t0)
	}
	if got := lastUsed(b.ID); got == nil || !got.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("b last used at %v, want %v", got, t0.Add(time.Minute))
	}
	if got := lastUsed(c.ID); got != nil {
		t.Fatalf("c, not touched, last used at %v", got)
	}

	// Later times move it forward; earlier ones are ignored.
	mustNot(t, s.TouchTokens(ctx, map[string]time.Time{a.ID: t0.Add(time.Hour), b.ID: t0}), "touching again")
	if got := lastUsed(a.ID); got == nil || !got.Equal(t0.Add(time.Hour).Truncate(time.Microsecond)) {
		t.Fatalf("a last used at %v, want %v", got, t0.Add(time.Hour))
	}
	if got := lastUsed(b.ID); got == nil || !got.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("b last used at %v, want it kept at %v", got, t0.Add(time.Minute))
	}
}

func testCascadeDelete(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "gone")
	createApp(t, s, "kept")
	goneEPs := []store.Endpoint{createEndpoint(t, s, "gone"), createEndpoint(t, s, "gone")}
	keptEP := createEndpoint(t, s, "kept")
	goneTok, goneValue := createToken(t, s, store.NewToken{Scopes: []string{"manage"}, ApplicationID: "gone"})
	keptTok, keptValue := createToken(t, s, store.NewToken{Scopes: []string{"manage"}, ApplicationID: "kept"})
	adminTok, adminValue := createToken(t, s, store.NewToken{})

	mustNot(t, s.DeleteApplication(ctx, "gone"), "deleting the application")

	for _, e := range goneEPs {
		_, err := s.GetEndpoint(ctx, "gone", e.ID)
		wantErr(t, err, store.ErrNotFound, "reading an endpoint of the deleted application")
	}
	_, err := s.ListEndpoints(ctx, "gone", store.ListOptions{})
	wantErr(t, err, store.ErrNotFound, "listing the endpoints of the deleted application")
	_, err = s.GetToken(ctx, goneTok.ID)
	wantErr(t, err, store.ErrNotFound, "reading a token of the deleted application")
	_, err = s.TokenByHash(ctx, store.HashToken(goneValue), time.Now())
	wantErr(t, err, store.ErrNotFound, "looking up a token of the deleted application")

	if _, err := s.GetEndpoint(ctx, "kept", keptEP.ID); err != nil {
		t.Fatalf("the other application's endpoint: %v", err)
	}
	for _, c := range []struct {
		tok   store.Token
		value string
	}{{keptTok, keptValue}, {adminTok, adminValue}} {
		if _, err := s.TokenByHash(ctx, store.HashToken(c.value), time.Now()); err != nil {
			t.Fatalf("token %s, not of the deleted application: %v", c.tok.ID, err)
		}
	}
	page, err := s.ListTokens(ctx, store.ListOptions{})
	mustNot(t, err, "listing tokens")
	if ids := tokenIDs(page.Items); !slices.Equal(ids, []string{keptTok.ID, adminTok.ID}) {
		t.Fatalf("tokens left: %v, want [%s %s]", ids, keptTok.ID, adminTok.ID)
	}
	// The id is free again, and the new application starts empty.
	createApp(t, s, "gone")
	page2, err := s.ListEndpoints(ctx, "gone", store.ListOptions{})
	mustNot(t, err, "listing the endpoints of the new application")
	if len(page2.Items) != 0 {
		t.Fatalf("a new application with a deleted one's id has endpoints %v", endpointIDs(page2.Items))
	}
}

// listAll pages through a list with the given limit and returns the ids in
// the order listed, failing on a page larger than limit or an empty page
// with a cursor.
func listAll[T any](t *testing.T, limit int, list func(store.ListOptions) (store.Page[T], error), id func(T) string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("more than 1000 pages")
		}
		page, err := list(store.ListOptions{Limit: limit, Cursor: cursor})
		mustNot(t, err, "listing a page")
		if len(page.Items) > limit || (len(page.Items) == 0 && cursor != "") {
			t.Fatalf("page %d has %d items (limit %d)", pages, len(page.Items), limit)
		}
		for _, it := range page.Items {
			ids = append(ids, id(it))
		}
		if page.NextCursor == "" {
			return ids
		}
		if len(page.Items) != limit {
			t.Fatalf("page %d has %d items and a next cursor, want a full page of %d", pages, len(page.Items), limit)
		}
		cursor = page.NextCursor
	}
}

func testPaginateApplications(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	tick(s)
	var want []string
	for i := range 23 {
		want = append(want, createApp(t, s, fmt.Sprintf("app-%02d", 22-i)).ID) // ids in reverse: order is by time
	}
	list := func(o store.ListOptions) (store.Page[store.Application], error) { return s.ListApplications(ctx, o) }
	for _, limit := range []int{1, 5, 22, 23, 24, 250} {
		if got := listAll(t, limit, list, appID); !slices.Equal(got, want) {
			t.Fatalf("limit %d listed %v, want %v", limit, got, want)
		}
	}
	// A page whose rows end the list exactly has no next cursor.
	page, err := s.ListApplications(ctx, store.ListOptions{Limit: 23})
	mustNot(t, err, "listing")
	if page.NextCursor != "" {
		t.Fatalf("the one page of all 23 has next cursor %q", page.NextCursor)
	}
	// The default limit is 50.
	for i := range 40 {
		createApp(t, s, fmt.Sprintf("more-%02d", i))
	}
	page, err = s.ListApplications(ctx, store.ListOptions{})
	mustNot(t, err, "listing with the default limit")
	if len(page.Items) != store.DefaultLimit || page.NextCursor == "" {
		t.Fatalf("default page: %d items, next %q; want %d and a cursor", len(page.Items), page.NextCursor, store.DefaultLimit)
	}
}

func testPaginateStableUnderInserts(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	tick(s)
	var original []string
	for i := range 12 {
		original = append(original, createApp(t, s, fmt.Sprintf("orig-%02d", i)).ID)
	}
	var seen, added []string
	cursor := ""
	for round := 0; ; round++ {
		page, err := s.ListApplications(ctx, store.ListOptions{Limit: 5, Cursor: cursor})
		mustNot(t, err, "listing")
		for _, a := range page.Items {
			seen = append(seen, a.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		// Between pages: new applications, some with ids that sort first,
		// and a deletion of one not yet seen.
		for _, id := range []string{fmt.Sprintf("0-new-%d", round), fmt.Sprintf("z-new-%d", round)} {
			added = append(added, createApp(t, s, id).ID)
		}
		if round == 0 {
			mustNot(t, s.DeleteApplication(ctx, "orig-11"), "deleting")
			original = slices.DeleteFunc(original, func(id string) bool { return id == "orig-11" })
		}
	}
	// Every original row exactly once, in order, then the new ones in the
	// order they were created (each was created after every original).
	want := append(slices.Clone(original), added...)
	if !slices.Equal(seen, want) {
		t.Fatalf("listed %v while inserting, want %v", seen, want)
	}
}

func testPaginateTiedTimes(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	// Every row gets the same created_at: order and paging fall back on id.
	tied := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	store.SetClock(s, func() time.Time { return tied })
	var want []string
	for i := range 17 {
		want = append(want, createApp(t, s, fmt.Sprintf("tie-%02d", (i*7)%17)).ID)
	}
	slices.Sort(want)
	list := func(o store.ListOptions) (store.Page[store.Application], error) { return s.ListApplications(ctx, o) }
	for _, limit := range []int{1, 4, 16, 17} {
		if got := listAll(t, limit, list, appID); !slices.Equal(got, want) {
			t.Fatalf("limit %d listed %v, want %v", limit, got, want)
		}
	}
	// Later rows after the tied ones.
	store.SetClock(s, func() time.Time { return tied.Add(time.Microsecond) })
	want = append(want, createApp(t, s, "a-later").ID)
	if got := listAll(t, 3, list, appID); !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
}

func testPaginateTokensAndEndpoints(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	tick(s)
	createApp(t, s, "app")
	createApp(t, s, "other")
	var wantEPs, wantToks []string
	for range 11 {
		wantEPs = append(wantEPs, createEndpoint(t, s, "app").ID)
		createEndpoint(t, s, "other")
		tok, _ := createToken(t, s, store.NewToken{})
		wantToks = append(wantToks, tok.ID)
	}
	listEPs := func(o store.ListOptions) (store.Page[store.Endpoint], error) { return s.ListEndpoints(ctx, "app", o) }
	listToks := func(o store.ListOptions) (store.Page[store.Token], error) { return s.ListTokens(ctx, o) }
	for _, limit := range []int{1, 3, 11, 12} {
		if got := listAll(t, limit, listEPs, endpointID); !slices.Equal(got, wantEPs) {
			t.Fatalf("endpoints, limit %d: listed %v, want %v", limit, got, wantEPs)
		}
		if got := listAll(t, limit, listToks, tokenID); !slices.Equal(got, wantToks) {
			t.Fatalf("tokens, limit %d: listed %v, want %v", limit, got, wantToks)
		}
	}
}

func testPageRequestErrors(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	createApp(t, s, "app")
	createApp(t, s, "app2")
	page, err := s.ListApplications(ctx, store.ListOptions{Limit: 1})
	mustNot(t, err, "listing")
	good := page.NextCursor
	bads := []store.ListOptions{
		{Limit: -1}, {Limit: store.MaxLimit + 1},
		{Cursor: "not base64!"},
		{Cursor: base64.RawURLEncoding.EncodeToString([]byte("no-dot"))},
		{Cursor: base64.RawURLEncoding.EncodeToString([]byte("12x.app"))},
		{Cursor: base64.RawURLEncoding.EncodeToString([]byte("123."))},
		{Cursor: good + "="},
	}
	for _, o := range bads {
		_, err := s.ListApplications(ctx, o)
		wantErr(t, err, store.ErrInvalidPage, fmt.Sprintf("listing applications with %+v", o))
		_, err = s.ListTokens(ctx, o)
		wantErr(t, err, store.ErrInvalidPage, fmt.Sprintf("listing tokens with %+v", o))
		_, err = s.ListEndpoints(ctx, "app", o)
		wantErr(t, err, store.ErrInvalidPage, fmt.Sprintf("listing endpoints with %+v", o))
	}
	page, err = s.ListApplications(ctx, store.ListOptions{Limit: store.MaxLimit, Cursor: good})
	mustNot(t, err, "listing with the largest limit")
	if ids := appIDs(page.Items); !slices.Equal(ids, []string{"app2"}) {
		t.Fatalf("after the cursor: %v, want [app2]", ids)
	}
}

func testChanges(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	start, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the sequence")
	if start != 0 {
		t.Fatalf("a new database's change sequence is %d, want 0", start)
	}
	changes, next, err := s.ChangesSince(ctx, 0)
	mustNot(t, err, "reading changes")
	if len(changes) != 0 || next != 0 {
		t.Fatalf("a new database has changes %+v (next %d)", changes, next)
	}

	before := time.Now()
	createApp(t, s, "app")
	e := createEndpoint(t, s, "app")
	tok, _ := createToken(t, s, store.NewToken{Scopes: []string{"manage"}, ApplicationID: "app"})
	admin, _ := createToken(t, s, store.NewToken{})
	_, err = s.UpdateApplication(ctx, store.Application{ID: "app", Name: "renamed"})
	mustNot(t, err, "updating the application")
	e.Disabled = true
	_, err = s.UpdateEndpoint(ctx, e)
	mustNot(t, err, "updating the endpoint")
	_, err = s.RotateEndpointSecret(ctx, "app", e.ID, "")
	mustNot(t, err, "rotating")
	mustNot(t, s.TouchTokens(ctx, map[string]time.Time{tok.ID: time.Now()}), "touching") // not a change
	mustNot(t, s.DeleteToken(ctx, admin.ID), "deleting the admin token")
	mustNot(t, s.DeleteEndpoint(ctx, "app", e.ID), "deleting the endpoint")
	mustNot(t, s.DeleteApplication(ctx, "app"), "deleting the application")
	// Failed writes are not changes.
	_, err = s.CreateEndpoint(ctx, store.Endpoint{ApplicationID: "missing", URL: "https://example.com"})
	wantErr(t, err, store.ErrNotFound, "creating an endpoint of a missing application")

	type short struct {
		Kind store.ChangeKind
		Op   store.ChangeOp
		ID   string
		App  string
	}
	want := []short{
		{store.KindApplication, store.OpCreate, "app", "app"},
		{store.KindEndpoint, store.OpCreate, e.ID, "app"},
		{store.KindToken, store.OpCreate, tok.ID, "app"},
		{store.KindToken, store.OpCreate, admin.ID, ""},
		{store.KindApplication, store.OpUpdate, "app", "app"},
		{store.KindEndpoint, store.OpUpdate, e.ID, "app"},
		{store.KindEndpoint, store.OpUpdate, e.ID, "app"},
		{store.KindToken, store.OpDelete, admin.ID, ""},
		{store.KindEndpoint, store.OpDelete, e.ID, "app"},
		{store.KindApplication, store.OpDelete, "app", "app"},
	}
	changes, next, err = s.ChangesSince(ctx, 0)
	mustNot(t, err, "reading changes")
	var got []short
	for i, c := range changes {
		got = append(got, short{c.Kind, c.Op, c.ID, c.ApplicationID})
		if c.Seq != int64(i+1) {
			t.Errorf("change %d has seq %d, want %d", i, c.Seq, i+1)
		}
		checkFresh(t, "change time", c.At, before)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changes:\n got %v\nwant %v", got, want)
	}
	if seq, err := s.ChangeSeq(ctx); err != nil || next != int64(len(want)) || seq != next {
		t.Fatalf("next = %d, ChangeSeq = %d (%v); want both %d", next, seq, err, len(want))
	}

	// Polling from the middle gives the rest; polling from the end, nothing.
	rest, next2, err := s.ChangesSince(ctx, 7)
	mustNot(t, err, "reading changes since 7")
	if len(rest) != 3 || rest[0].Seq != 8 || next2 != next {
		t.Fatalf("changes since 7: %+v (next %d)", rest, next2)
	}
	none, next3, err := s.ChangesSince(ctx, next)
	mustNot(t, err, "reading changes since the last")
	if len(none) != 0 || next3 != next {
		t.Fatalf("changes since the last: %+v (next %d, want %d)", none, next3, next)
	}
}

func testChangesPruned(t *testing.T, s *store.Store) {
	ctx := ctxFor(t)
	now := time.Now()
	store.SetClock(s, func() time.Time { return now })
	createApp(t, s, "old-1")
	createApp(t, s, "old-2")
	mid, err := s.ChangeSeq(ctx)
	mustNot(t, err, "reading the sequence")

	// Just within the retention, nothing is pruned.
	store.SetClock(s, func() time.Time { return now.Add(store.ChangeRetention) })
	createApp(t, s, "new-1")
	changes, _, err := s.ChangesSince(ctx, 0)
	mustNot(t, err, "reading changes within the retention")
	if len(changes) != 3 {
		t.Fatalf("%d changes within the retention, want 3", len(changes))
	}

	// A write past the retention prunes the old changes.
	store.SetClock(s, func() time.Time { return now.Add(store.ChangeRetention + time.Second) })
	createApp(t, s, "new-2")
	_, _, err = s.ChangesSince(ctx, 0)
	wantErr(t, err, store.ErrChangesPruned, "reading pruned changes")
	_, _, err = s.ChangesSince(ctx, mid-1)
	wantErr(t, err, store.ErrChangesPruned, "reading partly pruned changes")
	changes, next, err := s.ChangesSince(ctx, mid)
	mustNot(t, err, "reading the changes that were kept")
	var ids []string
	for _, c := range changes {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"new-1", "new-2"}) || next != mid+2 {
		t.Fatalf("kept changes %v (next %d), want [new-1 new-2] (next %d)", ids, next, mid+2)
	}
}

func appEqual(a, b store.Application) bool {
	return a.ID == b.ID && a.Name == b.Name && maps.Equal(a.Metadata, b.Metadata) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func endpointEqual(a, b store.Endpoint) bool {
	return a.ID == b.ID && a.ApplicationID == b.ApplicationID && a.URL == b.URL && a.Description == b.Description &&
		(a.EventTypes == nil) == (b.EventTypes == nil) && slices.Equal(a.EventTypes, b.EventTypes) &&
		a.Disabled == b.Disabled && a.Secret == b.Secret && a.PreviousSecret == b.PreviousSecret &&
		timePtrEqual(a.PreviousSecretExpiresAt, b.PreviousSecretExpiresAt) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func tokenEqual(a, b store.Token) bool {
	return a.ID == b.ID && a.Name == b.Name && slices.Equal(a.Scopes, b.Scopes) && a.ApplicationID == b.ApplicationID &&
		store.TokenHashEqual(a.Hash, b.Hash) && a.CreatedAt.Equal(b.CreatedAt) &&
		timePtrEqual(a.ExpiresAt, b.ExpiresAt) && timePtrEqual(a.LastUsedAt, b.LastUsedAt)
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func appID(a store.Application) string   { return a.ID }
func endpointID(e store.Endpoint) string { return e.ID }
func tokenID(t store.Token) string       { return t.ID }

func appIDs(as []store.Application) []string { return mapIDs(as, appID) }
func endpointIDs(es []store.Endpoint) []string {
	return mapIDs(es, endpointID)
}
func tokenIDs(ts []store.Token) []string { return mapIDs(ts, tokenID) }

func mapIDs[T any](items []T, id func(T) string) []string {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, id(it))
	}
	return ids
}

// tick makes s's clock advance by a millisecond at each reading, so that
// rows created one after another have distinct, increasing times.
func tick(s *store.Store) {
	now := time.Now()
	store.SetClock(s, func() time.Time {
		now = now.Add(time.Millisecond)
		return now
	})
}
