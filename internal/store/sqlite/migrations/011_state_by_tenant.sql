-- A tenant's fold reads the records that make its state without its usage
-- and profiles, which are credited from the state: a tenant of millions of
-- uses is folded again from its few hundred other records.
CREATE INDEX events_state_by_tenant ON events (tenant, time_ns, seq) WHERE type NOT IN ('usage', 'profiles');
