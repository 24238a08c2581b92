package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/netguard"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
)

// endpointOut is an endpoint as the API shows it: without its secret.
type endpointOut struct {
	ID          string    `json:"id" example:"ep_2cY7sWq0mZ8kR1vB5nHj3d"`
	URL         string    `json:"url"`
	Description string    `json:"description"`
	EventTypes  []string  `json:"event_types" doc:"null: every event type"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func endpointOutOf(e store.Endpoint) endpointOut {
	return endpointOut{ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: e.EventTypes,
		Disabled: e.Disabled, CreatedAt: utc(e.CreatedAt), UpdatedAt: utc(e.UpdatedAt)}
}

// Limits of an endpoint's fields.
const (
	maxURLLength         = 2048
	maxDescriptionLength = 1024
	maxEventTypes        = 256
	maxNameLength        = 256
)

type endpointIn struct {
	URL         string   `json:"url" minLength:"1" maxLength:"2048" doc:"https:// (http:// only where private networks are allowed)"`
	Description string   `json:"description,omitempty" maxLength:"1024"`
	EventTypes  []string `json:"event_types,omitempty" maxItems:"256" doc:"null or absent: every event type"`
	Disabled    bool     `json:"disabled,omitempty"`
	Secret      string   `json:"secret,omitempty" maxLength:"128" doc:"whsec_ and the base64 of 24 to 64 bytes; generated when absent"`
}

type endpointPatch struct {
	URL         *string            `json:"url,omitempty" minLength:"1" maxLength:"2048"`
	Description *string            `json:"description,omitempty" maxLength:"1024"`
	EventTypes  optional[[]string] `json:"event_types,omitempty" doc:"null: every event type"`
	Disabled    *bool              `json:"disabled,omitempty"`
}

type endpointPath struct {
	AppID      string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	EndpointID string `path:"endpoint_id" maxLength:"64"`
}

type createEndpointInput struct {
	AppID string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Body  endpointIn
}

type patchEndpointInput struct {
	AppID      string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	EndpointID string `path:"endpoint_id" maxLength:"64"`
	Body       endpointPatch
}

type rotateSecretInput struct {
	AppID      string      `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	EndpointID string      `path:"endpoint_id" maxLength:"64"`
	Body       *secretBody `required:"false"`
}

type secretBody struct {
	Secret string `json:"secret" maxLength:"128" doc:"whsec_ and the base64 of 24 to 64 bytes"`
}

type listEndpointsInput struct {
	AppID  string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Limit  int    `query:"limit" minimum:"1" maximum:"250" default:"50" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

type endpointOutput struct {
	Body endpointOut
}

type createdEndpointOutput struct {
	Location string `header:"Location"`
	Body     endpointOut
}

type secretOutput struct {
	Body secretBody
}

func (s *server) registerEndpoints() {
	const base = "/applications/{app_id}/endpoints"
	huma.Register(s.api, operation(http.MethodPost, base, "create-endpoint", "Create an endpoint", http.StatusCreated,
		http.StatusNotFound, http.StatusConflict, http.StatusBadGateway), s.createEndpoint)
	huma.Register(s.api, operation(http.MethodGet, base, "list-endpoints", "List an application's endpoints", http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *listEndpointsInput) (*listOutput[endpointOut], error) {
			if _, err := authorize(ctx, readApp, in.AppID); err != nil {
				return nil, err
			}
			page, err := s.Store.ListEndpoints(ctx, in.AppID, pageOf(in.Limit, in.Cursor))
			if err != nil {
				return nil, s.storeError(ctx, err, "application", in.AppID)
			}
			return listOf(page, endpointOutOf), nil
		})
	huma.Register(s.api, operation(http.MethodGet, base+"/{endpoint_id}", "get-endpoint", "Get an endpoint", http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *endpointPath) (*endpointOutput, error) {
			if _, err := authorize(ctx, readApp, in.AppID); err != nil {
				return nil, err
			}
			e, err := s.Store.GetEndpoint(ctx, in.AppID, in.EndpointID)
			if err != nil {
				return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
			}
			return &endpointOutput{Body: endpointOutOf(e)}, nil
		})
	huma.Register(s.api, operation(http.MethodPatch, base+"/{endpoint_id}", "update-endpoint", "Change an endpoint", http.StatusOK,
		http.StatusNotFound, http.StatusBadGateway), s.updateEndpoint)
	huma.Register(s.api, operation(http.MethodDelete, base+"/{endpoint_id}", "delete-endpoint", "Delete an endpoint", http.StatusNoContent,
		http.StatusNotFound, http.StatusBadGateway), s.deleteEndpoint)
	huma.Register(s.api, operation(http.MethodGet, base+"/{endpoint_id}/secret", "get-endpoint-secret", "Get an endpoint's signing secret", http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *endpointPath) (*secretOutput, error) {
			if _, err := authorize(ctx, changeApp, in.AppID); err != nil {
				return nil, err
			}
			e, err := s.Store.GetEndpoint(ctx, in.AppID, in.EndpointID)
			if err != nil {
				return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
			}
			return &secretOutput{Body: secretBody{Secret: e.Secret}}, nil
		})
	huma.Register(s.api, operation(http.MethodPost, base+"/{endpoint_id}/secret/rotate", "rotate-endpoint-secret",
		"Rotate an endpoint's signing secret; the previous one keeps signing for 24 hours", http.StatusNoContent,
		http.StatusNotFound, http.StatusBadGateway), s.rotateSecret)
}

func (s *server) createEndpoint(ctx context.Context, in *createEndpointInput) (*createdEndpointOutput, error) {
	if _, err := authorize(ctx, changeApp, in.AppID); err != nil {
		return nil, err
	}
	ep := store.Endpoint{ID: store.NewEndpointID(), ApplicationID: in.AppID, URL: in.Body.URL, Description: in.Body.Description,
		EventTypes: in.Body.EventTypes, Disabled: in.Body.Disabled, Secret: in.Body.Secret}
	errs := s.checkEndpoint(ctx, ep)
	if ep.Secret != "" {
		errs = append(errs, checkSecret("secret", ep.Secret)...)
	} else {
		ep.Secret = store.NewEndpointSecret()
	}
	if len(errs) > 0 {
		return nil, invalid(ctx, errs...)
	}
	if _, err := s.Store.GetApplication(ctx, in.AppID); err != nil {
		return nil, s.storeError(ctx, err, "application", in.AppID)
	}
	if err := s.mirrorEndpoint(ctx, ep); err != nil {
		return nil, err
	}
	created, err := s.Store.CreateEndpoint(ctx, ep)
	if err != nil {
		s.unmirrorEndpoint(ctx, ep)
		return nil, s.storeError(ctx, err, "application", in.AppID)
	}
	s.synced(ctx)
	return &createdEndpointOutput{Location: BasePath + "/applications/" + in.AppID + "/endpoints/" + created.ID,
		Body: endpointOutOf(created)}, nil
}

func (s *server) updateEndpoint(ctx context.Context, in *patchEndpointInput) (*endpointOutput, error) {
	if _, err := authorize(ctx, changeApp, in.AppID); err != nil {
		return nil, err
	}
	ep, err := s.Store.GetEndpoint(ctx, in.AppID, in.EndpointID)
	if err != nil {
		return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
	}
	b := in.Body
	if b.URL != nil {
		ep.URL = *b.URL
	}
	if b.Description != nil {
		ep.Description = *b.Description
	}
	if b.EventTypes.Set {
		ep.EventTypes = nil
		if b.EventTypes.Value != nil {
			ep.EventTypes = *b.EventTypes.Value
		}
	}
	if b.Disabled != nil {
		ep.Disabled = *b.Disabled
	}
	if errs := s.checkEndpoint(ctx, ep); len(errs) > 0 {
		return nil, invalid(ctx, errs...)
	}
	if err := s.mirrorEndpoint(ctx, ep); err != nil {
		return nil, err
	}
	updated, err := s.Store.UpdateEndpoint(ctx, ep)
	if err != nil {
		return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
	}
	s.synced(ctx)
	return &endpointOutput{Body: endpointOutOf(updated)}, nil
}

func (s *server) deleteEndpoint(ctx context.Context, in *endpointPath) (*struct{}, error) {
	if _, err := authorize(ctx, changeApp, in.AppID); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetEndpoint(ctx, in.AppID, in.EndpointID); err != nil {
		return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
	}
	if s.Svix != nil {
		if err := s.Svix.DeleteEndpoint(ctx, in.AppID, in.EndpointID); err != nil {
			return nil, s.svixError(ctx, err)
		}
	}
	if err := s.Store.DeleteEndpoint(ctx, in.AppID, in.EndpointID); err != nil {
		return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
	}
	s.synced(ctx)
	return nil, nil
}

func (s *server) rotateSecret(ctx context.Context, in *rotateSecretInput) (*struct{}, error) {
	if _, err := authorize(ctx, changeApp, in.AppID); err != nil {
		return nil, err
	}
	secret := ""
	if in.Body != nil {
		secret = in.Body.Secret
	}
	if secret != "" {
		if errs := checkSecret("secret", secret); len(errs) > 0 {
			return nil, invalid(ctx, errs...)
		}
	} else {
		secret = store.NewEndpointSecret()
	}
	if _, err := s.Store.GetEndpoint(ctx, in.AppID, in.EndpointID); err != nil {
		return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
	}
	if s.Svix != nil {
		if err := s.Svix.RotateEndpointSecret(ctx, in.AppID, in.EndpointID, secret); err != nil {
			return nil, s.svixError(ctx, err)
		}
	}
	if _, err := s.Store.RotateEndpointSecret(ctx, in.AppID, in.EndpointID, secret); err != nil {
		return nil, s.storeError(ctx, err, "endpoint", in.EndpointID)
	}
	s.synced(ctx)
	return nil, nil
}

func (s *server) mirrorEndpoint(ctx context.Context, ep store.Endpoint) error {
	if s.Svix == nil {
		return nil
	}
	err := s.Svix.UpsertEndpoint(ctx, ep.ApplicationID, svix.MirrorEndpoint{ID: ep.ID, URL: ep.URL, Description: ep.Description,
		EventTypes: ep.EventTypes, Disabled: ep.Disabled, Secret: ep.Secret})
	if err != nil {
		return s.svixError(ctx, err)
	}
	return nil
}

// unmirrorEndpoint deletes from Svix an endpoint that Gwook could not store.
func (s *server) unmirrorEndpoint(ctx context.Context, ep store.Endpoint) {
	if s.Svix == nil {
		return
	}
	if err := s.Svix.DeleteEndpoint(context.WithoutCancel(ctx), ep.ApplicationID, ep.ID); err != nil {
		s.Logger.ErrorContext(ctx, "an endpoint Gwook could not store stays in Svix: delete it there",
			"application", ep.ApplicationID, "endpoint_id", ep.ID, "error", err.Error())
	}
}

// eventTypeName is what an event type name is made of.
var eventTypeName = regexp.MustCompile(idPattern)

// checkEndpoint returns every rule ep breaks beyond the schema: its URL's
// (netguard) and its event types' names.
func (s *server) checkEndpoint(ctx context.Context, ep store.Endpoint) []event.FieldError {
	var errs []event.FieldError
	if len(ep.URL) > maxURLLength {
		errs = append(errs, fieldErr("url", "max_length", "at most 2048 characters"))
	} else if err := s.URLs.CheckURL(ctx, ep.URL); err != nil {
		rule := "url"
		if errors.Is(err, netguard.ErrForbiddenAddress) {
			rule = "public_address"
		}
		errs = append(errs, fieldErr("url", rule, err.Error()))
	}
	for i, name := range ep.EventTypes {
		if len(name) > maxNameLength || !eventTypeName.MatchString(name) {
			errs = append(errs, fieldErr("event_types["+strconv.Itoa(i)+"]", "pattern",
				"an event type name is 1 to 256 of [a-zA-Z0-9-_.]"))
		}
	}
	return errs
}

// checkSecret checks a secret the caller brings: whsec_ and the standard
// base64 of 24 to 64 bytes.
func checkSecret(field, secret string) []event.FieldError {
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return []event.FieldError{fieldErr(field, "format", "a secret starts with whsec_")}
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return []event.FieldError{fieldErr(field, "format", "after whsec_ comes the standard base64 of 24 to 64 random bytes")}
	}
	return nil
}

// optional is a field of a PATCH body that tells absent (Set false: leave
// it as it is) from null (Set true, Value nil).
type optional[T any] struct {
	Set   bool
	Value *T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// Schema is T's schema, which null also satisfies.
func (o optional[T]) Schema(r huma.Registry) *huma.Schema {
	s := *r.Schema(reflect.TypeFor[T](), true, "")
	s.Nullable = true
	return &s
}
