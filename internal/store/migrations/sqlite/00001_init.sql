-- The SQLite schema. The PostgreSQL schema (../postgres) has the same tables,
-- columns and indexes; only the column types differ: times are text in the
-- fixed-width form 2006-01-02T15:04:05.000000Z (so that text order is time
-- order), JSON is text, the token hash is a blob and booleans are 0 or 1.
-- STRICT tables refuse a value of the wrong type instead of storing it.

-- +goose Up
CREATE TABLE applications (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    metadata   TEXT NOT NULL, -- a JSON object of strings
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX applications_page ON applications (created_at, id);

CREATE TABLE endpoints (
    id                         TEXT    NOT NULL PRIMARY KEY,
    application_id             TEXT    NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    url                        TEXT    NOT NULL,
    description                TEXT    NOT NULL,
    event_types                TEXT,   -- a JSON array of strings; NULL: every event type
    disabled                   INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    secret                     TEXT    NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TEXT,
    created_at                 TEXT    NOT NULL,
    updated_at                 TEXT    NOT NULL
) STRICT;
CREATE INDEX endpoints_page ON endpoints (application_id, created_at, id);

CREATE TABLE tokens (
    id             TEXT NOT NULL PRIMARY KEY,
    name           TEXT NOT NULL,
    scopes         TEXT NOT NULL, -- a JSON array of strings
    application_id TEXT REFERENCES applications (id) ON DELETE CASCADE,
    hash           BLOB NOT NULL UNIQUE, -- SHA-256 of the token
    created_at     TEXT NOT NULL,
    expires_at     TEXT,
    last_used_at   TEXT
) STRICT;
CREATE INDEX tokens_page ON tokens (created_at, id);
CREATE INDEX tokens_application ON tokens (application_id);

-- One row: seq is the sequence number of the latest change, pruned_through
-- the highest sequence number deleted from changes.
CREATE TABLE change_log (
    id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq            INTEGER NOT NULL,
    pruned_through INTEGER NOT NULL
) STRICT;
INSERT INTO change_log (id, seq, pruned_through) VALUES (1, 0, 0);

CREATE TABLE changes (
    seq            INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    op             TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    application_id TEXT    NOT NULL,
    changed_at     TEXT    NOT NULL
) STRICT;
CREATE INDEX changes_seq ON changes (seq);
CREATE INDEX changes_changed_at ON changes (changed_at);

-- +goose Down
DROP TABLE changes;
DROP TABLE change_log;
DROP TABLE tokens;
DROP TABLE endpoints;
DROP TABLE applications;
