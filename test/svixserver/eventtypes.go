package svixserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// eventTypeState holds what Svix keeps per event type.
type eventTypeState struct {
	name         string
	description  string
	archived     bool // "deleted" without expunge
	deprecated   bool
	schemas      json.RawMessage // a JSON object; nil when none
	groupName    string          // "" when none
	featureFlags []string        // nil when none
	createdAt    time.Time
	updatedAt    time.Time
}

// EventType is what the server holds for an event type.
type EventType struct {
	Name        string
	Description string
	// Archived is true for an event type deleted without expunge:
	// endpoints cannot filter on it until it is created again.
	Archived     bool
	Deprecated   bool
	Schemas      json.RawMessage // the versioned JSON schemas; nil when none
	GroupName    string          // "" when none
	FeatureFlags []string        // nil when none
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// EventType returns the event type called name, archived or not, as the
// server holds it now.
func (s *Server) EventType(name string) (EventType, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	et, ok := s.eventTypes[name]
	if !ok {
		return EventType{}, false
	}
	return EventType{Name: et.name, Description: et.description, Archived: et.archived, Deprecated: et.deprecated,
		Schemas: bytes.Clone(et.schemas), GroupName: et.groupName, FeatureFlags: slices.Clone(et.featureFlags),
		CreatedAt: et.createdAt, UpdatedAt: et.updatedAt}, true
}

// eventTypeIn is Svix's EventTypeIn, and without Name its EventTypeUpdate.
type eventTypeIn struct {
	Name         string          `json:"name"`
	Description  *string         `json:"description"`
	Archived     bool            `json:"archived"`
	Deprecated   bool            `json:"deprecated"`
	Schemas      json.RawMessage `json:"schemas"`
	GroupName    *string         `json:"groupName"`
	FeatureFlags []string        `json:"featureFlags"`
	FeatureFlag  *string         `json:"featureFlag"` // deprecated: one feature flag
}

// eventTypeOut is Svix's EventTypeOut.
type eventTypeOut struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Archived     bool            `json:"archived"`
	Deprecated   bool            `json:"deprecated"`
	Schemas      json.RawMessage `json:"schemas,omitempty"`
	GroupName    *string         `json:"groupName,omitempty"`
	FeatureFlags []string        `json:"featureFlags,omitempty"`
	CreatedAt    time.Time       `json:"createdAt"`
	UpdatedAt    time.Time       `json:"updatedAt"`
}

// listResponseEventTypeOut is Svix's ListResponse_EventTypeOut_.
type listResponseEventTypeOut struct {
	Data         []eventTypeOut `json:"data"`
	Done         bool           `json:"done"`
	Iterator     *string        `json:"iterator"`
	PrevIterator *string        `json:"prevIterator,omitempty"`
}

// out returns et as Svix answers it, with its schemas when withContent.
// The caller must hold the server's lock.
func (et *eventTypeState) out(withContent bool) eventTypeOut {
	out := eventTypeOut{Name: et.name, Description: et.description, Archived: et.archived, Deprecated: et.deprecated,
		FeatureFlags: slices.Clone(et.featureFlags), CreatedAt: et.createdAt, UpdatedAt: et.updatedAt}
	if withContent {
		out.Schemas = bytes.Clone(et.schemas)
	}
	if et.groupName != "" {
		g := et.groupName
		out.GroupName = &g
	}
	return out
}

// set replaces every field of et that an EventTypeUpdate carries, as
// Svix's PUT, and its POST of an archived event type, do.
func (et *eventTypeState) set(in eventTypeIn, now time.Time) {
	et.description = *in.Description
	et.archived = in.Archived
	et.deprecated = in.Deprecated
	et.schemas = in.Schemas
	et.groupName = deref(in.GroupName)
	et.featureFlags = in.FeatureFlags
	if et.featureFlags == nil && in.FeatureFlag != nil {
		et.featureFlags = []string{*in.FeatureFlag}
	}
	et.updatedAt = now
}

// decodeEventTypeIn reads an EventTypeIn (withName) or EventTypeUpdate
// body and checks what Svix checks beyond the OpenAPI document; it answers
// 422 and returns false when the body is not acceptable.
func decodeEventTypeIn(w http.ResponseWriter, body []byte, withName bool) (eventTypeIn, bool) {
	var in eventTypeIn
	if err := json.Unmarshal(body, &in); err != nil {
		writeValidationError(w, []string{"body"}, err.Error())
		return eventTypeIn{}, false
	}
	if isJSONNull(in.Schemas) {
		in.Schemas = nil
	}
	switch {
	case withName && in.Name == "":
		writeValidationError(w, []string{"body", "name"}, "name must not be empty")
	case in.Description == nil:
		writeValidationError(w, []string{"body", "description"}, "description is required")
	case hasControlCharacters(*in.Description):
		writeValidationError(w, []string{"body", "description"}, "Control characters 0x00-0x08 not allowed.")
	case in.Schemas != nil && !isJSONObject(in.Schemas):
		writeValidationError(w, []string{"body", "schemas"}, "schemas must be an object")
	default:
		return in, true
	}
	return eventTypeIn{}, false
}

// hasControlCharacters reports whether text has a character Svix refuses
// in an event type's description: 0x00 to 0x08.
func hasControlCharacters(text string) bool {
	return strings.ContainsFunc(text, func(r rune) bool { return r <= 0x08 })
}

func isJSONNull(raw json.RawMessage) bool {
	return raw != nil && string(bytes.TrimSpace(raw)) == "null"
}

func isJSONObject(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// unknownEventTypes returns the names in filterTypes that name no event
// type, or an archived one, once each, in their order. The caller must
// hold s.mu.
func (s *Server) unknownEventTypes(filterTypes []string) []string {
	var unknown []string
	for _, name := range filterTypes {
		if et, ok := s.eventTypes[name]; (!ok || et.archived) && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	return unknown
}

// writeUnknownEventTypes writes Svix's 422 answer to an endpoint whose
// filterTypes name event types it does not have.
func writeUnknownEventTypes(w http.ResponseWriter, names []string) {
	writeValidationError(w, []string{"body", "filterTypes"}, "The following event types don't exist: "+strings.Join(names, ", "))
}

// createEventType implements POST /api/v1/event-type. Like Svix, it
// answers 409 when an event type with the name exists, and when that one
// is archived it unarchives it instead, replacing its description, schemas
// and the rest with the body's (201).
func (s *Server) createEventType(w http.ResponseWriter, body []byte) {
	in, ok := decodeEventTypeIn(w, body, true)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	et := s.eventTypes[in.Name]
	switch {
	case et == nil:
		et = &eventTypeState{name: in.Name, createdAt: now}
		s.eventTypes[in.Name] = et
	case !et.archived:
		writeError(w, http.StatusConflict, "event_type_exists", "An event_type with this name already exists", "")
		return
	}
	et.set(in, now)
	writeJSONValue(w, http.StatusCreated, et.out(true))
}

// getEventType implements GET /api/v1/event-type/{event_type_name}, which
// shows archived event types too.
func (s *Server) getEventType(w http.ResponseWriter, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	et := s.eventTypes[name]
	if et == nil {
		writeNotFound(w)
		return
	}
	writeJSONValue(w, http.StatusOK, et.out(true))
}

// listEventTypes implements GET /api/v1/event-type as Svix does: event
// types in the order of their names, without the archived ones unless
// include_archived=true and without their schemas unless
// with_content=true, limit at a time (50 by default). The iterator is the
// last name of the page; a prevIterator, "-" and the first name, pages
// back.
func (s *Server) listEventTypes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultListLimit
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		limit = n
	}
	includeArchived, _ := strconv.ParseBool(q.Get("include_archived"))
	withContent, _ := strconv.ParseBool(q.Get("with_content"))
	iterator := q.Get("iterator")
	before, backwards := strings.CutPrefix(iterator, "-")

	s.mu.Lock()
	var all []eventTypeOut
	for _, et := range s.eventTypes {
		if includeArchived || !et.archived {
			all = append(all, et.out(withContent))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(x, y eventTypeOut) int { return strings.Compare(x.Name, y.Name) })

	var page []eventTypeOut
	done := true
	if backwards {
		end, _ := slices.BinarySearchFunc(all, before, func(e eventTypeOut, name string) int { return strings.Compare(e.Name, name) })
		start := max(0, end-limit)
		page, done = all[start:end], start == 0
	} else {
		start := 0
		if iterator != "" {
			start, _ = slices.BinarySearchFunc(all, iterator, func(e eventTypeOut, name string) int { return strings.Compare(e.Name, name) })
			if start < len(all) && all[start].Name == iterator {
				start++
			}
		}
		end := min(len(all), start+limit)
		page, done = all[start:end], end == len(all)
	}
	out := listResponseEventTypeOut{Data: page, Done: done}
	if out.Data == nil {
		out.Data = []eventTypeOut{}
	}
	if len(page) > 0 {
		next, prev := page[len(page)-1].Name, "-"+page[0].Name
		out.Iterator, out.PrevIterator = &next, &prev
	}
	writeJSONValue(w, http.StatusOK, out)
}

// updateEventType implements PUT /api/v1/event-type/{event_type_name},
// which, like Svix's, replaces every field of the event type but its name
// (200), resetting what the body leaves out, or creates it when there is
// none with that name (201).
func (s *Server) updateEventType(w http.ResponseWriter, name string, body []byte) {
	in, ok := decodeEventTypeIn(w, body, false)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	status := http.StatusOK
	et := s.eventTypes[name]
	if et == nil {
		et = &eventTypeState{name: name, createdAt: now}
		s.eventTypes[name] = et
		status = http.StatusCreated
	}
	et.set(in, now)
	writeJSONValue(w, status, et.out(true))
}

// eventTypePatch is Svix's EventTypePatch: a field left out is left as it
// is, and a nullable one that is null is cleared. Absent and null differ
// only for the pointers to json.RawMessage.
type eventTypePatch struct {
	Description  *string          `json:"description"`
	Archived     *bool            `json:"archived"`
	Deprecated   *bool            `json:"deprecated"`
	Schemas      *json.RawMessage `json:"schemas"`
	GroupName    *json.RawMessage `json:"groupName"`
	FeatureFlags *json.RawMessage `json:"featureFlags"`
	FeatureFlag  *json.RawMessage `json:"featureFlag"` // deprecated: one feature flag
}

// patchEventType implements PATCH /api/v1/event-type/{event_type_name}:
// it changes only the fields the body names (200).
func (s *Server) patchEventType(w http.ResponseWriter, name string, body []byte) {
	var in eventTypePatch
	if err := json.Unmarshal(body, &in); err != nil {
		writeValidationError(w, []string{"body"}, err.Error())
		return
	}
	var (
		groupName    *string
		featureFlags []string
		featureFlag  *string
	)
	if in.GroupName != nil && json.Unmarshal(*in.GroupName, &groupName) != nil {
		writeValidationError(w, []string{"body", "groupName"}, "groupName must be a string or null")
		return
	}
	if in.FeatureFlags != nil && json.Unmarshal(*in.FeatureFlags, &featureFlags) != nil {
		writeValidationError(w, []string{"body", "featureFlags"}, "featureFlags must be a list of strings or null")
		return
	}
	if in.FeatureFlag != nil && json.Unmarshal(*in.FeatureFlag, &featureFlag) != nil {
		writeValidationError(w, []string{"body", "featureFlag"}, "featureFlag must be a string or null")
		return
	}
	if in.Description != nil && hasControlCharacters(*in.Description) {
		writeValidationError(w, []string{"body", "description"}, "Control characters 0x00-0x08 not allowed.")
		return
	}
	if in.Schemas != nil && !isJSONNull(*in.Schemas) && !isJSONObject(*in.Schemas) {
		writeValidationError(w, []string{"body", "schemas"}, "schemas must be an object or null")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	et := s.eventTypes[name]
	if et == nil {
		writeNotFound(w)
		return
	}
	if in.Description != nil {
		et.description = *in.Description
	}
	if in.Archived != nil {
		et.archived = *in.Archived
	}
	if in.Deprecated != nil {
		et.deprecated = *in.Deprecated
	}
	if in.Schemas != nil {
		et.schemas = nil
		if !isJSONNull(*in.Schemas) {
			et.schemas = *in.Schemas
		}
	}
	if in.GroupName != nil {
		et.groupName = deref(groupName)
	}
	if in.FeatureFlags != nil {
		et.featureFlags = featureFlags
	}
	if in.FeatureFlag != nil && in.FeatureFlags == nil {
		et.featureFlags = nil
		if featureFlag != nil {
			et.featureFlags = []string{*featureFlag}
		}
	}
	et.updatedAt = time.Now().UTC()
	writeJSONValue(w, http.StatusOK, et.out(true))
}

// deleteEventType implements DELETE /api/v1/event-type/{event_type_name}
// as Svix does: it archives the event type, so that endpoints can no
// longer filter on it, or with expunge=true forgets it altogether (204).
func (s *Server) deleteEventType(w http.ResponseWriter, r *http.Request, name string) {
	expunge := false
	if v := r.URL.Query().Get("expunge"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeValidationError(w, []string{"query", "expunge"}, "expunge must be a boolean")
			return
		}
		expunge = b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	et := s.eventTypes[name]
	if et == nil {
		writeNotFound(w)
		return
	}
	if expunge {
		delete(s.eventTypes, name)
	} else {
		et.archived = true
		et.updatedAt = time.Now().UTC()
	}
	w.WriteHeader(http.StatusNoContent)
}
