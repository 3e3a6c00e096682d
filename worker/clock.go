package worker

import "sync/atomic"

// Clock is a Lamport clock (kombu LamportClock): one per worker, shared by
// events, remote control and mingle. Safe for concurrent use.
type Clock struct{ v atomic.Int64 }

// Value is the current value.
func (c *Clock) Value() int64 { return c.v.Load() }

// Forward increments the clock and returns the new value.
func (c *Clock) Forward() int64 { return c.v.Add(1) }

// Adjust sets the clock to max(own, other)+1 and returns it.
func (c *Clock) Adjust(other int64) int64 {
	for {
		cur := c.v.Load()
		next := max(cur, other) + 1
		if c.v.CompareAndSwap(cur, next) {
			return next
		}
	}
}
