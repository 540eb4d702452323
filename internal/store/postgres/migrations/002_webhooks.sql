CREATE TABLE webhooks (
	id         TEXT PRIMARY KEY,
	org        TEXT NOT NULL,
	url        TEXT NOT NULL,
	secret     TEXT NOT NULL,
	created_ns BIGINT NOT NULL,
	cursor_seq BIGINT NOT NULL DEFAULT 0,
	cursor_k   INTEGER NOT NULL DEFAULT 0,
	-- The process delivering to the webhook, until when.
	lease_owner    TEXT NOT NULL DEFAULT '',
	lease_until_ns BIGINT NOT NULL DEFAULT 0
);
