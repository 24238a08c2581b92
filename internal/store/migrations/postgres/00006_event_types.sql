-- The catalogue of event types. The SQLite schema (../sqlite) has the same
-- table, columns and index.

-- +goose Up

-- One event type, keyed by its name (the events' type). No foreign key:
-- events name their type freely, and a type not in the table stays open.
CREATE TABLE event_types (
    name        text        PRIMARY KEY,
    description text        NOT NULL, -- '' for none
    schema      jsonb,                -- a JSON Schema (draft 2020-12) of the events' data; NULL: not checked
    archived    boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX event_types_page ON event_types (created_at, name);

-- +goose Down
DROP TABLE event_types;
