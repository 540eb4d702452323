-- A tenant's events in time order, for the service to fold one tenant again
-- without reading the others' (events_by_tenant serves a tenant's export).
CREATE INDEX events_by_tenant_time ON events (tenant, time_ns, seq);
