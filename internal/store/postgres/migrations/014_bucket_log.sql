-- Each record is stored with its tenant's bucket (SPEC.md section 10), so
-- that a process reads only the records of the buckets it holds; NULL for
-- the directory's, which every process reads, and for the records stored
-- before, which every process reads too.
ALTER TABLE events ADD COLUMN bucket INTEGER;
-- The records of the log by the day of their time, and by bucket (-1: of
-- none), so that writers of different buckets count apart: what comes in,
-- which no process reads every record to count any more.
CREATE TABLE log_days (
    day TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (day, bucket)
);
INSERT INTO log_days (day, bucket, events)
SELECT to_char(DATE '1970-01-01' + floor(time_ns::numeric / 86400000000000)::integer, 'YYYY-MM-DD'), -1, count(*)
FROM events GROUP BY 1;
