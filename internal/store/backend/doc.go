// Package backend opens the store a --db value names. It is the one place
// where the backend is chosen: a postgres:// URL is PostgreSQL, anything
// else without a scheme is the path of an SQLite file.
package backend
