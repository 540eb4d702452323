package server

// SetCatchUpChunk makes catchUp hold n records at a time, until the
// returned function restores it.
func SetCatchUpChunk(n int) (restore func()) {
	old := catchUpChunk
	catchUpChunk = n
	return func() { catchUpChunk = old }
}
