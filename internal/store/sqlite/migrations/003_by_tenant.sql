-- A tenant's events, for the service to fold one tenant again without
-- reading the others', and to export a tenant's log.
CREATE INDEX events_by_tenant ON events (tenant, time_ns, seq);
