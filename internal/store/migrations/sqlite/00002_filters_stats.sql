-- Filters and event counts. The PostgreSQL schema (../postgres) has the same
-- tables, columns and indexes. The count tables are WITHOUT ROWID: their
-- rows live in the primary key's b-tree, which every upsert looks up.

-- +goose Up

-- The one filter of an application, deleted with it.
CREATE TABLE filters (
    application_id TEXT NOT NULL PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    include_types  TEXT, -- a JSON array of patterns; NULL: every event type
    exclude_types  TEXT, -- a JSON array of patterns; NULL: none
    expression     TEXT NOT NULL, -- a CEL expression; '' for none
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE INDEX filters_page ON filters (created_at, application_id);

-- Events counted per application and minute: minute is the Unix time in
-- seconds of the minute's start. No foreign key: events of applications
-- that are not (or no longer) in the database are counted too.
CREATE TABLE stats_minute (
    application_id TEXT    NOT NULL,
    minute         INTEGER NOT NULL,
    forwarded      INTEGER NOT NULL,
    filtered       INTEGER NOT NULL,
    duplicate      INTEGER NOT NULL,
    dead_lettered  INTEGER NOT NULL,
    rejected       INTEGER NOT NULL,
    failed         INTEGER NOT NULL,
    PRIMARY KEY (application_id, minute)
) STRICT, WITHOUT ROWID;
CREATE INDEX stats_minute_minute ON stats_minute (minute);

-- The same counts per application and UTC day (day: the Unix time in
-- seconds of midnight), kept longer than the minutes.
CREATE TABLE stats_day (
    application_id TEXT    NOT NULL,
    day            INTEGER NOT NULL,
    forwarded      INTEGER NOT NULL,
    filtered       INTEGER NOT NULL,
    duplicate      INTEGER NOT NULL,
    dead_lettered  INTEGER NOT NULL,
    rejected       INTEGER NOT NULL,
    failed         INTEGER NOT NULL,
    PRIMARY KEY (application_id, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX stats_day_day ON stats_day (day);

-- +goose Down
DROP TABLE stats_day;
DROP TABLE stats_minute;
DROP TABLE filters;
