package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Filter is the one filter of an application: which of its events leave
// Gwook. Package filter compiles and evaluates it.
type Filter struct {
	ApplicationID string
	// IncludeTypes is nil for every type; otherwise only types matching one
	// of these patterns (an empty, non-nil list: none).
	IncludeTypes []string
	// ExcludeTypes: types matching one of these patterns never leave; nil
	// or empty for none.
	ExcludeTypes []string
	// Expression is a CEL expression over the event; empty for none.
	Expression string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// filterColumns are the columns of filters, application_id read as id so
// that listPage can key and order the rows.
const filterColumns = `id, include_types, exclude_types, expression, created_at, updated_at`

// filtersByID is the filters table with application_id named id.
const filtersByID = `(SELECT application_id AS id, include_types, exclude_types, expression, created_at, updated_at FROM filters) AS f`

func scanFilter(row interface{ Scan(...any) error }) (Filter, error) {
	var f Filter
	err := row.Scan(&f.ApplicationID, jsonCol{&f.IncludeTypes}, jsonCol{&f.ExcludeTypes}, &f.Expression,
		timeCol{&f.CreatedAt}, timeCol{&f.UpdatedAt})
	return f, err
}

// GetFilter returns the filter of the given application, or ErrNotFound when
// it has none (or does not exist).
func (s *Store) GetFilter(ctx context.Context, applicationID string) (Filter, error) {
	f, err := scanFilter(s.read.QueryRowContext(ctx,
		`SELECT application_id, include_types, exclude_types, expression, created_at, updated_at
		FROM filters WHERE application_id = $1`, applicationID))
	if err != nil {
		return Filter{}, dbError("reading a filter", err)
	}
	return f, nil
}

// PutFilter makes f's IncludeTypes, ExcludeTypes and Expression the filter
// of application f.ApplicationID, and returns the filter as stored and
// whether it was created (false: an existing filter was replaced, keeping
// its CreatedAt). Nil and empty lists stay distinct. It returns ErrNotFound
// when the application does not exist. The change log gets a KindFilter
// change, OpCreate or OpUpdate, whose ID and ApplicationID are the
// application's id.
func (s *Store) PutFilter(ctx context.Context, f Filter) (Filter, bool, error) {
	include, err := jsonArg(f.IncludeTypes, f.IncludeTypes == nil)
	if err != nil {
		return Filter{}, false, dbError("storing a filter", err)
	}
	exclude, err := jsonArg(f.ExcludeTypes, f.ExcludeTypes == nil)
	if err != nil {
		return Filter{}, false, dbError("storing a filter", err)
	}
	now := s.timeArg(s.now())
	var stored Filter
	var created bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		stored, created, err = putFilter(ctx, tx, f.ApplicationID, include, exclude, f.Expression, now)
		if err != nil {
			return err
		}
		op := OpUpdate
		if created {
			op = OpCreate
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindFilter, Op: op, ID: f.ApplicationID, ApplicationID: f.ApplicationID})
	})
	if err != nil {
		return Filter{}, false, dbError("storing a filter", err)
	}
	return stored, created, nil
}

// putFilterAttempts bounds how often putFilter tries to insert and then to
// update, each failing because another transaction deleted or inserted the
// filter in between (PostgreSQL's statements each see the latest commits).
const putFilterAttempts = 3

// putFilter inserts the filter of appID, or updates it when it exists, and
// reports whether it inserted it.
func putFilter(ctx context.Context, tx *sql.Tx, appID string, include, exclude any, expression string, now any) (Filter, bool, error) {
	for range putFilterAttempts {
		f, err := scanFilter(tx.QueryRowContext(ctx,
			`INSERT INTO filters (application_id, include_types, exclude_types, expression, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (application_id) DO NOTHING
			RETURNING application_id, include_types, exclude_types, expression, created_at, updated_at`,
			appID, include, exclude, expression, now))
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Filter{}, false, err
		}
		f, err = scanFilter(tx.QueryRowContext(ctx,
			`UPDATE filters SET include_types = $2, exclude_types = $3, expression = $4, updated_at = $5
			WHERE application_id = $1
			RETURNING application_id, include_types, exclude_types, expression, created_at, updated_at`,
			appID, include, exclude, expression, now))
		if err == nil {
			return f, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Filter{}, false, err
		}
	}
	return Filter{}, false, errors.New("the filter was inserted and deleted by others at every attempt")
}

// DeleteFilter deletes the filter of the given application, or returns
// ErrNotFound when it has none. The change log gets a KindFilter OpDelete
// change. Deleting an application deletes its filter too, and the change
// log then gets the application's change only.
func (s *Store) DeleteFilter(ctx context.Context, applicationID string) error {
	return s.deleteOne(ctx, "deleting a filter",
		Change{Kind: KindFilter, Op: OpDelete, ID: applicationID, ApplicationID: applicationID},
		`DELETE FROM filters WHERE application_id = $1`, applicationID)
}

// ListFilters returns a page of the filters of every application, ordered
// by creation time and application id.
func (s *Store) ListFilters(ctx context.Context, opts ListOptions) (Page[Filter], error) {
	return listPage(ctx, s, opts, listQuery[Filter]{what: "listing filters",
		from: `SELECT ` + filterColumns + ` FROM ` + filtersByID, scan: scanFilter,
		key: func(f Filter) (time.Time, string) { return f.CreatedAt, f.ApplicationID }})
}
