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
// it is the leader and a quorum confirmed it recently (the contact loop
// asks every HeartbeatTimeout/4), or it heard from a leader recently;
// "recently" is within 10 × HeartbeatTimeout (10 s at the defaults, 3 s
// with loopback timings; an election in between does not count as lost
// contact), and after the process last stalled (a SIGSTOP, a VM pause: a
// leader that wakes up still believes it leads until its lease check). A
// node just restarted, cut off from the group, or removed from it is not in
// contact (after a stall, only a contact 2 × HeartbeatTimeout after it was
// noticed counts, as messages queued meanwhile are stale): it must not
// serve profiles from its copy of the table, which may
// be stale.
func (r *Ring) InContact() bool {
	window := 10 * r.cfg.HeartbeatTimeout
	if time.Since(time.UnixMilli(r.tickMs.Load())) > r.cfg.HeartbeatTimeout {
		return false // stalled just now: the contact loop has not caught up
	}
	stalled := time.UnixMilli(r.stalledMs.Load())
	var last time.Time
	if r.raft.State() == raft.Leader {
		last = time.UnixMilli(r.verifiedMs.Load())
	} else {
		last = r.raft.LastContact()
	}
	// Messages queued in the sockets while the process was stalled are read
	// the moment it resumes, possibly before the stall is noticed: only a
	// contact well after the stall counts.
	return !last.IsZero() && last.After(stalled.Add(2*r.cfg.HeartbeatTimeout)) && time.Since(last) <= window
}

// contact is the goroutine that notices stalls of the process (see
// InContact).
func (r *Ring) contact() {
	defer r.wg.Done()
	period := max(r.cfg.HeartbeatTimeout/4, time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	r.tickMs.Store(time.Now().UnixMilli())
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
			now := time.Now()
			if now.Sub(time.UnixMilli(r.tickMs.Load())) > r.cfg.HeartbeatTimeout {
				r.stalledMs.Store(now.UnixMilli())
			}
			r.tickMs.Store(now.UnixMilli())
		}
	}
}

// verify is the goroutine that, on the leader, has a quorum confirm the
// leadership every HeartbeatTimeout/4 (see InContact).
func (r *Ring) verify() {
	defer r.wg.Done()
	tick := time.NewTicker(max(r.cfg.HeartbeatTimeout/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		if r.raft.State() == raft.Leader {
			asked := time.Now()
			if r.raft.VerifyLeader().Error() == nil {
				r.verifiedMs.Store(asked.UnixMilli())
			}
		}
	}
}
