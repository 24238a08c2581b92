package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gwook/gwook/internal/eventtype"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
)

// eventTypeBodyBytes bounds a request body of the event-type operations:
// a schema may be larger than the other resources.
const eventTypeBodyBytes = 256 << 10

// eventTypeOut is an event type as the API shows it.
type eventTypeOut struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema" doc:"a JSON Schema (draft 2020-12) of the events' data; null: data is not checked"`
	Archived    bool            `json:"archived" doc:"events of an archived type are dropped as filtered"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

func eventTypeOutOf(et store.EventType) eventTypeOut {
	return eventTypeOut{Name: et.Name, Description: et.Description, Schema: et.Schema, Archived: et.Archived,
		CreatedAt: utc(et.CreatedAt), UpdatedAt: utc(et.UpdatedAt)}
}

type eventTypeIn struct {
	Name        string          `json:"name" minLength:"1" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$" doc:"the events' type"`
	Description string          `json:"description,omitempty" maxLength:"4096"`
	Schema      json.RawMessage `json:"schema,omitempty" doc:"a JSON Schema (draft 2020-12) of the events' data; null or absent: data is not checked"`
	Archived    bool            `json:"archived,omitempty" doc:"events of an archived type are dropped as filtered"`
}

type eventTypePatch struct {
	Description *string         `json:"description,omitempty" maxLength:"4096"`
	Schema      json.RawMessage `json:"schema,omitempty" doc:"replaces the schema; null removes it; absent keeps it"`
	Archived    *bool           `json:"archived,omitempty"`
}

type eventTypePath struct {
	Name string `path:"name" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
}

type createEventTypeInput struct {
	Body eventTypeIn
}

type patchEventTypeInput struct {
	Name string `path:"name" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Body eventTypePatch
}

type eventTypeOutput struct {
	Body eventTypeOut
}

type createdEventTypeOutput struct {
	Location string `header:"Location"`
	Body     eventTypeOut
}

type listEventTypesInput struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"250" default:"50" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

// eventTypeOperation is operation with the larger body that a schema needs.
func eventTypeOperation(method, path, id, summary string, status int, errs ...int) huma.Operation {
	op := operation(method, path, id, summary, status, errs...)
	op.MaxBodyBytes = eventTypeBodyBytes
	return op
}

func (s *server) registerEventTypes() {
	huma.Register(s.api, eventTypeOperation(http.MethodPost, "/event-types", "create-event-type", "Add an event type to the catalogue",
		http.StatusCreated, http.StatusConflict, http.StatusBadGateway), s.createEventType)
	huma.Register(s.api, operation(http.MethodGet, "/event-types", "list-event-types", "List the catalogue of event types", http.StatusOK),
		func(ctx context.Context, in *listEventTypesInput) (*listOutput[eventTypeOut], error) {
			if _, err := authorize(ctx, readAll, ""); err != nil {
				return nil, err
			}
			page, err := s.Store.ListEventTypes(ctx, pageOf(in.Limit, in.Cursor))
			if err != nil {
				return nil, s.storeError(ctx, err, "event type", "")
			}
			return listOf(page, eventTypeOutOf), nil
		})
	huma.Register(s.api, operation(http.MethodGet, "/event-types/{name}", "get-event-type", "Get an event type", http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *eventTypePath) (*eventTypeOutput, error) {
			if _, err := authorize(ctx, readAll, ""); err != nil {
				return nil, err
			}
			et, err := s.Store.GetEventType(ctx, in.Name)
			if err != nil {
				return nil, s.storeError(ctx, err, "event type", in.Name)
			}
			return &eventTypeOutput{Body: eventTypeOutOf(et)}, nil
		})
	huma.Register(s.api, eventTypeOperation(http.MethodPatch, "/event-types/{name}", "update-event-type", "Change an event type",
		http.StatusOK, http.StatusNotFound, http.StatusBadGateway), s.updateEventType)
	huma.Register(s.api, operation(http.MethodDelete, "/event-types/{name}", "delete-event-type",
		"Remove an event type from the catalogue; its events are open again", http.StatusNoContent, http.StatusNotFound, http.StatusBadGateway),
		func(ctx context.Context, in *eventTypePath) (*struct{}, error) {
			if _, err := authorize(ctx, adminOnly, ""); err != nil {
				return nil, err
			}
			if _, err := s.Store.GetEventType(ctx, in.Name); err != nil {
				return nil, s.storeError(ctx, err, "event type", in.Name)
			}
			if s.Svix != nil {
				if err := s.Svix.DeleteEventType(ctx, in.Name); err != nil {
					return nil, s.svixError(ctx, err)
				}
			}
			if err := s.Store.DeleteEventType(ctx, in.Name); err != nil {
				return nil, s.storeError(ctx, err, "event type", in.Name)
			}
			s.synced(ctx)
			return nil, nil
		})
}

// checkSchema returns the schema to store (nil for none: absent or null),
// or a 400 listing every problem of a schema that is not a valid JSON
// Schema of draft 2020-12.
func checkSchema(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	if _, err := eventtype.Compile(raw); err != nil {
		var se *eventtype.SchemaError
		if errors.As(err, &se) {
			p := invalid(ctx, se.Problems...)
			p.Detail = "schema is not a valid JSON Schema (draft 2020-12): see errors"
			return nil, p
		}
		return nil, invalidField(ctx, "schema", "valid", err.Error())
	}
	return bytes.Clone(raw), nil
}

func (s *server) createEventType(ctx context.Context, in *createEventTypeInput) (*createdEventTypeOutput, error) {
	if _, err := authorize(ctx, adminOnly, ""); err != nil {
		return nil, err
	}
	schema, err := checkSchema(ctx, in.Body.Schema)
	if err != nil {
		return nil, err
	}
	et := store.EventType{Name: in.Body.Name, Description: in.Body.Description, Schema: schema, Archived: in.Body.Archived}
	// Refuse an existing name before Svix is asked to hold it.
	if _, err := s.Store.GetEventType(ctx, et.Name); err == nil {
		return nil, s.storeError(ctx, store.ErrConflict, "event type", et.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, s.storeError(ctx, err, "event type", et.Name)
	}
	if err := s.mirrorEventType(ctx, et); err != nil {
		return nil, err
	}
	created, err := s.Store.CreateEventType(ctx, et)
	if err != nil {
		return nil, s.storeError(ctx, err, "event type", in.Body.Name)
	}
	s.synced(ctx)
	return &createdEventTypeOutput{Location: BasePath + "/event-types/" + created.Name, Body: eventTypeOutOf(created)}, nil
}

func (s *server) updateEventType(ctx context.Context, in *patchEventTypeInput) (*eventTypeOutput, error) {
	if _, err := authorize(ctx, adminOnly, ""); err != nil {
		return nil, err
	}
	et, err := s.Store.GetEventType(ctx, in.Name)
	if err != nil {
		return nil, s.storeError(ctx, err, "event type", in.Name)
	}
	if in.Body.Description != nil {
		et.Description = *in.Body.Description
	}
	if in.Body.Schema != nil {
		if et.Schema, err = checkSchema(ctx, in.Body.Schema); err != nil {
			return nil, err
		}
	}
	if in.Body.Archived != nil {
		et.Archived = *in.Body.Archived
	}
	if err := s.mirrorEventType(ctx, et); err != nil {
		return nil, err
	}
	updated, err := s.Store.UpdateEventType(ctx, et)
	if err != nil {
		return nil, s.storeError(ctx, err, "event type", in.Name)
	}
	s.synced(ctx)
	return &eventTypeOutput{Body: eventTypeOutOf(updated)}, nil
}

// mirrorEventType makes Svix hold et, with the Svix backend.
func (s *server) mirrorEventType(ctx context.Context, et store.EventType) error {
	if s.Svix == nil {
		return nil
	}
	err := s.Svix.UpsertEventType(ctx, svix.MirrorEventType{Name: et.Name, Description: et.Description, Schema: et.Schema, Archived: et.Archived})
	if err != nil {
		return s.svixError(ctx, err)
	}
	return nil
}
