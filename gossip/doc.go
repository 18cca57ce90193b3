// Package gossip owns how a profile's records are placed, written, read and
// replicated: the ring (partitions to owners), the coordinator that turns
// device requests into CRDT deltas and applies them to the owners (quorums),
// replication of deltas, anti-entropy, hinted handoff and interest routing
// for push. memberlist and raft adapters live at its edge.
//
// The coordination logic is sans-I/O in the sense of DESIGN.md §5: time comes
// from an injected Clock, storage is the storage.Store interface, and nothing
// here starts goroutines. The node wraps it with HTTP; the simulator drives it
// directly.
package gossip
