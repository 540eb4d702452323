-- Writers of different buckets append at once (SPEC.md section 10): a
-- record's number is drawn from the log's sequence while its bucket is
-- locked, rather than read from the last record under one lock. The
-- sequence goes on from the records already kept.
SELECT setval(pg_get_serial_sequence('events', 'seq'), greatest(max(seq), 1), max(seq) IS NOT NULL) FROM events;
