-- A delivery whose first attempt is being made by the replica that accepted
-- its event has no River job: recover_at says when any replica is to give
-- it one (Store.RecoverDeliveries), should that replica die before it
-- records the attempt; after a first attempt to retry, it is the retry's
-- time. NULL: a River job carries the delivery, or it is over. The partial
-- index holds only the deliveries waiting so, a few per webhook in flight.
-- The SQLite schema (../sqlite) has the same column and index.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN recover_at timestamptz;
CREATE INDEX deliveries_recover ON deliveries (recover_at) WHERE recover_at IS NOT NULL;

-- +goose Down
DROP INDEX deliveries_recover;
ALTER TABLE deliveries DROP COLUMN recover_at;
