// Package leasetest holds what the tests of processes sharing buckets
// use: a clock that the test moves.
package leasetest

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when told: a lease.Options.Now that a
// test drives, so that leases expire when the test says.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to now.
func (c *Clock) Set(now time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}
