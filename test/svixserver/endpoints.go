package svixserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// endpointIn is the part of Svix's EndpointIn and EndpointUpdate the server
// keeps; Secret is EndpointIn's only.
type endpointIn struct {
	UID         *string           `json:"uid"`
	URL         string            `json:"url"`
	Description string            `json:"description"`
	Version     *int32            `json:"version"`
	Disabled    bool              `json:"disabled"`
	FilterTypes []string          `json:"filterTypes"`
	Channels    []string          `json:"channels"`
	Metadata    map[string]string `json:"metadata"`
	Secret      *string           `json:"secret"`
}

// endpointOut is Svix's EndpointOut.
type endpointOut struct {
	ID          string            `json:"id"`
	UID         string            `json:"uid,omitempty"`
	URL         string            `json:"url"`
	Description string            `json:"description"`
	Version     int32             `json:"version"`
	Disabled    bool              `json:"disabled"`
	FilterTypes []string          `json:"filterTypes,omitempty"`
	Channels    []string          `json:"channels,omitempty"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   time.Time         `json:"createdAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
}

// endpointSecretOut is Svix's EndpointSecretOut.
type endpointSecretOut struct {
	Key string `json:"key"`
}

// endpointSecretRotateIn is Svix's EndpointSecretRotateIn.
type endpointSecretRotateIn struct {
	Key                *string `json:"key"`
	GracePeriodSeconds *int64  `json:"gracePeriodSeconds"`
}

const (
	// defaultGracePeriod is how long Svix keeps a rotated secret valid
	// when the rotation does not say.
	defaultGracePeriod = 24 * time.Hour
	// maxGracePeriod is the longest grace period Svix accepts.
	maxGracePeriod = 7 * 24 * time.Hour
	// maxOldSecrets is how many rotated secrets Svix keeps valid at once.
	maxOldSecrets = 10
	// secretBytes is the size of the secrets Svix generates; it accepts
	// given ones of secretBytes to maxSecretBytes bytes.
	secretBytes    = 24
	maxSecretBytes = 75
)

// out returns e as Svix answers it. The caller must hold the server's lock.
func (e *endpointState) out() endpointOut {
	md := maps.Clone(e.metadata)
	if md == nil {
		md = map[string]string{}
	}
	return endpointOut{ID: e.id, UID: e.uid, URL: e.url, Description: e.description, Version: e.version,
		Disabled: e.disabled, FilterTypes: slices.Clone(e.filterTypes), Channels: slices.Clone(e.channels),
		Metadata: md, CreatedAt: e.createdAt, UpdatedAt: e.updatedAt}
}

// set replaces every field of e that an EndpointUpdate carries, as Svix's
// PUT does: what the body leaves out is reset to its default.
func (e *endpointState) set(in endpointIn, now time.Time) {
	e.uid = deref(in.UID)
	e.url = in.URL
	e.description = in.Description
	e.version = 1
	if in.Version != nil {
		e.version = *in.Version
	}
	e.disabled = in.Disabled
	e.filterTypes = in.FilterTypes
	e.channels = in.Channels
	e.metadata = in.Metadata
	e.updatedAt = now
}

// decodeEndpointIn reads an EndpointIn or EndpointUpdate body and checks
// what Svix checks beyond the OpenAPI document; it answers 422 and returns
// false when the body is not acceptable.
func decodeEndpointIn(w http.ResponseWriter, body []byte) (endpointIn, bool) {
	var in endpointIn
	if err := json.Unmarshal(body, &in); err != nil {
		writeValidationError(w, []string{"body"}, err.Error())
		return endpointIn{}, false
	}
	switch {
	case in.URL == "":
		writeValidationError(w, []string{"body", "url"}, "url must not be empty")
	case in.UID != nil && *in.UID == "":
		writeValidationError(w, []string{"body", "uid"}, "uid must not be empty")
	case in.FilterTypes != nil && len(in.FilterTypes) == 0:
		writeValidationError(w, []string{"body", "filterTypes"}, "filterTypes must not be empty; leave it out for every event type")
	case in.Channels != nil && len(in.Channels) == 0:
		writeValidationError(w, []string{"body", "channels"}, "channels must not be empty; leave it out for every channel")
	case in.Secret != nil && !validSecret(*in.Secret):
		writeValidationError(w, []string{"body", "secret"}, "secret length invalid")
	default:
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		return in, true
	}
	return endpointIn{}, false
}

// validSecret reports whether Svix would take secret as an HMAC signing
// secret: base64, optionally after "whsec_", of 24 to 75 bytes. Secrets
// of the other kinds (whsk_, whpk_, ...) are taken as they are.
func validSecret(secret string) bool {
	for _, prefix := range []string{"whsk_", "whsk1_", "whpk_", "whpk1_"} {
		if strings.HasPrefix(secret, prefix) {
			return true
		}
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	return err == nil && len(b) >= secretBytes && len(b) <= maxSecretBytes
}

// newSecret returns a secret shaped like the ones Svix generates.
func newSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// appFor returns the application appID names, or answers 404 and returns
// nil. The caller must hold s.mu.
func (s *Server) appFor(w http.ResponseWriter, appID string) *appState {
	a := s.findApp(appID)
	if a == nil {
		writeNotFound(w)
	}
	return a
}

// endpointFor returns the endpoint that appID and endpointID name, or
// answers 404 and returns nil. The caller must hold s.mu.
func (s *Server) endpointFor(w http.ResponseWriter, appID, endpointID string) (*appState, *endpointState) {
	a := s.findApp(appID)
	if a == nil {
		writeNotFound(w)
		return nil, nil
	}
	e := a.findEndpoint(endpointID)
	if e == nil {
		writeNotFound(w)
		return nil, nil
	}
	return a, e
}

// uidTaken reports whether another endpoint of a than e has the uid.
func (a *appState) uidTaken(uid string, e *endpointState) bool {
	if uid == "" {
		return false
	}
	other := a.findEndpoint(uid)
	return other != nil && other != e
}

// addEndpoint creates an endpoint in a from in, with in's secret or a new
// one. The caller must hold the server's lock and have checked the uid.
func (a *appState) addEndpoint(in endpointIn, now time.Time) *endpointState {
	e := &endpointState{id: newID("ep_"), createdAt: now}
	e.set(in, now)
	e.secret = deref(in.Secret)
	if e.secret == "" {
		e.secret = newSecret()
	}
	a.endpoints[e.id] = e
	return e
}

// createEndpoint implements POST /api/v1/app/{app_id}/endpoint. Like Svix,
// it answers 422 when filterTypes names an event type the server does not
// hold or has archived, and 409 when the application already has an
// endpoint with the uid.
func (s *Server) createEndpoint(w http.ResponseWriter, appID string, body []byte) {
	in, ok := decodeEndpointIn(w, body)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appFor(w, appID)
	if a == nil {
		return
	}
	if unknown := s.unknownEventTypes(in.FilterTypes); len(unknown) > 0 {
		writeUnknownEventTypes(w, unknown)
		return
	}
	if a.uidTaken(deref(in.UID), nil) {
		writeError(w, http.StatusConflict, "conflict", "An endpoint with that uid already exists", "")
		return
	}
	writeJSONValue(w, http.StatusCreated, a.addEndpoint(in, time.Now().UTC()).out())
}

// getEndpoint implements GET /api/v1/app/{app_id}/endpoint/{endpoint_id}.
func (s *Server) getEndpoint(w http.ResponseWriter, appID, endpointID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.endpointFor(w, appID, endpointID); e != nil {
		writeJSONValue(w, http.StatusOK, e.out())
	}
}

// updateEndpoint implements PUT /api/v1/app/{app_id}/endpoint/{endpoint_id},
// which, like Svix's, replaces every field of the endpoint but its secret
// (200), resetting what the body leaves out, or creates the endpoint with a
// new secret when the application has none with that id or uid (201). As
// in Svix, the uid comes from the body, not the path, and filterTypes must
// name event types the server holds, unarchived (422 otherwise).
func (s *Server) updateEndpoint(w http.ResponseWriter, appID, endpointID string, body []byte) {
	in, ok := decodeEndpointIn(w, body)
	if !ok {
		return
	}
	in.Secret = nil // not part of EndpointUpdate
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appFor(w, appID)
	if a == nil {
		return
	}
	if unknown := s.unknownEventTypes(in.FilterTypes); len(unknown) > 0 {
		writeUnknownEventTypes(w, unknown)
		return
	}
	e := a.findEndpoint(endpointID)
	if a.uidTaken(deref(in.UID), e) {
		writeError(w, http.StatusConflict, "conflict", "An endpoint with that uid already exists", "")
		return
	}
	now := time.Now().UTC()
	if e == nil {
		writeJSONValue(w, http.StatusCreated, a.addEndpoint(in, now).out())
		return
	}
	e.set(in, now)
	writeJSONValue(w, http.StatusOK, e.out())
}

// deleteEndpoint implements DELETE /api/v1/app/{app_id}/endpoint/{endpoint_id}.
func (s *Server) deleteEndpoint(w http.ResponseWriter, appID, endpointID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, e := s.endpointFor(w, appID, endpointID); e != nil {
		delete(a.endpoints, e.id)
		w.WriteHeader(http.StatusNoContent)
	}
}

// getEndpointSecret implements
// GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret.
func (s *Server) getEndpointSecret(w http.ResponseWriter, appID, endpointID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.endpointFor(w, appID, endpointID); e != nil {
		writeJSONValue(w, http.StatusOK, endpointSecretOut{Key: e.secret})
	}
}

// rotateEndpointSecret implements
// POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate as Svix
// does: the new secret is the one given or a generated one, and the
// current one stays valid for the grace period (24 hours unless the body
// says otherwise). Like Svix, it answers 400 when that would keep more
// than 10 old secrets valid.
func (s *Server) rotateEndpointSecret(w http.ResponseWriter, appID, endpointID string, body []byte) {
	var in endpointSecretRotateIn
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			writeValidationError(w, []string{"body"}, err.Error())
			return
		}
	}
	grace := defaultGracePeriod
	if in.GracePeriodSeconds != nil {
		grace = time.Duration(*in.GracePeriodSeconds) * time.Second
		if grace < 0 || grace > maxGracePeriod {
			writeValidationError(w, []string{"body", "gracePeriodSeconds"}, "gracePeriodSeconds must be from 0 to 604800")
			return
		}
	}
	if in.Key != nil && !validSecret(*in.Key) {
		writeValidationError(w, []string{"body", "key"}, "secret length invalid")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e := s.endpointFor(w, appID, endpointID)
	if e == nil {
		return
	}
	now := time.Now().UTC()
	olds := unexpired(e.oldSecrets, now)
	if expires := now.Add(grace); expires.After(now) {
		olds = append(olds, PreviousSecret{Secret: e.secret, ExpiresAt: expires})
	}
	slices.SortStableFunc(olds, func(x, y PreviousSecret) int { return x.ExpiresAt.Compare(y.ExpiresAt) })
	if len(olds) > maxOldSecrets {
		writeError(w, http.StatusBadRequest, "limit_reached", fmt.Sprintf(
			"You can only rotate a key %d times; please wait for old keys to expire.", maxOldSecrets), "")
		return
	}
	e.oldSecrets = olds
	e.secret = deref(in.Key)
	if e.secret == "" {
		e.secret = newSecret()
	}
	e.updatedAt = now
	w.WriteHeader(http.StatusNoContent)
}
