-- Fewer trees to update for each event appended: ids are unique where
-- present (most usage has none), nothing needs the whole log by time often
-- enough to keep an index for it, and a tenant's events are found through
-- events_by_tenant_time. Sequence numbers are given by the writer.
ALTER TABLE events DROP CONSTRAINT events_id_key;
CREATE UNIQUE INDEX events_by_id ON events (id) WHERE id IS NOT NULL;
DROP INDEX events_by_time;
DROP INDEX events_by_tenant;
