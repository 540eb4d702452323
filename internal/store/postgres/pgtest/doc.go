// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema on the server named by PAL_TEST_POSTGRES_URL, dropped when the test
// ends. Without that variable the test is skipped, saying why; CI always
// sets it.
package pgtest
