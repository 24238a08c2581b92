-- Direct delivery: the messages made from accepted events, one delivery per
-- message and endpoint, and every attempt to deliver one. The SQLite schema
-- (../sqlite) has the same tables, columns and indexes. The delivery jobs
-- themselves are River's (river_job), in River's own schema.

-- +goose Up

-- One message per accepted event and application; the body is the event
-- exactly as accepted. The same event twice for an application is one
-- message.
CREATE TABLE messages (
    id             text        PRIMARY KEY,
    application_id text        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    event_id       text        NOT NULL,
    event_type     text        NOT NULL,
    body           bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    UNIQUE (application_id, event_id)
);
CREATE INDEX messages_page ON messages (application_id, created_at, id);

-- The state of a message's delivery to one endpoint. No foreign key to the
-- endpoint: the record outlives a deleted endpoint.
CREATE TABLE deliveries (
    message_id  text        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts    integer     NOT NULL,
    last_error  text        NOT NULL, -- '' for none
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (message_id, endpoint_id)
);

-- Every attempt to deliver a message to an endpoint.
CREATE TABLE delivery_attempts (
    id              text        PRIMARY KEY,
    message_id      text        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    endpoint_id     text        NOT NULL,
    created_at      timestamptz NOT NULL, -- when the attempt started
    response_status integer,              -- NULL: no response
    duration_ms     bigint      NOT NULL,
    error           text        NOT NULL, -- '' for none
    response_body   bytea       NOT NULL  -- the first KiB
);
CREATE INDEX delivery_attempts_page ON delivery_attempts (message_id, created_at, id);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE messages;
