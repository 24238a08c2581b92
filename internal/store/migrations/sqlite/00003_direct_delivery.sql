-- Direct delivery: the messages made from accepted events, one delivery per
-- message and endpoint, and every attempt to deliver one. The PostgreSQL
-- schema (../postgres) has the same tables, columns and indexes. The delivery
-- jobs themselves are River's (river_job), in River's own schema.

-- +goose Up

-- One message per accepted event and application; the body is the event
-- exactly as accepted. The same event twice for an application is one
-- message.
CREATE TABLE messages (
    id             TEXT NOT NULL PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    event_id       TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    body           BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    UNIQUE (application_id, event_id)
) STRICT;
CREATE INDEX messages_page ON messages (application_id, created_at, id);

-- The state of a message's delivery to one endpoint. No foreign key to the
-- endpoint: the record outlives a deleted endpoint.
CREATE TABLE deliveries (
    message_id  TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts    INTEGER NOT NULL,
    last_error  TEXT    NOT NULL, -- '' for none
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (message_id, endpoint_id)
) STRICT;

-- Every attempt to deliver a message to an endpoint.
CREATE TABLE delivery_attempts (
    id              TEXT    NOT NULL PRIMARY KEY,
    message_id      TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id     TEXT    NOT NULL,
    created_at      TEXT    NOT NULL, -- when the attempt started
    response_status INTEGER,          -- NULL: no response
    duration_ms     INTEGER NOT NULL,
    error           TEXT    NOT NULL, -- '' for none
    response_body   BLOB    NOT NULL  -- the first KiB
) STRICT;
CREATE INDEX delivery_attempts_page ON delivery_attempts (message_id, created_at, id);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE messages;
