-- Several processes share the tenants by buckets (SPEC.md section 10).
-- The number of buckets, fixed when the first process sets it.
CREATE TABLE bucket_count (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    buckets INTEGER NOT NULL
);
-- A lease a bucket: its owner ('' when none), the epoch raised each time
-- it is taken, and when the lease expires (nanoseconds since 1970).
CREATE TABLE bucket_leases (
    bucket INTEGER PRIMARY KEY,
    owner TEXT NOT NULL DEFAULT '',
    epoch BIGINT NOT NULL DEFAULT 0,
    expires_ns BIGINT NOT NULL DEFAULT 0
);
-- The processes alive, and where the others reach them.
CREATE TABLE bucket_members (
    id TEXT PRIMARY KEY,
    addr TEXT NOT NULL,
    expires_ns BIGINT NOT NULL
);
-- A bucket's fold, written by the owner of epoch under the lease's check.
CREATE TABLE bucket_checkpoints (
    bucket INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    data BYTEA NOT NULL
);
