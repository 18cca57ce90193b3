// Package layers holds no code: its tests enforce the package rules of
// docs/DESIGN.md §5 ("Packages": what each package must not import) and
// the sans-I/O rule of the core (no goroutines, wall clock, global
// randomness, sockets or files in crdt/, gossip/'s core, gossip/ring/ and
// cluster-sim/), so that a change that breaks them fails CI instead of
// being found in review.
package layers
