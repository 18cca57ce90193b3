// Package crdt holds playhead's data types and every merge rule: the hybrid
// logical clock (HLC), the resume cursor (a max-register ordered by
// (epoch, seq, session)), history entries, session records, per-video and
// per-profile deletion registers, and the thresholds that decide what is
// resumable.
//
// Nothing in this package does I/O, reads the clock or starts goroutines:
// physical time is always an argument. That is what lets the same code run in
// production nodes, in the device SDK and inside the deterministic simulator.
//
// Every merge here is a join of a semilattice: commutative, associative and
// idempotent (checked by the property tests in merge_prop_test.go). Replicas
// and devices that have seen the same set of updates, in any order and with
// any duplication, hold identical values.
package crdt
