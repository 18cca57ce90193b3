package memberlist

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/internal/edgetest"
	"github.com/playhead/playhead/gossip/ring"
)

// startRejoinMember starts a member on bind (127.0.0.1:0 for a new port)
// remembering its peers in peersFile ("" for none).
func startRejoinMember(t *testing.T, id, bind, peersFile string) *Memberlist {
	t.Helper()
	cfg := Config{NodeID: ring.NodeID(id), BindAddr: bind, Keys: [][]byte{edgetest.Key(1)},
		PeersFile: peersFile, Logger: edgetest.Logger()}
	cfg.SetLoopbackTimings()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// TestMemberlistRedialsDeadMember: memberlist alone never contacts a
// member again once it declared it dead. A member that is shut down until
// declared dead and then restarted on the same address, joining nobody,
// is found again by the rejoin loop of the member that lost it.
func TestMemberlistRedialsDeadMember(t *testing.T) {
	m1 := startRejoinMember(t, "n1", "127.0.0.1:0", "")
	m2 := startRejoinMember(t, "n2", "127.0.0.1:0", "")
	if _, err := m2.Join([]string{m1.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m1, mlAllAlive("n1", "n2")) })
	addr2 := m2.GossipAddr()
	m2.Shutdown()
	edgetest.Eventually(t, 10*time.Second, func() string {
		return mlSees(m1, map[ring.NodeID]ring.MemberState{"n2": ring.MemberDead})
	})
	// Back on the same address, with no seed and no memory of n1.
	m2b := startRejoinMember(t, "n2", addr2, "")
	edgetest.Eventually(t, 10*time.Second, func() string { return mlSees(m1, mlAllAlive("n1", "n2")) })
	edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m2b, mlAllAlive("n1", "n2")) })
}

// TestMemberlistRestartRejoinsThroughRememberedPeers: the join seeds of a
// cluster (n1, n2) are killed together and restarted joining only each
// other, as `--join n1,n2` does. They rejoin the rest (n3) through the
// members remembered in their peers files, and n3 through its rejoin loop:
// one cluster again, not two.
func TestMemberlistRestartRejoinsThroughRememberedPeers(t *testing.T) {
	dir := t.TempDir()
	pf := func(id string) string { return filepath.Join(dir, id+"-"+PeersFileName) }
	m1 := startRejoinMember(t, "n1", "127.0.0.1:0", pf("n1"))
	m2 := startRejoinMember(t, "n2", "127.0.0.1:0", pf("n2"))
	m3 := startRejoinMember(t, "n3", "127.0.0.1:0", pf("n3"))
	seeds := []string{m1.GossipAddr(), m2.GossipAddr()}
	for _, m := range []*Memberlist{m2, m3} {
		if _, err := m.Join(seeds[:1]); err != nil {
			t.Fatal(err)
		}
	}
	all := mlAllAlive("n1", "n2", "n3")
	for _, m := range []*Memberlist{m1, m2, m3} {
		edgetest.Eventually(t, 5*time.Second, func() string { return mlSees(m, all) })
	}
	// The peers file names the others, not the node itself, and is
	// written without waiting for a shutdown.
	edgetest.Eventually(t, 5*time.Second, func() string {
		peers, err := readPeersFile(pf("n1"), "n1")
		var ids []string
		for _, p := range peers {
			ids = append(ids, string(p.ID))
		}
		if err != nil || !slices.Equal(ids, []string{"n2", "n3"}) {
			return "n1's peers file holds " + strings.Join(ids, ",") + ", want n2,n3"
		}
		return ""
	})
	addr3 := m3.GossipAddr()

	// Kill both seeds (no leave) until n3 declares them dead.
	m1.Shutdown()
	m2.Shutdown()
	edgetest.Eventually(t, 10*time.Second, func() string {
		return mlSees(m3, map[ring.NodeID]ring.MemberState{"n1": ring.MemberDead, "n2": ring.MemberDead})
	})
	m1 = startRejoinMember(t, "n1", seeds[0], pf("n1"))
	m2 = startRejoinMember(t, "n2", seeds[1], pf("n2"))
	if got := m1.RememberedAddrs(); !slices.Contains(got, addr3) {
		t.Fatalf("n1 remembers %v after its restart, not n3 at %s", got, addr3)
	}
	// They join only each other; memberlist alone would leave them a
	// cluster of two forever.
	if _, err := m1.Join(seeds[1:]); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Memberlist{m1, m2, m3} {
		edgetest.Eventually(t, 15*time.Second, func() string { return mlSees(m, all) })
	}
}

// TestMemberlistPeersFile: the file is rewritten whole (no temporary left
// behind); a damaged file, a newer format or another node's file is
// ignored with the node starting from its seeds; a member that left
// gracefully is not redialed, one unseen past RejoinFor is forgotten.
func TestMemberlistPeersFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, PeersFileName)
	peers := []peerRecord{{ID: "n2", GossipAddr: "10.0.0.2:7946", LastAliveMs: 1000}, {ID: "n3", GossipAddr: "10.0.0.3:7946", LastAliveMs: 2000, Left: true}}
	if err := writePeersFile(path, "n1", peers); err != nil {
		t.Fatal(err)
	}
	got, err := readPeersFile(path, "n1")
	if err != nil || !slices.Equal(got, peers) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("the directory holds %d files after a write, want the peers file alone", len(ents))
	}
	if _, err := readPeersFile(path, "n9"); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Fatalf("another node's file: %v", err)
	}
	if got, err := readPeersFile(filepath.Join(dir, "absent"), "n1"); got != nil || err != nil {
		t.Fatalf("missing file: %v, %v", got, err)
	}
	for _, bad := range []string{"{", `{"version":2,"peers":[]}`, `[1,2]`} {
		os.WriteFile(path, []byte(bad), 0o644)
		if got, err := readPeersFile(path, "n1"); got != nil || err == nil {
			t.Fatalf("file %q: %v, %v", bad, got, err)
		}
	}
	// A damaged file does not stop the node.
	os.WriteFile(path, []byte("{"), 0o644)
	m := startRejoinMember(t, "n1", "127.0.0.1:0", path)
	if got := m.RememberedAddrs(); len(got) != 0 {
		t.Fatalf("remembered %v from a damaged file", got)
	}
	m.Shutdown()

	// Candidates: n2 (dead, recent) yes; n3 (left) no; n4 (too old) dropped.
	writePeersFile(path, "n1", nil)
	m = startRejoinMember(t, "n1", "127.0.0.1:0", path)
	now := m.cfg.Clock.NowMs()
	m.mu.Lock()
	m.peers = map[ring.NodeID]peerRecord{
		"n2": {ID: "n2", GossipAddr: "127.0.0.1:1", LastAliveMs: now - 1000},
		"n3": {ID: "n3", GossipAddr: "127.0.0.1:2", LastAliveMs: now, Left: true},
		"n4": {ID: "n4", GossipAddr: "127.0.0.1:3", LastAliveMs: now - DefaultRejoinFor.Milliseconds() - 1},
		"n5": {ID: "n5", GossipAddr: "127.0.0.1:4", LastAliveMs: now - 5000},
	}
	m.mu.Unlock()
	if got := m.rejoinCandidates(map[ring.NodeID]bool{"n5": true}); !slices.Equal(got, []string{"127.0.0.1:1"}) {
		t.Fatalf("candidates %v, want n2's address alone", got)
	}
	m.mu.Lock()
	_, kept4 := m.peers["n4"]
	fresh5 := m.peers["n5"].LastAliveMs >= now
	m.mu.Unlock()
	if kept4 || !fresh5 {
		t.Fatalf("n4 past the bound kept: %v; n5 alive refreshed: %v", kept4, fresh5)
	}
}
