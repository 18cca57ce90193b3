package raftring

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/internal/edgetest"
	"github.com/playhead/playhead/gossip/internal/ringtest"
	"github.com/playhead/playhead/gossip/memberlist"
	"github.com/playhead/playhead/gossip/ring"
)

// edgeFakeMembership is a Membership whose members the test sets.
type edgeFakeMembership struct {
	self    ring.NodeID
	mu      sync.Mutex
	members []ring.Member
}

func (f *edgeFakeMembership) set(ms ...ring.Member) {
	f.mu.Lock()
	f.members = slices.Clone(ms)
	f.mu.Unlock()
}
func (f *edgeFakeMembership) Members() []ring.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}
func (f *edgeFakeMembership) Join([]string) (int, error) { return 0, nil }
func (f *edgeFakeMembership) Leave(time.Duration) error  { return nil }
func (f *edgeFakeMembership) Shutdown() error            { return nil }
func (f *edgeFakeMembership) LocalID() ring.NodeID       { return f.self }

// edgeFakeRing is a raftring.Configurator held in memory.
type edgeFakeRing struct {
	mu      sync.Mutex
	leader  bool
	servers []ring.Server
	members []ring.NodeID
	runs    int // IsLeader calls: one per reconcile run
}

func (f *edgeFakeRing) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	return f.leader
}
func (f *edgeFakeRing) MaxVoters() int { return 5 }
func (f *edgeFakeRing) Servers() ([]ring.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.servers), nil
}
func (f *edgeFakeRing) RingMembers() []ring.NodeID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}
func (f *edgeFakeRing) AddServer(id ring.NodeID, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers = ring.PlanAddServer(f.servers, id, addr, 5).Apply(f.servers, id, addr)
	return nil
}
func (f *edgeFakeRing) RemoveServer(id ring.NodeID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers = slices.DeleteFunc(f.servers, func(s ring.Server) bool { return s.ID == id })
	return nil
}
func (f *edgeFakeRing) SetMembers(m []ring.NodeID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = slices.Clone(m)
	return nil
}
func (f *edgeFakeRing) state() (int, []ring.NodeID, []ring.NodeID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []ring.NodeID
	for _, s := range f.servers {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return f.runs, ids, slices.Clone(f.members)
}

type edgeFixedClock struct{ ms atomic.Int64 }

func (c *edgeFixedClock) NowMs() int64 { return c.ms.Load() }

// TestRingControllerReconciler: the wrapper acts only as leader, on Notify
// and on its ticker, with the time its clock gives, and stops cleanly.
func TestRingControllerReconciler(t *testing.T) {
	ms := &edgeFakeMembership{self: "n1"}
	ms.set(ringtest.Alive("n1", 0), ringtest.Alive("n2", 0), ringtest.Alive("n3", 0))
	fr := &edgeFakeRing{leader: true, servers: ringtest.Voters("n1"), members: []ring.NodeID{"n1"}}
	clock := &edgeFixedClock{}
	r, err := StartReconciler(ReconcilerConfig{
		Membership: ms, Ring: fr, Clock: clock, Interval: 20 * time.Millisecond,
		Controller: ring.ControllerConfig{DeadNodeGrace: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	all := []ring.NodeID{"n1", "n2", "n3"}
	edgetest.Eventually(t, 5*time.Second, func() string {
		if _, servers, members := fr.state(); !reflect.DeepEqual(servers, all) || !reflect.DeepEqual(members, all) {
			return fmt.Sprintf("servers %v, members %v", servers, members)
		}
		return ""
	})

	// n3 dies: nothing moves within the grace, everything after it.
	ms.set(ringtest.Alive("n1", 0), ringtest.Alive("n2", 0), ringtest.WithState(ringtest.Alive("n3", 0), ring.MemberDead, 1000))
	clock.ms.Store(1000 + 59_000)
	r.Notify()
	runs, _, _ := fr.state()
	edgetest.Eventually(t, 5*time.Second, func() string {
		if now, _, _ := fr.state(); now < runs+3 {
			return "reconciler does not run"
		}
		return ""
	})
	if _, servers, members := fr.state(); !reflect.DeepEqual(servers, all) || !reflect.DeepEqual(members, all) {
		t.Fatalf("moved within the grace: servers %v, members %v", servers, members)
	}
	clock.ms.Store(1000 + 60_000)
	edgetest.Eventually(t, 5*time.Second, func() string {
		if _, servers, members := fr.state(); !reflect.DeepEqual(servers, all[:2]) || !reflect.DeepEqual(members, all[:2]) {
			return fmt.Sprintf("after the grace: servers %v, members %v", servers, members)
		}
		return ""
	})

	// A follower changes nothing.
	fr.mu.Lock()
	fr.leader = false
	fr.mu.Unlock()
	ms.set(ringtest.Alive("n1", 0), ringtest.Alive("n2", 0), ringtest.Alive("n4", 0))
	runs, _, _ = fr.state()
	edgetest.Eventually(t, 5*time.Second, func() string {
		if now, _, _ := fr.state(); now < runs+3 {
			return "reconciler does not run"
		}
		return ""
	})
	if _, servers, _ := fr.state(); !reflect.DeepEqual(servers, all[:2]) {
		t.Fatalf("a follower changed the servers: %v", servers)
	}

	r.Stop()
	r.Stop()
	runs, _, _ = fr.state()
	r.Notify() // after Stop: no effect, no block
	time.Sleep(60 * time.Millisecond)
	if now, _, _ := fr.state(); now != runs {
		t.Fatalf("ran after Stop: %d runs, then %d", runs, now)
	}
}

// TestRingControllerEndToEnd wires the real parts as a node would:
// memberlist, the raft ring and the reconciler, on three loopback nodes.
// Joins fill the ring; a graceful leave empties it of the leaver.
func TestRingControllerEndToEnd(t *testing.T) {
	key := edgetest.Key(7)
	type node struct {
		ml   *memberlist.Memberlist
		ring *Ring
		rec  *Reconciler
	}
	nodes := make([]*node, 3)
	for i := range nodes {
		id := ring.NodeID(fmt.Sprintf("n%d", i+1))
		var rec atomic.Pointer[Reconciler]
		notify := func() {
			if r := rec.Load(); r != nil {
				r.Notify()
			}
		}
		rcfg := Config{
			NodeID: id, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: i == 0,
			Partitions: 128, OnLeader: func(bool) { notify() }, Logger: edgetest.Logger(),
		}
		rcfg.SetLoopbackTimings()
		rr, err := Open(rcfg)
		if err != nil {
			t.Fatal(err)
		}
		mcfg := memberlist.Config{
			NodeID: id, BindAddr: "127.0.0.1:0", RaftAddr: rr.Addr(), Keys: [][]byte{key},
			OnChange: func(ring.Member) { notify() }, Logger: edgetest.Logger(),
		}
		mcfg.SetLoopbackTimings()
		ml, err := memberlist.New(mcfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := StartReconciler(ReconcilerConfig{
			Membership: ml, Ring: rr, Interval: 100 * time.Millisecond, Logger: edgetest.Logger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		rec.Store(r)
		n := &node{ml: ml, ring: rr, rec: r}
		nodes[i] = n
		t.Cleanup(func() { // in a node's shutdown order
			n.rec.Stop()
			_ = n.ring.Shutdown()
			_ = n.ml.Shutdown()
		})
	}
	for _, n := range nodes[1:] {
		if _, err := n.ml.Join([]string{nodes[0].ml.GossipAddr()}); err != nil {
			t.Fatal(err)
		}
	}

	// agree waits until the given nodes hold the same table over members,
	// and the leader's raft group is exactly those members.
	agree := func(live []*node, members []ring.NodeID) {
		t.Helper()
		edgetest.Eventually(t, 10*time.Second, func() string {
			first := live[0].ring.Table()
			for _, n := range live {
				tb := n.ring.Table()
				if got := n.ring.RingMembers(); !reflect.DeepEqual(got, members) {
					return fmt.Sprintf("%s: ring members %v, want %v", n.ml.LocalID(), got, members)
				}
				if tb.Version != first.Version || !reflect.DeepEqual(tb.Owners, first.Owners) {
					return fmt.Sprintf("%s: table version %d, %s has %d", n.ml.LocalID(), tb.Version, live[0].ml.LocalID(), first.Version)
				}
				if err := tb.Check(members); err != nil {
					return err.Error()
				}
			}
			servers, err := live[0].ring.Servers()
			if err != nil {
				return err.Error()
			}
			var ids []ring.NodeID
			for _, s := range servers {
				if !s.Voter {
					return fmt.Sprintf("%s is a non-voter", s.ID)
				}
				ids = append(ids, s.ID)
			}
			slices.Sort(ids)
			if !reflect.DeepEqual(ids, members) {
				return fmt.Sprintf("raft servers %v, want %v", ids, members)
			}
			return ""
		})
	}
	agree(nodes, []ring.NodeID{"n1", "n2", "n3"})

	// n3 leaves gracefully, in a node's shutdown order.
	n3 := nodes[2]
	n3.rec.Stop()
	if err := n3.ml.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = n3.ring.Shutdown()
	_ = n3.ml.Shutdown()
	agree(nodes[:2], []ring.NodeID{"n1", "n2"})
}
