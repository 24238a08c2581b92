package store

import (
	"context"
	"database/sql"
	"slices"
	"time"
)

// PreviousSecretTTL is how long an endpoint's previous secret keeps signing
// after a rotation.
const PreviousSecretTTL = 24 * time.Hour

// Endpoint is a URL of an application that receives its webhooks.
type Endpoint struct {
	// ID is "ep_" and 22 characters, unless the creator brought one.
	ID            string
	ApplicationID string
	URL           string
	Description   string
	// EventTypes is nil for every event type; otherwise only these (an
	// empty, non-nil list: none).
	EventTypes []string
	Disabled   bool
	// Secret signs every message.
	Secret string
	// PreviousSecret, until PreviousSecretExpiresAt, signs beside Secret;
	// empty (and the time nil) when there is none.
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// Secrets returns the secrets that sign a message at now: Secret, and
// PreviousSecret until it expires.
func (e Endpoint) Secrets(now time.Time) []string {
	secrets := []string{e.Secret}
	if e.PreviousSecret != "" && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		secrets = append(secrets, e.PreviousSecret)
	}
	return secrets
}

const endpointColumns = `id, application_id, url, description, event_types, disabled, secret,
	previous_secret, previous_secret_expires_at, created_at, updated_at`

// Takes reports whether the endpoint receives events of eventType: it is
// enabled, and its EventTypes is nil or names eventType exactly.
func (e Endpoint) Takes(eventType string) bool {
	return !e.Disabled && (e.EventTypes == nil || slices.Contains(e.EventTypes, eventType))
}

func scanEndpoint(row interface{ Scan(...any) error }) (Endpoint, error) {
	var e Endpoint
	err := row.Scan(&e.ID, &e.ApplicationID, &e.URL, &e.Description, jsonCol{&e.EventTypes}, &e.Disabled, &e.Secret,
		nullStringCol{&e.PreviousSecret}, nullTimeCol{&e.PreviousSecretExpiresAt}, timeCol{&e.CreatedAt}, timeCol{&e.UpdatedAt})
	return e, err
}

// CreateEndpoint stores a new endpoint of ep.ApplicationID with ep's ID
// (NewEndpointID when empty), URL, Description, EventTypes, Disabled and
// Secret (NewEndpointSecret when empty), and returns it as stored. It
// returns ErrNotFound when the application does not exist and ErrConflict
// when the id is taken.
func (s *Store) CreateEndpoint(ctx context.Context, ep Endpoint) (Endpoint, error) {
	now := dbTime(s.now())
	e := Endpoint{
		ID:            ep.ID,
		ApplicationID: ep.ApplicationID,
		URL:           ep.URL,
		Description:   ep.Description,
		EventTypes:    slices.Clone(ep.EventTypes),
		Disabled:      ep.Disabled,
		Secret:        ep.Secret,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if e.ID == "" {
		e.ID = NewEndpointID()
	}
	if e.Secret == "" {
		e.Secret = NewEndpointSecret()
	}
	types, err := jsonArg(e.EventTypes, e.EventTypes == nil)
	if err != nil {
		return Endpoint{}, dbError("creating an endpoint", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO endpoints (`+endpointColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $8)`,
			e.ID, e.ApplicationID, e.URL, e.Description, types, e.Disabled, e.Secret, s.timeArg(now),
		); err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindEndpoint, Op: OpCreate, ID: e.ID, ApplicationID: e.ApplicationID})
	})
	if err != nil {
		return Endpoint{}, dbError("creating an endpoint", err)
	}
	return e, nil
}

// GetEndpoint returns the endpoint with the given id of the given
// application.
func (s *Store) GetEndpoint(ctx context.Context, appID, id string) (Endpoint, error) {
	e, err := scanEndpoint(s.read.QueryRowContext(ctx,
		`SELECT `+endpointColumns+` FROM endpoints WHERE application_id = $1 AND id = $2`, appID, id))
	if err != nil {
		return Endpoint{}, dbError("reading an endpoint", err)
	}
	return e, nil
}

// ListEndpoints returns a page of the endpoints of the given application,
// or ErrNotFound when the application does not exist.
func (s *Store) ListEndpoints(ctx context.Context, appID string, opts ListOptions) (Page[Endpoint], error) {
	page, err := listPage(ctx, s, opts, listQuery[Endpoint]{what: "listing endpoints",
		from:   `SELECT ` + endpointColumns + ` FROM endpoints`,
		filter: `application_id = $2`, filterArgs: []any{appID}, scan: scanEndpoint,
		key: func(e Endpoint) (time.Time, string) { return e.CreatedAt, e.ID }})
	if err != nil || len(page.Items) > 0 {
		return page, err
	}
	// No endpoints, or no application?
	var one int
	if err := s.read.QueryRowContext(ctx, `SELECT 1 FROM applications WHERE id = $1`, appID).Scan(&one); err != nil {
		return Page[Endpoint]{}, dbError("listing endpoints", err)
	}
	return page, nil
}

// ListAllEndpoints returns a page of the endpoints of every application,
// oldest first: what a replica loads to hold every endpoint in memory.
func (s *Store) ListAllEndpoints(ctx context.Context, opts ListOptions) (Page[Endpoint], error) {
	return listPage(ctx, s, opts, listQuery[Endpoint]{what: "listing every endpoint",
		from: `SELECT ` + endpointColumns + ` FROM endpoints`, scan: scanEndpoint,
		key: func(e Endpoint) (time.Time, string) { return e.CreatedAt, e.ID }})
}

// UpdateEndpoint replaces the URL, Description, EventTypes and Disabled of
// the endpoint with ep.ID of ep.ApplicationID, and returns it as stored. The
// secrets are changed only by RotateEndpointSecret. Enabling or disabling
// the endpoint forgets its run of failed attempts (Attempt.FailingSince).
func (s *Store) UpdateEndpoint(ctx context.Context, ep Endpoint) (Endpoint, error) {
	types, err := jsonArg(ep.EventTypes, ep.EventTypes == nil)
	if err != nil {
		return Endpoint{}, dbError("updating an endpoint", err)
	}
	var e Endpoint
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = scanEndpoint(tx.QueryRowContext(ctx,
			`UPDATE endpoints SET url = $1, description = $2, event_types = $3, disabled = $4, updated_at = $5,
				failing_since = CASE WHEN disabled = $4 THEN failing_since END
			WHERE application_id = $6 AND id = $7
			RETURNING `+endpointColumns,
			ep.URL, ep.Description, types, ep.Disabled, s.timeArg(s.now()), ep.ApplicationID, ep.ID))
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindEndpoint, Op: OpUpdate, ID: e.ID, ApplicationID: e.ApplicationID})
	})
	if err != nil {
		return Endpoint{}, dbError("updating an endpoint", err)
	}
	return e, nil
}

// RotateEndpointSecret makes secret (NewEndpointSecret when empty) the
// endpoint's secret, and its current secret the previous one, valid for
// PreviousSecretTTL from now. A previous secret still valid is dropped. It
// returns the endpoint as stored.
func (s *Store) RotateEndpointSecret(ctx context.Context, appID, id, secret string) (Endpoint, error) {
	if secret == "" {
		secret = NewEndpointSecret()
	}
	now := s.now()
	var e Endpoint
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = scanEndpoint(tx.QueryRowContext(ctx,
			`UPDATE endpoints SET previous_secret = secret, previous_secret_expires_at = $1, secret = $2, updated_at = $3
			WHERE application_id = $4 AND id = $5
			RETURNING `+endpointColumns,
			s.timeArg(now.Add(PreviousSecretTTL)), secret, s.timeArg(now), appID, id))
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindEndpoint, Op: OpUpdate, ID: e.ID, ApplicationID: e.ApplicationID})
	})
	if err != nil {
		return Endpoint{}, dbError("rotating an endpoint secret", err)
	}
	return e, nil
}

// DeleteEndpoint deletes the endpoint with the given id of the given
// application.
func (s *Store) DeleteEndpoint(ctx context.Context, appID, id string) error {
	return s.deleteOne(ctx, "deleting an endpoint", Change{Kind: KindEndpoint, Op: OpDelete, ID: id, ApplicationID: appID},
		`DELETE FROM endpoints WHERE application_id = $1 AND id = $2`, appID, id)
}
