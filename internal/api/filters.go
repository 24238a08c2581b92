package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/store"
)

// filterOut is an application's filter as the API shows it.
type filterOut struct {
	ApplicationID string    `json:"application_id"`
	IncludeTypes  []string  `json:"include_types" doc:"null: every type; prefix.* matches a prefix"`
	ExcludeTypes  []string  `json:"exclude_types" doc:"null: none"`
	Expression    *string   `json:"expression" doc:"a CEL expression over event; null: none"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func filterOutOf(f store.Filter) filterOut {
	out := filterOut{ApplicationID: f.ApplicationID, IncludeTypes: f.IncludeTypes, ExcludeTypes: f.ExcludeTypes,
		CreatedAt: utc(f.CreatedAt), UpdatedAt: utc(f.UpdatedAt)}
	if f.Expression != "" {
		out.Expression = &f.Expression
	}
	return out
}

// filterIn is the body of PUT .../filter; an absent field is null.
type filterIn struct {
	IncludeTypes []string `json:"include_types,omitempty" maxItems:"100" doc:"event types to deliver: exact, or prefix.*; null or absent: every type; []: none"`
	ExcludeTypes []string `json:"exclude_types,omitempty" maxItems:"100" doc:"event types never delivered, same patterns"`
	Expression   *string  `json:"expression,omitempty" maxLength:"4096" doc:"CEL over event (event.id, .type, .source, .project, .user_id, .time, .data); delivered only when true"`
}

func (in filterIn) spec() filter.Spec {
	spec := filter.Spec{IncludeTypes: in.IncludeTypes, ExcludeTypes: in.ExcludeTypes}
	if in.Expression != nil {
		spec.Expression = *in.Expression
	}
	return spec
}

type putFilterInput struct {
	AppID string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Body  filterIn
}

type filterOutput struct {
	Body filterOut
}

type filterTestIn struct {
	Event json.RawMessage `json:"event" doc:"an event as POST /notifications takes it; its user_id need not be this application's"`
	// Filter tries a filter before it is stored.
	Filter *filterIn `json:"filter,omitempty" doc:"a filter to try instead of the application's"`
}

type filterTestInput struct {
	AppID string `path:"app_id" maxLength:"256" pattern:"^[a-zA-Z0-9\\-_.]+$"`
	Body  filterTestIn
}

type filterTestOut struct {
	Allowed bool    `json:"allowed"`
	Reason  string  `json:"reason"`
	Rule    *string `json:"rule" enum:"archived_type,global_types,include_types,exclude_types,expression,expression_error,invalid_filter" doc:"the rule that dropped the event; null when it would be delivered"`
}

type filterTestOutput struct {
	Body filterTestOut
}

func (s *server) registerFilters() {
	const path = "/applications/{app_id}/filter"
	huma.Register(s.api, operation(http.MethodGet, path, "get-filter", "Get an application's filter", http.StatusOK, http.StatusNotFound),
		func(ctx context.Context, in *appPath) (*filterOutput, error) {
			if _, err := authorize(ctx, readApp, in.AppID); err != nil {
				return nil, err
			}
			f, err := s.Store.GetFilter(ctx, in.AppID)
			if err != nil {
				return nil, s.filterError(ctx, err, in.AppID)
			}
			return &filterOutput{Body: filterOutOf(f)}, nil
		})
	huma.Register(s.api, operation(http.MethodPut, path, "put-filter",
		"Set an application's filter, replacing the one it had", http.StatusOK, http.StatusNotFound),
		s.putFilter)
	huma.Register(s.api, operation(http.MethodDelete, path, "delete-filter", "Delete an application's filter: every event is delivered",
		http.StatusNoContent, http.StatusNotFound),
		func(ctx context.Context, in *appPath) (*struct{}, error) {
			if _, err := authorize(ctx, changeApp, in.AppID); err != nil {
				return nil, err
			}
			if err := s.Store.DeleteFilter(ctx, in.AppID); err != nil {
				return nil, s.filterError(ctx, err, in.AppID)
			}
			s.synced(ctx)
			return nil, nil
		})
	huma.Register(s.api, operation(http.MethodPost, path+"/test", "test-filter",
		"Say whether an event would be delivered to the application, and which rule decided", http.StatusOK, http.StatusNotFound),
		s.testFilter)
}

// putFilter sets the application's filter. It answers 200 whether the
// filter is new or replaces one: API.md's PUT changes, and the filter is
// part of its application rather than a resource created on its own.
func (s *server) putFilter(ctx context.Context, in *putFilterInput) (*filterOutput, error) {
	if _, err := authorize(ctx, changeApp, in.AppID); err != nil {
		return nil, err
	}
	spec := in.Body.spec()
	if _, err := filter.Compile(spec); err != nil {
		return nil, compileProblem(ctx, "", err)
	}
	f, _, err := s.Store.PutFilter(ctx, store.Filter{ApplicationID: in.AppID,
		IncludeTypes: spec.IncludeTypes, ExcludeTypes: spec.ExcludeTypes, Expression: spec.Expression})
	if err != nil {
		return nil, s.storeError(ctx, err, "application", in.AppID)
	}
	s.synced(ctx)
	return &filterOutput{Body: filterOutOf(f)}, nil
}

func (s *server) testFilter(ctx context.Context, in *filterTestInput) (*filterTestOutput, error) {
	if _, err := authorize(ctx, readApp, in.AppID); err != nil {
		return nil, err
	}
	if !s.Catalog.HasApplication(in.AppID) {
		return nil, notFound(ctx, "application", in.AppID)
	}
	n, err := event.Decode(in.Body.Event)
	if err != nil {
		var bad *event.InvalidError
		if errors.As(err, &bad) {
			for i := range bad.Fields {
				bad.Fields[i].Field = joinField("event", bad.Fields[i].Field)
			}
			return nil, invalid(ctx, bad.Fields...)
		}
		return nil, invalidField(ctx, "event", "valid", err.Error())
	}
	var d filter.Decision
	if in.Body.Filter != nil {
		f, err := filter.Compile(in.Body.Filter.spec())
		if err != nil {
			return nil, compileProblem(ctx, "filter.", err)
		}
		d = s.Pipeline.DecideWith(f, &n)
	} else {
		d = s.Pipeline.Decide(in.AppID, &n)
	}
	out := filterTestOut{Allowed: d.Allowed, Reason: d.Reason}
	if !d.Allowed {
		rule := string(d.Rule)
		out.Rule = &rule
	}
	return &filterTestOutput{Body: out}, nil
}

// filterError answers an error of the store about an application's filter:
// a 404 names the application when it is missing, else its filter.
func (s *server) filterError(ctx context.Context, err error, appID string) error {
	if errors.Is(err, store.ErrNotFound) {
		if !s.Catalog.HasApplication(appID) {
			return notFound(ctx, "application", appID)
		}
		return newProblem(ctx, http.StatusNotFound, "application "+quote(appID)+" has no filter: every event is delivered")
	}
	return s.storeError(ctx, err, "application", appID)
}

// compileProblem is the 400 for a filter that does not compile, each
// problem's field under prefix.
func compileProblem(ctx context.Context, prefix string, err error) error {
	var ce *filter.CompileError
	if !errors.As(err, &ce) {
		return invalidField(ctx, prefix+"expression", "valid", err.Error())
	}
	errs := make([]event.FieldError, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		errs = append(errs, fieldErr(prefix+p.Field, p.Rule, p.Detail))
	}
	return invalid(ctx, errs...)
}
