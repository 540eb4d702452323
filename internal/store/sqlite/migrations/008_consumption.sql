-- pal serve keeps azure.consumption records out of the log, as segments:
-- each the rows of one push for one month, a Parquet file sorted by
-- tenant, resource, day and meter (usage.CostRow). A month's report reads
-- that month's segments only. consumption_resources lists the resources
-- that have any, numbered as they were first noted, which every process's
-- state lists among a tenant's.
CREATE TABLE consumption_segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    month TEXT NOT NULL,
    rows INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX consumption_segments_by_month ON consumption_segments (month, id);
CREATE TABLE consumption_resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    resource TEXT NOT NULL,
    UNIQUE (tenant, resource)
);
