// Package wallclock is the wall clock of the I/O edges (never of the core).
package wallclock

import "time"

// edgeWallClock is the wall clock, for the adapters at the edge.
type Clock struct{}

func (Clock) NowMs() int64 { return time.Now().UnixMilli() }
