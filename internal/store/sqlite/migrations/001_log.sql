CREATE TABLE events (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	id      TEXT UNIQUE,
	type    TEXT NOT NULL,
	time_ns INTEGER NOT NULL,
	tenant  TEXT NOT NULL,
	body    TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (time_ns, seq);

CREATE TABLE snapshot (
	one  INTEGER PRIMARY KEY CHECK (one = 1),
	seq  INTEGER NOT NULL,
	data BLOB NOT NULL
);

CREATE TABLE tokens (
	hash       TEXT PRIMARY KEY,
	role       TEXT NOT NULL,
	tenant     TEXT NOT NULL,
	account    TEXT NOT NULL,
	org        TEXT NOT NULL,
	created_ns INTEGER NOT NULL
);
