-- Each tenant of the log once, with its bucket and its first record: a
-- process that takes buckets lists their tenants from here, rather than
-- reading every record of the log. The bucket is NULL for a tenant stored
-- only before the number of buckets was fixed.
CREATE TABLE tenants (
    tenant TEXT PRIMARY KEY,
    bucket INTEGER,
    first_seq BIGINT NOT NULL
);
CREATE INDEX tenants_by_bucket ON tenants (bucket, first_seq);
INSERT INTO tenants (tenant, bucket, first_seq)
SELECT tenant, max(bucket), min(seq) FROM events WHERE tenant <> '' GROUP BY tenant;
-- The tenants new to the log are noted by the database as each statement
-- appends records, whichever version of pal appends them: one that
-- predates this table, still running during an upgrade, writes the log
-- without knowing of it.
CREATE FUNCTION note_tenants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenants (tenant, bucket, first_seq)
    SELECT tenant, max(bucket), min(seq) FROM appended WHERE tenant <> '' GROUP BY tenant
    ON CONFLICT (tenant) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_note_tenants AFTER INSERT ON events
REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION note_tenants();
