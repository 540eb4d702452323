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
-- pal's writers note the tenants they append, a statement a write, and
-- say so (pal.tenants_noted, for their transaction). A writer of a version
-- that predates this table, still running during an upgrade, does not:
-- the database notes the tenants of its records, one by one.
CREATE FUNCTION note_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenants (tenant, bucket, first_seq) VALUES (NEW.tenant, NEW.bucket, NEW.seq)
    ON CONFLICT (tenant) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_note_tenant AFTER INSERT ON events FOR EACH ROW
WHEN (NEW.tenant <> '' AND current_setting('pal.tenants_noted', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION note_tenant();
