-- When each endpoint's unbroken run of failed delivery attempts began:
-- direct delivery disables an endpoint that has failed every attempt for
-- DELIVERY_DISABLE_AFTER. The SQLite schema (../sqlite) has the same column.

-- +goose Up
-- NULL: the last attempt succeeded, or there was none.
ALTER TABLE endpoints ADD COLUMN failing_since timestamptz;

-- +goose Down
ALTER TABLE endpoints DROP COLUMN failing_since;
