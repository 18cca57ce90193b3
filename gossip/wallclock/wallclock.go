// Package wallclock is the one wall clock of the process: the gossip.Clock
// that the node, the driver and the I/O edges (raft, memberlist, tcp) are
// given in production. The core never reads it directly; the simulator
// gives the same code a virtual clock instead.
package wallclock

import "time"

// Clock reads the wall clock in Unix milliseconds. It satisfies gossip.Clock.
type Clock struct{}

// NowMs returns the current wall time in Unix milliseconds.
func (Clock) NowMs() int64 { return time.Now().UnixMilli() }
