// Package e2e is playhead's Jepsen-style suite: a 5-node cluster of real
// `playhead serve` processes, each in its own container built FROM scratch
// from a static binary, on a private Docker network, while clients in the
// test process write, read and subscribe through every node and a nemesis
// cuts, splits, kills, freezes and restarts nodes.
//
// The history of every phase (one per nemesis) goes to history.jsonl and the
// checker's verdict to verdict.txt under the test's artifact directory; the
// checker (checker.go) has the simulator's semantics (cluster-sim/run.go,
// cluster-sim/push.go) over what clients can observe through the API.
// docs/E2E.md explains how to run it and how to read a failure.
//
// The checker is plain code with unit tests over hand-written histories
// (checker_test.go), so that each rule is shown to catch its violation
// without Docker.
package e2e
