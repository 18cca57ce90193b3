// Package ring holds the pure rules of placement and membership: node ids,
// the partition table (partitions to owners) and how it is rebalanced, the
// replicated ring state and its encoding, the membership view, and the ring
// controller that decides ring changes from that view. Nothing here does I/O,
// reads a clock or starts goroutines: time comes in as arguments, so the
// simulator runs the same decisions as production.
package ring
