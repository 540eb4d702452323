package postgres

// SetScanPage makes scans of the log ask n records a query, and returns
// what sets it back.
func SetScanPage(n int) (restore func()) {
	was := scanPage
	scanPage = n
	return func() { scanPage = was }
}

// MigrateUpTo makes Open apply the migrations up to the one named, and
// returns what sets it back.
func MigrateUpTo(name string) (restore func()) {
	was := migrateUpTo
	migrateUpTo = name
	return func() { migrateUpTo = was }
}
