-- The records of the log by the day of their time: what comes in, counted
-- as records are appended rather than by a fold of every record.
CREATE TABLE log_days (
    day TEXT PRIMARY KEY,
    events INTEGER NOT NULL
);
INSERT INTO log_days (day, events)
SELECT date((time_ns - ((time_ns % 86400000000000) + 86400000000000) % 86400000000000) / 1000000000, 'unixepoch'), count(*)
FROM events GROUP BY 1;
