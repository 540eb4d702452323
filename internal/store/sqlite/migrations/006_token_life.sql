-- Tokens end: each has an identifier that is not secret, an expiry, and can
-- be revoked; the last time it was used is kept (to the minute). Tokens
-- issued before expire 90 days after they were made.
ALTER TABLE tokens ADD COLUMN id TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN expires_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_used_ns INTEGER NOT NULL DEFAULT 0;
UPDATE tokens SET id = 'tok_' || substr(hash, 1, 16), expires_ns = created_ns + 90 * 86400 * 1000000000;
CREATE UNIQUE INDEX tokens_by_id ON tokens (id);
