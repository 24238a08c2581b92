-- The retention of direct delivery's records (MESSAGE_RETENTION): each
-- replica deletes, once an hour, the messages accepted before the cutoff,
-- oldest first, in batches. This index lets each batch start at the oldest
-- message instead of reading the whole table, which holds every message
-- of the retention period. The PostgreSQL schema (../postgres) has the same
-- index.

-- +goose Up
CREATE INDEX messages_created ON messages (created_at, id);

-- +goose Down
DROP INDEX messages_created;
