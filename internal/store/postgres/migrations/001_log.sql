-- The log. Distributed PostgreSQL-compatible databases can shard events by
-- tenant; seq stays the one order of the log.
CREATE TABLE events (
	seq     BIGSERIAL PRIMARY KEY,
	id      TEXT UNIQUE,
	type    TEXT NOT NULL,
	time_ns BIGINT NOT NULL,
	tenant  TEXT NOT NULL,
	body    TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (time_ns, seq);
CREATE INDEX events_by_tenant ON events (tenant, seq);

CREATE TABLE snapshot (
	one  INTEGER PRIMARY KEY CHECK (one = 1),
	seq  BIGINT NOT NULL,
	data BYTEA NOT NULL
);

CREATE TABLE tokens (
	hash       TEXT PRIMARY KEY,
	role       TEXT NOT NULL,
	tenant     TEXT NOT NULL,
	account    TEXT NOT NULL,
	org        TEXT NOT NULL,
	created_ns BIGINT NOT NULL
);
