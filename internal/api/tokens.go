package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/store"
)

// Scopes are the scopes a token may have.
var Scopes = []string{"admin", "read", "ingest", "manage"}

// tokenOut is a token as the API shows it: never its value, except once in
// the answer to its creation.
type tokenOut struct {
	ID            string     `json:"id" example:"tok_4bWvD8nLQ3jXr2aT9pKs1e"`
	Name          string     `json:"name"`
	Scopes        []string   `json:"scopes"`
	ApplicationID *string    `json:"application_id"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
	LastUsedAt    *time.Time `json:"last_used_at" doc:"May lag by up to a minute"`
}

type tokenCreated struct {
	tokenOut
	Token string `json:"token" doc:"The token's value, shown only here: Gwook keeps its SHA-256 hash"`
}

func tokenOutOf(t store.Token) tokenOut {
	out := tokenOut{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: utc(t.CreatedAt),
		ExpiresAt: utcPtr(t.ExpiresAt), LastUsedAt: utcPtr(t.LastUsedAt)}
	if t.ApplicationID != "" {
		out.ApplicationID = &t.ApplicationID
	}
	return out
}

// TokenRequest is what a new token is made of: the body of POST
// /api/v1/tokens, and what gwook token create takes.
type TokenRequest struct {
	Name          string     `json:"name" minLength:"1" maxLength:"128"`
	Scopes        []string   `json:"scopes" minItems:"1" uniqueItems:"true" enum:"admin,read,ingest,manage"`
	ApplicationID *string    `json:"application_id,omitempty" doc:"Restricts the token to this application; not with admin, required with manage"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty" doc:"When the token stops working; never when absent"`
}

// Check returns every rule the request breaks beyond its schema, at now.
func (t TokenRequest) Check(now time.Time) []event.FieldError {
	var errs []event.FieldError
	if len(t.Name) == 0 || len(t.Name) > 128 {
		errs = append(errs, fieldErr("name", "length", "must be 1 to 128 characters"))
	}
	if len(t.Scopes) == 0 {
		errs = append(errs, fieldErr("scopes", "min_items", "at least one scope is needed"))
	}
	for _, s := range t.Scopes {
		if !slices.Contains(Scopes, s) {
			errs = append(errs, fieldErr("scopes", "enum", "unknown scope "+quote(s)+": use admin, read, ingest or manage"))
		}
	}
	restricted := t.ApplicationID != nil && *t.ApplicationID != ""
	if restricted && slices.Contains(t.Scopes, "admin") {
		errs = append(errs, fieldErr("application_id", "admin_unrestricted", "an admin token cannot be restricted to one application"))
	}
	if !restricted && slices.Contains(t.Scopes, "manage") {
		errs = append(errs, fieldErr("application_id", "required", "a manage token needs the application it manages"))
	}
	if t.ExpiresAt != nil && !t.ExpiresAt.After(now) {
		errs = append(errs, fieldErr("expires_at", "future", "must be in the future"))
	}
	return errs
}

// NewToken is the store's request for t.
func (t TokenRequest) NewToken() store.NewToken {
	nt := store.NewToken{Name: t.Name, Scopes: t.Scopes, ExpiresAt: t.ExpiresAt}
	if t.ApplicationID != nil {
		nt.ApplicationID = *t.ApplicationID
	}
	return nt
}

type createTokenInput struct {
	Body TokenRequest
}

type createTokenOutput struct {
	Location string `header:"Location"`
	Body     tokenCreated
}

type tokenPath struct {
	TokenID string `path:"token_id" maxLength:"64"`
}

type listTokensInput struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"250" default:"50" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

func (s *server) registerTokens() {
	huma.Register(s.api, operation(http.MethodPost, "/tokens", "create-token", "Create an API token", http.StatusCreated),
		s.createToken)
	huma.Register(s.api, operation(http.MethodGet, "/tokens", "list-tokens", "List the API tokens", http.StatusOK),
		func(ctx context.Context, in *listTokensInput) (*listOutput[tokenOut], error) {
			if _, err := authorize(ctx, adminOnly, ""); err != nil {
				return nil, err
			}
			page, err := s.Store.ListTokens(ctx, pageOf(in.Limit, in.Cursor))
			if err != nil {
				return nil, s.storeError(ctx, err, "token", "")
			}
			return listOf(page, tokenOutOf), nil
		})
	huma.Register(s.api, operation(http.MethodDelete, "/tokens/{token_id}", "delete-token", "Delete an API token", http.StatusNoContent, http.StatusNotFound),
		func(ctx context.Context, in *tokenPath) (*struct{}, error) {
			if _, err := authorize(ctx, adminOnly, ""); err != nil {
				return nil, err
			}
			if err := s.Store.DeleteToken(ctx, in.TokenID); err != nil {
				return nil, s.storeError(ctx, err, "token", in.TokenID)
			}
			s.synced(ctx)
			return nil, nil
		})
}

func (s *server) createToken(ctx context.Context, in *createTokenInput) (*createTokenOutput, error) {
	if _, err := authorize(ctx, adminOnly, ""); err != nil {
		return nil, err
	}
	if errs := in.Body.Check(time.Now()); len(errs) > 0 {
		return nil, invalid(ctx, errs...)
	}
	t, value, err := s.Store.CreateToken(ctx, in.Body.NewToken())
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidField(ctx, "application_id", "exists", "no application "+quote(*in.Body.ApplicationID))
	}
	if err != nil {
		return nil, s.storeError(ctx, err, "token", "")
	}
	s.synced(ctx)
	return &createTokenOutput{Location: BasePath + "/tokens/" + t.ID, Body: tokenCreated{tokenOut: tokenOutOf(t), Token: value}}, nil
}
