package raftring

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ErrHasRingState: BootstrapNow on a node whose data directory held raft
// state when it started. Such a node was part of a ring: founding a new one
// would split the cluster in two rings that never merge. It must rejoin the
// ring it belonged to (the leader adds it back when membership sees it).
var ErrHasRingState = errors.New("raftring: this node has ring state from before; it rejoins its cluster and never founds a new one")

// BootstrapNow founds a single-server ring group with this node if it has
// no raft state (for --bootstrap-expect: the node that founds the cluster
// once enough members are seen). A node that had raft state when it opened
// gets ErrHasRingState and changes nothing, whatever the state looks like
// now; when another bootstrap won meanwhile, it does nothing.
func (r *Ring) BootstrapNow() error {
	if r.hadState {
		return ErrHasRingState
	}
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

// HadState reports whether the data directory held raft state when the
// ring opened: the node was part of a ring before and may never found one.
func (r *Ring) HadState() bool { return r.hadState }

// InContact reports whether this node is part of a working ring group now:
// it is the leader (which steps down within LeaderLeaseTimeout when it loses
// its quorum), or it heard from a leader within 10 × HeartbeatTimeout
// (10 s at the defaults, 3 s with loopback timings; an election in between
// does not count as lost contact). A node just restarted, cut off from the
// group, or removed from it is not in contact: it must not serve profiles
// from its copy of the table, which may be stale.
func (r *Ring) InContact() bool {
	if r.raft.State() == raft.Leader {
		return true
	}
	last := r.raft.LastContact()
	return !last.IsZero() && time.Since(last) <= 10*r.cfg.HeartbeatTimeout
}
