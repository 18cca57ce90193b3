package raftring

import (
	"errors"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/internal/edgetest"
	"github.com/playhead/playhead/gossip/ring"
)

// TestRaftRingOldStateNeverFounds: a node restarted alone with the ring
// state of a cluster (its peers unreachable, as when both join seeds are
// killed and restart only each other) never founds a new ring, even when
// asked to bootstrap, and is not in contact; a brand-new node may found.
func TestRaftRingOldStateNeverFounds(t *testing.T) {
	nodes := startRingCluster(t, 3)
	onLeader(t, nodes, "SetMembers", func(r *Ring) error { return r.SetMembers([]ring.NodeID{"n1", "n2", "n3"}) })
	for _, nd := range nodes {
		edgetest.Eventually(t, 5*time.Second, func() string {
			if !nd.ring.InContact() {
				return string(nd.id) + " is not in contact with its ring"
			}
			return ""
		})
	}
	for _, nd := range nodes {
		if err := nd.ring.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	n1 := nodes[0]
	openRingNode(t, n1, true, nil) // --bootstrap on a node with state: ignored
	if !n1.ring.HadState() {
		t.Fatal("HadState is false after a restart with state")
	}
	if err := n1.ring.BootstrapNow(); !errors.Is(err, ErrHasRingState) {
		t.Fatalf("BootstrapNow on a node with old state: %v, want ErrHasRingState", err)
	}
	time.Sleep(2 * time.Second) // many election timeouts at loopback timings
	if n1.ring.IsLeader() || n1.ring.InContact() {
		t.Fatalf("n1 alone with 1 of 3 voters: leader %v, in contact %v", n1.ring.IsLeader(), n1.ring.InContact())
	}
	if s, _ := n1.ring.Servers(); len(s) != 3 {
		t.Fatalf("n1's servers changed to %+v", s)
	}

	fresh := &ringNode{id: "f1", dir: t.TempDir()}
	openRingNode(t, fresh, false, nil)
	if fresh.ring.HadState() {
		t.Fatal("a new node reports old state")
	}
	if err := fresh.ring.BootstrapNow(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, []*ringNode{fresh})
	if !fresh.ring.InContact() {
		t.Fatal("a leader is not in contact")
	}
}

// TestRaftRingRemovedServerComesBack: a server removed from the group (dead
// past the grace, as the reconciler does) is out of contact, and back in
// contact once the leader adds it again. (It does not tell apart raft's
// ShutdownOnRemove settings: the removed server here never receives the
// entry that removes it; Open turns the setting off for when it does.)
func TestRaftRingRemovedServerComesBack(t *testing.T) {
	nodes := startRingCluster(t, 3)
	n3 := nodes[2]
	leader := onLeader(t, nodes, "removing n3", func(r *Ring) error { return r.RemoveServer("n3") })
	edgetest.Eventually(t, 10*time.Second, func() string {
		if n3.ring.InContact() {
			return "n3 is still in contact after its removal"
		}
		return ""
	})
	onLeader(t, nodes, "adding n3 back", func(r *Ring) error { return r.AddServer("n3", n3.addr) })
	_ = leader
	edgetest.Eventually(t, 10*time.Second, func() string {
		if !n3.ring.InContact() {
			return "n3 is not in contact after being added back"
		}
		return ""
	})
	onLeader(t, nodes, "SetMembers", func(r *Ring) error { return r.SetMembers([]ring.NodeID{"n1", "n2", "n3"}) })
	edgetest.Eventually(t, 5*time.Second, func() string {
		if n3.ring.Table().Version == 0 {
			return "n3 never applied the table committed after its return"
		}
		return ""
	})
}
