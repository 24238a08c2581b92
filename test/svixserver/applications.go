package svixserver

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// applicationIn is the part of Svix's ApplicationIn the server keeps.
type applicationIn struct {
	Name     string            `json:"name"`
	UID      *string           `json:"uid"`
	Metadata map[string]string `json:"metadata"`
}

// applicationOut is Svix's ApplicationOut.
type applicationOut struct {
	ID        string            `json:"id"`
	UID       string            `json:"uid,omitempty"`
	Name      string            `json:"name"`
	Metadata  map[string]string `json:"metadata"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
}

// out returns a as Svix answers it. The caller must hold the server's lock.
func (a *appState) out() applicationOut {
	md := maps.Clone(a.metadata)
	if md == nil {
		md = map[string]string{}
	}
	return applicationOut{ID: a.id, UID: a.uid, Name: a.name, Metadata: md, CreatedAt: a.createdAt, UpdatedAt: a.updatedAt}
}

// decodeApplicationIn reads an ApplicationIn body and checks what Svix
// checks beyond the OpenAPI document; it answers 422 and returns false when
// the body is not acceptable.
func decodeApplicationIn(w http.ResponseWriter, body []byte) (applicationIn, bool) {
	var in applicationIn
	if err := json.Unmarshal(body, &in); err != nil {
		writeValidationError(w, []string{"body"}, err.Error())
		return applicationIn{}, false
	}
	if in.Name == "" {
		writeValidationError(w, []string{"body", "name"}, "name must not be empty")
		return applicationIn{}, false
	}
	if in.UID != nil && *in.UID == "" {
		writeValidationError(w, []string{"body", "uid"}, "uid must not be empty")
		return applicationIn{}, false
	}
	if in.Metadata == nil {
		in.Metadata = map[string]string{}
	}
	return in, true
}

// createApplication implements POST /api/v1/app. Like Svix, it answers 409
// when the uid is taken, unless get_if_exists=true asks for the existing
// application (200) instead.
func (s *Server) createApplication(w http.ResponseWriter, r *http.Request, body []byte) {
	getIfExists := false
	if v := r.URL.Query().Get("get_if_exists"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeValidationError(w, []string{"query", "get_if_exists"}, "get_if_exists must be a boolean")
			return
		}
		getIfExists = b
	}
	in, ok := decodeApplicationIn(w, body)
	if !ok {
		return
	}
	s.mu.Lock()
	uid := deref(in.UID)
	if existing := s.findApp(uid); uid != "" && existing != nil {
		out := existing.out()
		s.mu.Unlock()
		if getIfExists {
			writeJSONValue(w, http.StatusOK, out)
			return
		}
		writeError(w, http.StatusConflict, "conflict", "An application with that id or uid already exists", "")
		return
	}
	out := s.newApp(uid, in.Name, in.Metadata).out()
	s.mu.Unlock()
	writeJSONValue(w, http.StatusCreated, out)
}

// getApplication implements GET /api/v1/app/{app_id}.
func (s *Server) getApplication(w http.ResponseWriter, appID string) {
	s.mu.Lock()
	a := s.findApp(appID)
	var out applicationOut
	if a != nil {
		out = a.out()
	}
	s.mu.Unlock()
	if a == nil {
		writeNotFound(w)
		return
	}
	writeJSONValue(w, http.StatusOK, out)
}

// updateApplication implements PUT /api/v1/app/{app_id}, which, like
// Svix's, creates the application when none has that id or uid (201) and
// otherwise replaces its name, uid and metadata (200). As in Svix, the uid
// comes from the body, not the path: a body without one leaves the
// application without a uid.
func (s *Server) updateApplication(w http.ResponseWriter, appID string, body []byte) {
	in, ok := decodeApplicationIn(w, body)
	if !ok {
		return
	}
	uid := deref(in.UID)
	s.mu.Lock()
	a := s.findApp(appID)
	if other := s.appUIDs[uid]; uid != "" && other != nil && other != a {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "conflict", "An application with that uid already exists", "")
		return
	}
	if a == nil {
		out := s.newApp(uid, in.Name, in.Metadata).out()
		s.mu.Unlock()
		writeJSONValue(w, http.StatusCreated, out)
		return
	}
	if a.uid != "" {
		delete(s.appUIDs, a.uid)
	}
	a.uid, a.name, a.metadata, a.updatedAt = uid, in.Name, in.Metadata, time.Now().UTC()
	if uid != "" {
		s.appUIDs[uid] = a
	}
	out := a.out()
	s.mu.Unlock()
	writeJSONValue(w, http.StatusOK, out)
}

// deleteApplication implements DELETE /api/v1/app/{app_id}: the
// application, its endpoints and its idempotency keys go; the messages
// sent to it stay in Messages.
func (s *Server) deleteApplication(w http.ResponseWriter, appID string) {
	s.mu.Lock()
	a := s.findApp(appID)
	if a != nil {
		delete(s.apps, a.id)
		if a.uid != "" {
			delete(s.appUIDs, a.uid)
		}
	}
	s.mu.Unlock()
	if a == nil {
		writeNotFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deref returns *p, or "" when p is nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
