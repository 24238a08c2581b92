package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Token is an API token as stored: everything but its value.
type Token struct {
	// ID is "tok_" and 22 characters.
	ID     string
	Name   string
	Scopes []string
	// ApplicationID restricts the token to one application; empty: none.
	ApplicationID string
	// Hash is the SHA-256 of the token's value (HashToken).
	Hash      []byte
	CreatedAt time.Time
	// ExpiresAt is nil for a token that never expires.
	ExpiresAt *time.Time
	// LastUsedAt is nil for a token never used (as far as TouchTokens was
	// told).
	LastUsedAt *time.Time
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// NewToken is what CreateToken needs. The store keeps the scopes as given;
// checking them is the caller's.
type NewToken struct {
	Name   string
	Scopes []string
	// ApplicationID restricts the token to that application, which must
	// exist; empty: no restriction.
	ApplicationID string
	// ExpiresAt is nil for a token that never expires.
	ExpiresAt *time.Time
}

const tokenColumns = `id, name, scopes, application_id, hash, created_at, expires_at, last_used_at`

// scanToken reads the columns of tokenColumns.
func scanToken(row interface{ Scan(...any) error }) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.Name, jsonCol{&t.Scopes}, nullStringCol{&t.ApplicationID}, &t.Hash,
		timeCol{&t.CreatedAt}, nullTimeCol{&t.ExpiresAt}, nullTimeCol{&t.LastUsedAt})
	return t, err
}

// CreateToken stores a new token and returns it with its value, which is
// not stored and cannot be had again. It returns ErrNotFound when
// nt.ApplicationID names no application.
func (s *Store) CreateToken(ctx context.Context, nt NewToken) (Token, string, error) {
	value := NewTokenValue()
	t := Token{
		ID:            newID("tok_"),
		Name:          nt.Name,
		Scopes:        slices.Clone(nt.Scopes),
		ApplicationID: nt.ApplicationID,
		Hash:          HashToken(value),
		CreatedAt:     dbTime(s.now()),
	}
	if t.Scopes == nil {
		t.Scopes = []string{}
	}
	if nt.ExpiresAt != nil {
		e := dbTime(*nt.ExpiresAt)
		t.ExpiresAt = &e
	}
	scopes, err := jsonArg(t.Scopes, false)
	if err != nil {
		return Token{}, "", fmt.Errorf("store: creating a token: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)`,
			t.ID, t.Name, scopes, nullStringArg(t.ApplicationID), t.Hash,
			s.timeArg(t.CreatedAt), s.nullTimeArg(t.ExpiresAt),
		); err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindToken, Op: OpCreate, ID: t.ID, ApplicationID: t.ApplicationID})
	})
	if err != nil {
		return Token{}, "", dbError("creating a token", err)
	}
	return t, value, nil
}

// GetToken returns the token with the given id, expired or not.
func (s *Store) GetToken(ctx context.Context, id string) (Token, error) {
	t, err := scanToken(s.read.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	if err != nil {
		return Token{}, dbError("reading a token", err)
	}
	return t, nil
}

// TokenByHash returns the token whose value hashes to hash (HashToken), or
// ErrNotFound when there is none or it has expired at now.
func (s *Store) TokenByHash(ctx context.Context, hash []byte, now time.Time) (Token, error) {
	t, err := scanToken(s.read.QueryRowContext(ctx,
		`SELECT `+tokenColumns+` FROM tokens WHERE hash = $1 AND (expires_at IS NULL OR expires_at > $2)`,
		hash, s.timeArg(now)))
	if err != nil {
		return Token{}, dbError("looking up a token", err)
	}
	return t, nil
}

// ListTokens returns a page of every token, expired ones included.
func (s *Store) ListTokens(ctx context.Context, opts ListOptions) (Page[Token], error) {
	return listPage(ctx, s, opts, listQuery[Token]{what: "listing tokens",
		from: `SELECT ` + tokenColumns + ` FROM tokens`, scan: scanToken,
		key: func(t Token) (time.Time, string) { return t.CreatedAt, t.ID }})
}

// DeleteToken deletes the token with the given id.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var appID string
		if err := tx.QueryRowContext(ctx,
			`DELETE FROM tokens WHERE id = $1 RETURNING application_id`, id,
		).Scan(nullStringCol{&appID}); err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindToken, Op: OpDelete, ID: id, ApplicationID: appID})
	})
	return dbError("deleting a token", err)
}

// TouchTokens sets the last-used time of each token in used (token id →
// time), in one transaction. A time earlier than the stored one is ignored,
// and so is an id that names no token (it may have been deleted since).
func (s *Store) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	// A fixed order of updates keeps two replicas touching the same tokens
	// from deadlocking on PostgreSQL.
	ids := make([]string, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			at := s.timeArg(used[id])
			if _, err := tx.ExecContext(ctx,
				`UPDATE tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`,
				at, id,
			); err != nil {
				return err
			}
		}
		return nil
	})
	return dbError("touching tokens", err)
}
