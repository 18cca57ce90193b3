// Package raftring is the I/O edge that keeps the ring configuration in raft
// (hashicorp/raft with raft-boltdb): the FSM over ring.State, the raft
// adapter, bootstrap, the hclog-to-slog bridge, and the reconciler goroutine
// that runs the sans-I/O ring.Controller on the leader. It starts
// goroutines and reads the wall clock; the simulator does not link it.
package raftring
