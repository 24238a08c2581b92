package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"time"
)

// Application is one customer who receives webhooks; its id is the events'
// user_id.
type Application struct {
	// ID is chosen by the caller.
	ID   string
	Name string
	// Metadata is never nil in what the store returns.
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

const applicationColumns = `id, name, metadata, created_at, updated_at`

func scanApplication(row interface{ Scan(...any) error }) (Application, error) {
	var a Application
	err := row.Scan(&a.ID, &a.Name, jsonCol{&a.Metadata}, timeCol{&a.CreatedAt}, timeCol{&a.UpdatedAt})
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	return a, err
}

// metadataArg is m as JSON, {} for nil.
func metadataArg(m map[string]string) (any, error) {
	if m == nil {
		m = map[string]string{}
	}
	return jsonArg(m, false)
}

// CreateApplication stores a new application with app's ID, Name and
// Metadata, and returns it as stored. It returns ErrConflict when the id is
// taken, and an error when it is empty.
func (s *Store) CreateApplication(ctx context.Context, app Application) (Application, error) {
	if app.ID == "" {
		// An empty application id means "none" for a token.
		return Application{}, errors.New("store: creating an application: the id is empty")
	}
	now := dbTime(s.now())
	a := Application{ID: app.ID, Name: app.Name, Metadata: maps.Clone(app.Metadata), CreatedAt: now, UpdatedAt: now}
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	meta, err := metadataArg(a.Metadata)
	if err != nil {
		return Application{}, dbError("creating an application", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO applications (`+applicationColumns+`) VALUES ($1, $2, $3, $4, $4)`,
			a.ID, a.Name, meta, s.timeArg(now),
		); err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindApplication, Op: OpCreate, ID: a.ID, ApplicationID: a.ID})
	})
	if err != nil {
		return Application{}, dbError("creating an application", err)
	}
	return a, nil
}

// GetApplication returns the application with the given id.
func (s *Store) GetApplication(ctx context.Context, id string) (Application, error) {
	a, err := scanApplication(s.read.QueryRowContext(ctx,
		`SELECT `+applicationColumns+` FROM applications WHERE id = $1`, id))
	if err != nil {
		return Application{}, dbError("reading an application", err)
	}
	return a, nil
}

// ListApplications returns a page of every application.
func (s *Store) ListApplications(ctx context.Context, opts ListOptions) (Page[Application], error) {
	return listPage(ctx, s, opts, listQuery[Application]{what: "listing applications",
		from: `SELECT ` + applicationColumns + ` FROM applications`, scan: scanApplication,
		key: func(a Application) (time.Time, string) { return a.CreatedAt, a.ID }})
}

// UpdateApplication replaces the Name and Metadata of the application with
// app.ID and returns it as stored.
func (s *Store) UpdateApplication(ctx context.Context, app Application) (Application, error) {
	meta, err := metadataArg(app.Metadata)
	if err != nil {
		return Application{}, dbError("updating an application", err)
	}
	var a Application
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = scanApplication(tx.QueryRowContext(ctx,
			`UPDATE applications SET name = $1, metadata = $2, updated_at = $3 WHERE id = $4
			RETURNING `+applicationColumns,
			app.Name, meta, s.timeArg(s.now()), app.ID))
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindApplication, Op: OpUpdate, ID: a.ID, ApplicationID: a.ID})
	})
	if err != nil {
		return Application{}, dbError("updating an application", err)
	}
	return a, nil
}

// DeleteApplication deletes the application with the given id, and with it
// its endpoints and tokens. The change log gets one change, for the
// application.
func (s *Store) DeleteApplication(ctx context.Context, id string) error {
	return s.deleteOne(ctx, "deleting an application", Change{Kind: KindApplication, Op: OpDelete, ID: id, ApplicationID: id},
		`DELETE FROM applications WHERE id = $1`, id)
}

// deleteOne runs query, which deletes at most one row, and records c in the
// same transaction. No row deleted is ErrNotFound; what names the
// operation in errors.
func (s *Store) deleteOne(ctx context.Context, what string, c Change, query string, args ...any) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return sql.ErrNoRows
		}
		return s.recordChanges(ctx, tx, c)
	})
	return dbError(what, err)
}
