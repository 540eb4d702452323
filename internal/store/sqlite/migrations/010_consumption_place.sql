-- A segment's place in the log: the sequence number of the log's last
-- record when it was kept. Of an azure.consumption record of the log and
-- a pushed row reported at the same instant, for the same resource, day
-- and meter, the later in that order replaces the other.
ALTER TABLE consumption_segments ADD COLUMN after_seq INTEGER NOT NULL DEFAULT 0;
