// Package gen makes deterministic, realistic data sets at platform scale:
// a control log (log v1 without usage) and a Parquet file of usage sorted
// by time. Realistic means skewed: a few large customers and many small
// ones, a Zipf spread of app popularity and of partners' customers,
// co-development, hand-overs, service principals, sandboxes promoted to
// production, accounts disabled, links changed.
package gen
