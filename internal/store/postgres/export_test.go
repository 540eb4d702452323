package postgres

// SetScanPage makes scans of the log ask n records a query, and returns
// what sets it back.
func SetScanPage(n int) (restore func()) {
	was := scanPage
	scanPage = n
	return func() { scanPage = was }
}
