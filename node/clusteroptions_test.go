package node

import "testing"

// TestClusterOptionsDefaults: the raft and replication addresses default to
// the gossip address's host, each on its own port; replication and quorum
// take the one copy of their defaults.
func TestClusterOptionsDefaults(t *testing.T) {
	cases := []struct{ gossip, raft, rpc string }{
		{"", "0.0.0.0:7947", "0.0.0.0:7948"},
		{"10.0.0.5:7946", "10.0.0.5:7947", "10.0.0.5:7948"},
		{"[::1]:9000", "[::1]:7947", "[::1]:7948"},
	}
	for _, tc := range cases {
		o := ClusterOptions{GossipAddr: tc.gossip}
		o.EnsureDefaults()
		if o.RaftAddr != tc.raft || o.RPCAddr != tc.rpc {
			t.Errorf("gossip %q: raft %q rpc %q, want %q %q", tc.gossip, o.RaftAddr, o.RPCAddr, tc.raft, tc.rpc)
		}
		if o.Replication != 3 || o.WriteQuorum != 2 {
			t.Errorf("replication %d quorum %d, want 3 and 2", o.Replication, o.WriteQuorum)
		}
	}
	o := ClusterOptions{Keys: [][]byte{make([]byte, 32)}, WriteQuorum: -1}
	o.EnsureDefaults()
	if err := o.Validate(); err == nil {
		t.Error("a negative write quorum was accepted")
	}
}
