-- How many consumption records pushed as files the service stored, by
-- the day they were reported: what comes in besides the log's lines, for
-- the operator. Compacting segments leaves it as it is.
CREATE TABLE consumption_days (
    day TEXT PRIMARY KEY,
    rows INTEGER NOT NULL
);
