-- Each record is stored with its tenant's bucket (SPEC.md section 10), so
-- that a process reads only the records of the buckets it holds; NULL for
-- the directory's, which every process reads, and for the records stored
-- before, which every process reads too.
ALTER TABLE events ADD COLUMN bucket INTEGER;
-- The records of the log by the day of their time: what comes in, which
-- no process reads every record to count any more.
CREATE TABLE log_days (
    day TEXT PRIMARY KEY,
    events BIGINT NOT NULL
);
INSERT INTO log_days (day, events)
SELECT to_char(DATE '1970-01-01' + floor(time_ns::numeric / 86400000000000)::integer, 'YYYY-MM-DD'), count(*)
FROM events GROUP BY 1;
