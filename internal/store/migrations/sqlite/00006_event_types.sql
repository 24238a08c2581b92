-- The catalogue of event types. The PostgreSQL schema (../postgres) has the
-- same table, columns and index.

-- +goose Up

-- One event type, keyed by its name (the events' type). No foreign key:
-- events name their type freely, and a type not in the table stays open.
CREATE TABLE event_types (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL, -- '' for none
    schema      TEXT,             -- a JSON Schema (draft 2020-12) of the events' data; NULL: not checked
    archived    INTEGER NOT NULL CHECK (archived IN (0, 1)),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
) STRICT;
CREATE INDEX event_types_page ON event_types (created_at, name);

-- +goose Down
DROP TABLE event_types;
