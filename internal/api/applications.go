package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/internal/svix"
)

// applicationOut is an application as the API shows it.
type applicationOut struct {
	ID        string            `json:"id" doc:"The user_id of the customer's events"`
	Name      string            `json:"name"`
	Metadata  map[string]string `json:"metadata"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

func applicationOutOf(a store.Application) applicationOut {
	return applicationOut{ID: a.ID, Name: a.Name, Metadata: a.Metadata, CreatedAt: utc(a.CreatedAt), UpdatedAt: utc(a.UpdatedAt)}
}

// idPattern is what application ids (user ids) and event type names are
// made of.
const idPattern = `^[a-zA-Z0-9\-_.]+$`

type applicationIn struct {
	ID       string            `json:"id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$" doc:"The user_id of the customer's events"`
	Name     string            `json:"name" minLength:"1" maxLength:"256"`
	Metadata map[string]string `json:"metadata,omitempty" maxProperties:"64"`
}

type applicationPatch struct {
	Name     *string            `json:"name,omitempty" minLength:"1" maxLength:"256"`
	Metadata *map[string]string `json:"metadata,omitempty" maxProperties:"64" doc:"Replaces the metadata"`
}

type appPath struct {
	AppID string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
}

type createApplicationInput struct {
	Body applicationIn
}

type patchApplicationInput struct {
	AppID string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Body  applicationPatch
}

type applicationOutput struct {
	Body applicationOut
}

type createdApplicationOutput struct {
	Location string `header:"Location"`
	Body     applicationOut
}

type listApplicationsInput struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"250" default:"50" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

func (s *server) registerApplications() {
	huma.Register(s.api, operation(http.MethodPost, "/applications", "create-application", "Create an application", http.StatusCreated, http.StatusConflict, http.StatusBadGateway),
		s.createApplication)
	huma.Register(s.api, operation(http.MethodGet, "/applications", "list-applications", "List the applications", http.StatusOK),
		s.listApplications)
	huma.Register(s.api, operation(http.MethodGet, "/applications/{app_id}", "get-application", "Get an application", http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *appPath) (*applicationOutput, error) {
			if _, err := authorize(ctx, readApp, in.AppID); err != nil {
				return nil, err
			}
			a, err := s.Store.GetApplication(ctx, in.AppID)
			if err != nil {
				return nil, s.storeError(ctx, err, "application", in.AppID)
			}
			return &applicationOutput{Body: applicationOutOf(a)}, nil
		})
	huma.Register(s.api, operation(http.MethodPatch, "/applications/{app_id}", "update-application", "Change an application", http.StatusOK, http.StatusNotFound, http.StatusBadGateway),
		s.updateApplication)
	huma.Register(s.api, operation(http.MethodDelete, "/applications/{app_id}", "delete-application",
		"Delete an application with its endpoints and tokens", http.StatusNoContent, http.StatusNotFound, http.StatusBadGateway),
		s.deleteApplication)
}

func (s *server) createApplication(ctx context.Context, in *createApplicationInput) (*createdApplicationOutput, error) {
	if _, err := authorize(ctx, adminOnly, ""); err != nil {
		return nil, err
	}
	a := store.Application{ID: in.Body.ID, Name: in.Body.Name, Metadata: in.Body.Metadata}
	// Refuse an existing id before Svix is asked to adopt its uid.
	if _, err := s.Store.GetApplication(ctx, a.ID); err == nil {
		return nil, s.storeError(ctx, store.ErrConflict, "application", a.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, s.storeError(ctx, err, "application", a.ID)
	}
	if err := s.mirrorApplication(ctx, a); err != nil {
		return nil, err
	}
	created, err := s.Store.CreateApplication(ctx, a)
	if err != nil {
		return nil, s.storeError(ctx, err, "application", a.ID)
	}
	s.synced(ctx)
	return &createdApplicationOutput{Location: BasePath + "/applications/" + created.ID, Body: applicationOutOf(created)}, nil
}

func (s *server) mirrorApplication(ctx context.Context, a store.Application) error {
	if s.Svix == nil {
		return nil
	}
	if err := s.Svix.UpsertApplication(ctx, svix.MirrorApplication{ID: a.ID, Name: a.Name, Metadata: a.Metadata}); err != nil {
		return s.svixError(ctx, err)
	}
	return nil
}

func (s *server) listApplications(ctx context.Context, in *listApplicationsInput) (*listOutput[applicationOut], error) {
	t, err := authorize(ctx, readAll, "")
	if err != nil && t.ApplicationID == "" {
		return nil, err
	}
	if t.ApplicationID != "" {
		// A restricted token sees its own application only.
		if _, err := authorize(ctx, readApp, t.ApplicationID); err != nil {
			return nil, err
		}
		a, err := s.Store.GetApplication(ctx, t.ApplicationID)
		if err != nil {
			return nil, s.storeError(ctx, err, "application", t.ApplicationID)
		}
		var page store.Page[store.Application]
		if in.Cursor == "" {
			page.Items = []store.Application{a}
		}
		return listOf(page, applicationOutOf), nil
	}
	page, err := s.Store.ListApplications(ctx, pageOf(in.Limit, in.Cursor))
	if err != nil {
		return nil, s.storeError(ctx, err, "application", "")
	}
	return listOf(page, applicationOutOf), nil
}

func (s *server) updateApplication(ctx context.Context, in *patchApplicationInput) (*applicationOutput, error) {
	if _, err := authorize(ctx, adminOnly, in.AppID); err != nil {
		return nil, err
	}
	a, err := s.Store.GetApplication(ctx, in.AppID)
	if err != nil {
		return nil, s.storeError(ctx, err, "application", in.AppID)
	}
	if in.Body.Name != nil {
		a.Name = *in.Body.Name
	}
	if in.Body.Metadata != nil {
		a.Metadata = *in.Body.Metadata
	}
	if err := s.mirrorApplication(ctx, a); err != nil {
		return nil, err
	}
	updated, err := s.Store.UpdateApplication(ctx, a)
	if err != nil {
		return nil, s.storeError(ctx, err, "application", in.AppID)
	}
	s.synced(ctx)
	return &applicationOutput{Body: applicationOutOf(updated)}, nil
}

func (s *server) deleteApplication(ctx context.Context, in *appPath) (*struct{}, error) {
	if _, err := authorize(ctx, adminOnly, in.AppID); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetApplication(ctx, in.AppID); err != nil {
		return nil, s.storeError(ctx, err, "application", in.AppID)
	}
	if s.Svix != nil {
		if err := s.Svix.DeleteApplication(ctx, in.AppID); err != nil {
			return nil, s.svixError(ctx, err)
		}
	}
	if err := s.Store.DeleteApplication(ctx, in.AppID); err != nil {
		return nil, s.storeError(ctx, err, "application", in.AppID)
	}
	s.synced(ctx)
	return nil, nil
}
