// Package ringtest builds ring members and servers for the tests of the
// packages around the ring (the raft reconciler, the simulator).
package ringtest

import "github.com/playhead/playhead/gossip/ring"

// Alive is member id, alive since the given time, with a raft address
// derived from its id.
func Alive(id string, since int64) ring.Member {
	return ring.Member{ID: ring.NodeID(id), RaftAddr: id + ":7947", State: ring.MemberAlive, Since: since}
}

// WithState is m in state s since the given time.
func WithState(m ring.Member, s ring.MemberState, since int64) ring.Member {
	m.State, m.Since = s, since
	return m
}

// Voters are raft voters with the given ids and derived addresses.
func Voters(ids ...string) []ring.Server {
	out := make([]ring.Server, len(ids))
	for i, id := range ids {
		out[i] = ring.Server{ID: ring.NodeID(id), Addr: id + ":7947", Voter: true}
	}
	return out
}
