-- The feed of credit changes, filed by the writer that committed the records
-- causing them, in the same transaction: every replica and every restart
-- reads the same feed, and no process keeps it in memory.
CREATE TABLE changes (
	seq    INTEGER NOT NULL,
	k      INTEGER NOT NULL,
	tenant TEXT NOT NULL,
	body   TEXT NOT NULL,
	PRIMARY KEY (seq, k)
);
CREATE INDEX changes_by_tenant ON changes (tenant, seq, k);
-- The organisations each change concerns (credit lost or gained).
CREATE TABLE change_orgs (
	org TEXT NOT NULL,
	seq INTEGER NOT NULL,
	k   INTEGER NOT NULL,
	PRIMARY KEY (org, seq, k)
);
