-- The owners of the buckets file the feed (SPEC.md section 10). Each files
-- its own tenants' changes, numbered apart by bucket within the record that
-- caused them (the bucket in the number's high 32 bits), and notes up to
-- which record it filed its buckets' changes: the feed is read up to the
-- lowest of those notes, below which no change is filed later.
ALTER TABLE changes ALTER COLUMN k TYPE BIGINT;
ALTER TABLE change_orgs ALTER COLUMN k TYPE BIGINT;
ALTER TABLE webhooks ALTER COLUMN cursor_k TYPE BIGINT;
ALTER TABLE bucket_leases ADD COLUMN filed BIGINT NOT NULL DEFAULT 0;
-- Until now the writer of each record filed its changes with it: every
-- record of the log has its changes filed.
UPDATE bucket_leases SET filed = (SELECT coalesce(max(seq), 0) FROM events);
-- The key with which the processes ask each other what only an owner
-- knows, made by the first that needs it.
CREATE TABLE bucket_key (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    key TEXT NOT NULL
);
-- The present of the log (the latest instant applied), which each owner
-- knows of its own tenants only: the latest any of them knows.
CREATE TABLE bucket_present (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    ns BIGINT NOT NULL
);
