// Package postgres is the production backend of pal's store, on PostgreSQL
// through pgx. Writers serialise on a transaction-scoped advisory lock, so
// that several pal processes on one database append in turn and sequence
// numbers are committed in order.
package postgres
