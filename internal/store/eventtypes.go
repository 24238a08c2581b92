package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// EventType is one entry of the catalogue of event types: the events whose
// type is Name have their data checked against Schema, and are dropped
// while Archived. Package eventtype compiles the schema.
type EventType struct {
	// Name is the events' type, chosen by the caller.
	Name        string
	Description string
	// Schema is a JSON Schema of the events' data, as JSON; nil for none.
	Schema   json.RawMessage
	Archived bool
	// CreatedAt and UpdatedAt; UpdatedAt changes with every update, so it
	// versions the schema too.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// eventTypeColumns are the columns of event_types, name read as id so that
// listPage can key and order the rows.
const eventTypeColumns = `id, description, schema, archived, created_at, updated_at`

// eventTypesByID is the event_types table with name named id.
const eventTypesByID = `(SELECT name AS id, description, schema, archived, created_at, updated_at FROM event_types) AS t`

func scanEventType(row interface{ Scan(...any) error }) (EventType, error) {
	var et EventType
	err := row.Scan(&et.Name, &et.Description, jsonCol{&et.Schema}, &et.Archived, timeCol{&et.CreatedAt}, timeCol{&et.UpdatedAt})
	return et, err
}

// schemaArg is the schema as a JSON value for either dialect, NULL for none.
func schemaArg(schema json.RawMessage) any {
	if schema == nil {
		return nil
	}
	return string(schema)
}

// CreateEventType stores a new event type with et's Name, Description,
// Schema and Archived, and returns it as stored. It returns ErrConflict
// when the name is taken, and an error when it is empty. The change log
// gets a KindEventType OpCreate change whose ID is the name.
func (s *Store) CreateEventType(ctx context.Context, et EventType) (EventType, error) {
	if et.Name == "" {
		return EventType{}, errors.New("store: creating an event type: the name is empty")
	}
	var created EventType
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		created, err = scanEventType(tx.QueryRowContext(ctx,
			`INSERT INTO event_types (name, description, schema, archived, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)
			RETURNING name, description, schema, archived, created_at, updated_at`,
			et.Name, et.Description, schemaArg(et.Schema), et.Archived, s.timeArg(s.now())))
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindEventType, Op: OpCreate, ID: et.Name})
	})
	if err != nil {
		return EventType{}, dbError("creating an event type", err)
	}
	return created, nil
}

// GetEventType returns the event type with the given name.
func (s *Store) GetEventType(ctx context.Context, name string) (EventType, error) {
	et, err := scanEventType(s.read.QueryRowContext(ctx,
		`SELECT name, description, schema, archived, created_at, updated_at FROM event_types WHERE name = $1`, name))
	if err != nil {
		return EventType{}, dbError("reading an event type", err)
	}
	return et, nil
}

// UpdateEventType replaces the Description, Schema and Archived of the
// event type et.Name and returns it as stored. The change log gets a
// KindEventType OpUpdate change.
func (s *Store) UpdateEventType(ctx context.Context, et EventType) (EventType, error) {
	var updated EventType
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		updated, err = scanEventType(tx.QueryRowContext(ctx,
			`UPDATE event_types SET description = $2, schema = $3, archived = $4, updated_at = $5 WHERE name = $1
			RETURNING name, description, schema, archived, created_at, updated_at`,
			et.Name, et.Description, schemaArg(et.Schema), et.Archived, s.timeArg(s.now())))
		if err != nil {
			return err
		}
		return s.recordChanges(ctx, tx, Change{Kind: KindEventType, Op: OpUpdate, ID: et.Name})
	})
	if err != nil {
		return EventType{}, dbError("updating an event type", err)
	}
	return updated, nil
}

// DeleteEventType deletes the event type with the given name, or returns
// ErrNotFound. The change log gets a KindEventType OpDelete change.
func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	return s.deleteOne(ctx, "deleting an event type", Change{Kind: KindEventType, Op: OpDelete, ID: name},
		`DELETE FROM event_types WHERE name = $1`, name)
}

// ListEventTypes returns a page of every event type, ordered by creation
// time and name.
func (s *Store) ListEventTypes(ctx context.Context, opts ListOptions) (Page[EventType], error) {
	return listPage(ctx, s, opts, listQuery[EventType]{what: "listing event types",
		from: `SELECT ` + eventTypeColumns + ` FROM ` + eventTypesByID, scan: scanEventType,
		key: func(et EventType) (time.Time, string) { return et.CreatedAt, et.Name }})
}
