package ring

import (
	"fmt"
	"time"
)

// MemberState is a member's liveness as this node sees it.
//
// Wire enum: it is published to other packages and the simulator's traces.
// Append new states at the end; never renumber or reuse a value.
type MemberState uint8

const (
	// MemberAlive: the member answers probes (or just joined).
	MemberAlive MemberState = 1
	// MemberSuspect: a probe failed and the cluster is confirming. It is
	// still a member: nothing moves. memberlist reports no event when
	// suspicion starts, so OnChange never carries this state; Members does.
	MemberSuspect MemberState = 2
	// MemberDead: the member was confirmed unreachable. Its partitions stay
	// where they are for DeadNodeGrace (hinted handoff covers the gap).
	MemberDead MemberState = 3
	// MemberLeft: the member announced a graceful leave. Its partitions are
	// handed to the others at once.
	MemberLeft MemberState = 4
)

// String returns the state's lower-case name.
func (s MemberState) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberSuspect:
		return "suspect"
	case MemberDead:
		return "dead"
	case MemberLeft:
		return "left"
	default:
		return fmt.Sprintf("state(%d)", uint8(s))
	}
}

// Member is one cluster member as this node sees it.
type Member struct {
	ID NodeID
	// GossipAddr is the member's memberlist address (host:port).
	GossipAddr string
	// RPCAddr is where the member takes node-to-node replication traffic
	// (host:port); empty if it did not publish one.
	RPCAddr string
	// HTTPAddr is where the member serves the device API (host:port);
	// empty if it did not publish one.
	HTTPAddr string
	// RaftAddr is the member's ring-configuration raft transport (host:port);
	// empty if it does not run raft. The ring leader adds the member to the
	// raft group at this address.
	RaftAddr string
	// State is the member's liveness.
	State MemberState
	// Since is when State began, in milliseconds since the Unix epoch, as
	// observed by this node's clock (not the member's). For a Suspect member
	// it is when the member last became alive.
	Since int64
}

// MemberChangeFunc is called with a member's new view after it changed:
// joined (Alive), left gracefully (Left), was declared dead (Dead), came
// back (Alive again) or published new addresses.
//
// Contract: calls come from one goroutine owned by the Membership, in the
// order of the changes, never concurrently. Changes that arrive while a call
// is running are coalesced per member: the next call carries the member's
// latest view, so a slow callback can miss an intermediate state but never
// the final one. The callback must not block for long (it delays later
// changes) and must not call Leave or Shutdown; calling Members is fine.
type MemberChangeFunc func(Member)

// Membership is the cluster membership as this node sees it: who is in the
// cluster, at which addresses, and whether they are alive. Production uses
// Memberlist (hashicorp/memberlist); the simulator substitutes its own.
//
// Implementations are safe for concurrent use. Members and LocalID never
// block on the network; Join and Leave do (bounded by their arguments and
// the transport's timeouts). Changes are delivered through a
// MemberChangeFunc given in the implementation's configuration.
type Membership interface {
	// Members returns every member this node has seen since it started,
	// itself included, sorted by ID: alive and suspect ones, and dead or
	// left ones with the time they went. The slice is the caller's.
	Members() []Member
	// Join contacts the seeds (host:port each) and merges their view of the
	// cluster. It returns how many seeds answered; the error is non-nil
	// only when none did (then this node is not joined).
	Join(seeds []string) (int, error)
	// Leave announces a graceful leave and waits up to timeout for the
	// announcement to go out. The node keeps gossiping until Shutdown, so
	// call Leave, then Shutdown.
	Leave(timeout time.Duration) error
	// Shutdown stops all network activity and the change deliveries. Other
	// members will see this node as dead unless it called Leave first. It is
	// safe to call more than once.
	Shutdown() error
	// LocalID returns this node's ID.
	LocalID() NodeID
}
