-- Filters and event counts. The SQLite schema (../sqlite) has the same
-- tables, columns and indexes.

-- +goose Up

-- The one filter of an application, deleted with it.
CREATE TABLE filters (
    application_id text        PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    include_types  jsonb,       -- a JSON array of patterns; NULL: every event type
    exclude_types  jsonb,       -- a JSON array of patterns; NULL: none
    expression     text        NOT NULL, -- a CEL expression; '' for none
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX filters_page ON filters (created_at, application_id);

-- Events counted per application and minute: minute is the Unix time in
-- seconds of the minute's start. The counts are integers, so that sums are
-- exact on both databases. No foreign key: events of applications that are
-- not (or no longer) in the database are counted too.
CREATE TABLE stats_minute (
    application_id text   NOT NULL,
    minute         bigint NOT NULL,
    forwarded      bigint NOT NULL,
    filtered       bigint NOT NULL,
    duplicate      bigint NOT NULL,
    dead_lettered  bigint NOT NULL,
    rejected       bigint NOT NULL,
    failed         bigint NOT NULL,
    PRIMARY KEY (application_id, minute)
);
CREATE INDEX stats_minute_minute ON stats_minute (minute);

-- The same counts per application and UTC day (day: the Unix time in
-- seconds of midnight), kept longer than the minutes.
CREATE TABLE stats_day (
    application_id text   NOT NULL,
    day            bigint NOT NULL,
    forwarded      bigint NOT NULL,
    filtered       bigint NOT NULL,
    duplicate      bigint NOT NULL,
    dead_lettered  bigint NOT NULL,
    rejected       bigint NOT NULL,
    failed         bigint NOT NULL,
    PRIMARY KEY (application_id, day)
);
CREATE INDEX stats_day_day ON stats_day (day);

-- +goose Down
DROP TABLE stats_day;
DROP TABLE stats_minute;
DROP TABLE filters;
