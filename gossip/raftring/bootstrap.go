package raftring

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// BootstrapNow founds a single-server ring group with this node if it has
// no raft state yet (for --bootstrap-expect: the node that founds the
// cluster once enough members are seen). With state, or when another
// bootstrap won, it does nothing.
func (r *Ring) BootstrapNow() error {
	boot := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(r.cfg.NodeID), Address: r.trans.LocalAddr(),
	}}}
	if err := r.raft.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("raftring: bootstrapping the ring: %w", err)
	}
	return nil
}

// HasState reports whether this node belongs to a ring group: it has a
// leader or a configuration with servers.
func (r *Ring) HasState() bool {
	if addr, _ := r.raft.LeaderWithID(); addr != "" {
		return true
	}
	f := r.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}
