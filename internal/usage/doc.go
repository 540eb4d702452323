// Package usage reads and writes usage events in columns: Parquet files
// with the columns time (a UTC timestamp), tenant, resource and user, and
// NDJSON files of usage events, both as batches whose strings are indexes
// into per-batch dictionaries. A platform's month of usage is hundreds of
// millions of rows; batches let the engine map each distinct string once
// per batch instead of once per row, and never hold a whole file.
package usage
