// Package sqlite is the embedded backend of pal's store: one SQLite file,
// through the cgo-free modernc.org/sqlite driver. Writers take the file's
// write lock at the start of their transaction (BEGIN IMMEDIATE), so that
// several processes on one file append in turn.
package sqlite
