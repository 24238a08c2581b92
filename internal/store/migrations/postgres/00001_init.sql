-- The PostgreSQL schema. The SQLite schema (../sqlite) has the same tables,
-- columns and indexes; only the column types differ: timestamptz here is
-- fixed-width RFC 3339 text there, jsonb is text holding JSON, bytea is blob
-- and boolean is an integer 0 or 1.

-- +goose Up
CREATE TABLE applications (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    metadata   jsonb       NOT NULL, -- a JSON object of strings
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX applications_page ON applications (created_at, id);

CREATE TABLE endpoints (
    id                         text        PRIMARY KEY,
    application_id             text        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    url                        text        NOT NULL,
    description                text        NOT NULL,
    event_types                jsonb,      -- a JSON array of strings; NULL: every event type
    disabled                   boolean     NOT NULL,
    secret                     text        NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL
);
CREATE INDEX endpoints_page ON endpoints (application_id, created_at, id);

CREATE TABLE tokens (
    id             text        PRIMARY KEY,
    name           text        NOT NULL,
    scopes         jsonb       NOT NULL, -- a JSON array of strings
    application_id text        REFERENCES applications (id) ON DELETE CASCADE,
    hash           bytea       NOT NULL UNIQUE, -- SHA-256 of the token
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz,
    last_used_at   timestamptz
);
CREATE INDEX tokens_page ON tokens (created_at, id);
CREATE INDEX tokens_application ON tokens (application_id);

-- One row: seq is the sequence number of the latest change, pruned_through
-- the highest sequence number deleted from changes.
CREATE TABLE change_log (
    id             integer PRIMARY KEY CHECK (id = 1),
    seq            bigint  NOT NULL,
    pruned_through bigint  NOT NULL
);
INSERT INTO change_log (id, seq, pruned_through) VALUES (1, 0, 0);

CREATE TABLE changes (
    seq            bigint      NOT NULL,
    kind           text        NOT NULL,
    op             text        NOT NULL,
    id             text        NOT NULL,
    application_id text        NOT NULL,
    changed_at     timestamptz NOT NULL
);
CREATE INDEX changes_seq ON changes (seq);
CREATE INDEX changes_changed_at ON changes (changed_at);

-- +goose Down
DROP TABLE changes;
DROP TABLE change_log;
DROP TABLE tokens;
DROP TABLE endpoints;
DROP TABLE applications;
