package raftring

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/playhead/playhead/gossip/internal/edgetest"
	"github.com/playhead/playhead/gossip/memberlist"
	"github.com/playhead/playhead/gossip/ring"
)

// ringNode is one raftring.Ring under test, with what it needs to restart.
type ringNode struct {
	id   ring.NodeID
	dir  string
	addr string
	ring *Ring

	mu     sync.Mutex
	tables []uint64 // versions delivered to OnTable
}

func (n *ringNode) sawVersion(v uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, got := range n.tables {
		if got == v {
			return true
		}
	}
	return false
}

// openRingNode opens (or reopens) n's ring at n.addr ("127.0.0.1:0" the
// first time) in n.dir.
func openRingNode(t *testing.T, n *ringNode, bootstrap bool, edit func(*Config)) {
	t.Helper()
	if n.addr == "" {
		n.addr = "127.0.0.1:0"
	}
	cfg := Config{
		NodeID:    n.id,
		DataDir:   n.dir,
		BindAddr:  n.addr,
		Bootstrap: bootstrap,
		Logger:    edgetest.Logger(),
		OnTable: func(tb ring.Table) {
			n.mu.Lock()
			n.tables = append(n.tables, tb.Version)
			n.mu.Unlock()
		},
	}
	cfg.SetLoopbackTimings()
	if edit != nil {
		edit(&cfg)
	}
	r, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.ring, n.addr = r, r.Addr()
	t.Cleanup(func() { _ = r.Shutdown() })
}

// startRingCluster opens n rings, bootstraps the first and adds the others
// as servers; it returns once the first is leader of all of them.
func startRingCluster(t *testing.T, n int) []*ringNode {
	t.Helper()
	nodes := make([]*ringNode, n)
	for i := range nodes {
		nodes[i] = &ringNode{id: ring.NodeID(fmt.Sprintf("n%d", i+1)), dir: t.TempDir()}
		openRingNode(t, nodes[i], i == 0, nil)
	}
	for _, nd := range nodes[1:] {
		onLeader(t, nodes, "adding "+string(nd.id), func(r *Ring) error { return r.AddServer(nd.id, nd.addr) })
	}
	servers, err := nodes[0].ring.Servers()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != n {
		t.Fatalf("servers: %+v", servers)
	}
	return nodes
}

// onLeader runs op on the current leader until it succeeds. On loopback
// under -race on a busy machine, leadership can move (a lease times out),
// and ring changes are idempotent, so a test retries as the reconciler
// would.
func onLeader(t *testing.T, nodes []*ringNode, what string, op func(*Ring) error) *Ring {
	t.Helper()
	var leader *Ring
	edgetest.Eventually(t, 10*time.Second, func() string {
		for _, nd := range nodes {
			if nd.ring.IsLeader() {
				if err := op(nd.ring); err != nil {
					return what + ": " + err.Error()
				}
				leader = nd.ring
				return ""
			}
		}
		return what + ": no leader"
	})
	return leader
}

// waitTable waits until every node's table is want.
func waitTable(t *testing.T, nodes []*ringNode, want ring.Table, members []ring.NodeID) {
	t.Helper()
	if err := want.Check(members); err != nil {
		t.Fatalf("expected table: %v", err)
	}
	for _, nd := range nodes {
		edgetest.Eventually(t, 5*time.Second, func() string {
			got := nd.ring.Table()
			if got.Version != want.Version || !reflect.DeepEqual(got.Owners, want.Owners) || got.Replicas != want.Replicas {
				return fmt.Sprintf("%s has table version %d, want %d", nd.id, got.Version, want.Version)
			}
			if !reflect.DeepEqual(nd.ring.RingMembers(), members) {
				return fmt.Sprintf("%s has members %v, want %v", nd.id, nd.ring.RingMembers(), members)
			}
			return ""
		})
	}
}

func waitLeader(t *testing.T, nodes []*ringNode) *ringNode {
	t.Helper()
	var leader *ringNode
	edgetest.Eventually(t, 5*time.Second, func() string {
		for _, nd := range nodes {
			if nd.ring.IsLeader() {
				leader = nd
				return ""
			}
		}
		return "no leader elected"
	})
	return leader
}

// TestRaftRingReplicatesTable: SetMembers on the leader gives every node
// exactly the Rebalance of the members; followers refuse changes.
func TestRaftRingReplicatesTable(t *testing.T) {
	nodes := startRingCluster(t, 3)
	if tb := nodes[1].ring.Table(); tb.Version != 0 || tb.Partitions() != ring.DefaultPartitions {
		t.Fatalf("table before SetMembers: version %d, %d partitions", tb.Version, tb.Partitions())
	}
	members := []ring.NodeID{"n3", "n1", "n2", "n1"} // order and duplicates do not matter
	onLeader(t, nodes, "set members", func(r *Ring) error { return r.SetMembers(members) })
	sorted := []ring.NodeID{"n1", "n2", "n3"}
	want := ring.NewTable(ring.DefaultPartitions, ring.DefaultReplicas, sorted)
	waitTable(t, nodes, want, sorted)
	for _, nd := range nodes {
		edgetest.Eventually(t, 2*time.Second, func() string {
			if !nd.sawVersion(want.Version) {
				return fmt.Sprintf("%s: OnTable did not deliver version %d", nd.id, want.Version)
			}
			return ""
		})
	}
	// Every node knows who leads, at which address.
	edgetest.Eventually(t, 5*time.Second, func() string {
		leaderID, leaderAddr := nodes[0].ring.Leader()
		for _, nd := range nodes {
			id, addr := nd.ring.Leader()
			if id == "" || id != leaderID || addr != leaderAddr {
				return fmt.Sprintf("%s says the leader is %q at %q, n1 says %q at %q", nd.id, id, addr, leaderID, leaderAddr)
			}
			if nd.id == id && nd.addr != addr {
				return fmt.Sprintf("leader %s at %s, but it listens on %s", id, addr, nd.addr)
			}
		}
		return ""
	})

	// The same set again changes nothing; a new one rebalances from the
	// current table, not from scratch.
	leader := onLeader(t, nodes, "set the same members", func(r *Ring) error { return r.SetMembers(sorted) })
	if v := leader.Table().Version; v != want.Version {
		t.Fatalf("no-op SetMembers bumped the version to %d", v)
	}
	four := []ring.NodeID{"n1", "n2", "n3", "n4"}
	onLeader(t, nodes, "set four members", func(r *Ring) error { return r.SetMembers(four) })
	waitTable(t, nodes, ring.Rebalance(want, four), four)

	for _, nd := range nodes {
		if nd.ring.IsLeader() {
			continue
		}
		// (Unless it became leader meanwhile: then the call succeeds.)
		if err := nd.ring.SetMembers(sorted); !errors.Is(err, ErrNotRingLeader) && !nd.ring.IsLeader() {
			t.Fatalf("SetMembers on a follower: %v", err)
		}
		if err := nd.ring.AddServer("n9", "127.0.0.1:1"); !errors.Is(err, ErrNotRingLeader) && !nd.ring.IsLeader() {
			t.Fatalf("AddServer on a follower: %v", err)
		}
		break
	}
	if err := nodes[0].ring.SetMembers(nil); !errors.Is(err, ring.ErrRingNoMembers) {
		t.Fatalf("SetMembers(nil): %v", err)
	}
}

// TestRaftRingFailover: when the leader stops, another is elected and can
// change the table; the old leader, restarted from its data dir, catches up.
func TestRaftRingFailover(t *testing.T) {
	nodes := startRingCluster(t, 3)
	all := []ring.NodeID{"n1", "n2", "n3"}
	onLeader(t, nodes, "set members", func(r *Ring) error { return r.SetMembers(all) })
	first := ring.NewTable(ring.DefaultPartitions, ring.DefaultReplicas, all)
	waitTable(t, nodes, first, all)

	old := waitLeader(t, nodes)
	if err := old.ring.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := old.ring.SetMembers(all); !errors.Is(err, ErrRingClosed) {
		t.Fatalf("SetMembers after Shutdown: %v", err)
	}
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *ringNode) bool { return n == old })
	var keep []ring.NodeID
	for _, n := range rest {
		keep = append(keep, n.id)
	}
	onLeader(t, rest, "set members after failover", func(r *Ring) error { return r.SetMembers(keep) })
	second := ring.Rebalance(first, keep)
	waitTable(t, rest, second, keep)

	// The old leader restarts on its old address and data; it is still a
	// voter, so the leader brings it up to date.
	openRingNode(t, old, false, nil)
	if tb := old.ring.Table(); tb.Version > second.Version {
		t.Fatalf("restarted %s has version %d", old.id, tb.Version)
	}
	waitTable(t, nodes, second, keep)
}

// TestRaftRingRestartFromSnapshot: a restarted node has its table from the
// snapshot before any leader exists, then replays the log after it.
func TestRaftRingRestartFromSnapshot(t *testing.T) {
	n := &ringNode{id: "n1", dir: t.TempDir()}
	openRingNode(t, n, true, func(c *Config) { c.Partitions = 256 })
	waitLeader(t, []*ringNode{n})
	abc := []ring.NodeID{"a", "b", "c"}
	if err := n.ring.SetMembers(abc); err != nil {
		t.Fatal(err)
	}
	if err := n.ring.Snapshot(); err != nil {
		t.Fatal(err)
	}
	abcd := []ring.NodeID{"a", "b", "c", "d"}
	if err := n.ring.SetMembers(abcd); err != nil {
		t.Fatal(err)
	}
	want := ring.Rebalance(ring.NewTable(256, ring.DefaultReplicas, abc), abcd)
	if err := n.ring.Shutdown(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(n.dir, "raft", "snapshots", "*", "state.bin"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots on disk: %v", snaps)
	}
	if _, err := os.Stat(filepath.Join(n.dir, "raft", "raft.db")); err != nil {
		t.Fatal(err)
	}

	// Bootstrap is ignored now that state exists.
	openRingNode(t, n, true, func(c *Config) { c.Partitions = 256 })
	if tb := n.ring.Table(); tb.Version < 1 || tb.Partitions() != 256 {
		t.Fatalf("right after restart: version %d, %d partitions; want the snapshot's", tb.Version, tb.Partitions())
	}
	waitTable(t, []*ringNode{n}, want, abcd)
}

// TestRaftRingNonvoter: past MaxVoters, servers join as non-voters, which
// replicate the table; removal takes them out.
func TestRaftRingNonvoter(t *testing.T) {
	n1 := &ringNode{id: "n1", dir: t.TempDir()}
	n2 := &ringNode{id: "n2", dir: t.TempDir()}
	openRingNode(t, n1, true, func(c *Config) { c.MaxVoters = 1 })
	openRingNode(t, n2, false, nil)
	waitLeader(t, []*ringNode{n1})
	for range 2 { // the second is a no-op
		if err := n1.ring.AddServer("n2", n2.addr); err != nil {
			t.Fatal(err)
		}
	}
	servers, err := n1.ring.Servers()
	if err != nil {
		t.Fatal(err)
	}
	want := []ring.Server{{ID: "n1", Addr: n1.addr, Voter: true}, {ID: "n2", Addr: n2.addr, Voter: false}}
	if !reflect.DeepEqual(servers, want) {
		t.Fatalf("servers %+v, want %+v", servers, want)
	}
	members := []ring.NodeID{"n1", "n2"}
	if err := n1.ring.SetMembers(members); err != nil {
		t.Fatal(err)
	}
	waitTable(t, []*ringNode{n1, n2}, ring.NewTable(ring.DefaultPartitions, ring.DefaultReplicas, members), members)

	if err := n1.ring.RemoveServer("n2"); err != nil {
		t.Fatal(err)
	}
	if err := n1.ring.RemoveServer("n2"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	servers, _ = n1.ring.Servers()
	if len(servers) != 1 || servers[0].ID != "n1" {
		t.Fatalf("servers after removal: %+v", servers)
	}
}

// TestRaftRingDataDirLocked: a second ring on one data dir fails fast with
// an error that says why.
func TestRaftRingDataDirLocked(t *testing.T) {
	n := &ringNode{id: "n1", dir: t.TempDir()}
	openRingNode(t, n, true, nil)
	cfg := Config{NodeID: "n1", DataDir: n.dir, BindAddr: "127.0.0.1:0"}
	_, err := Open(cfg)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
}

func TestRaftRingConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no node id", func(c *Config) { c.NodeID = "" }, "node ID"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data directory"},
		{"unspecified bind", func(c *Config) { c.BindAddr = "0.0.0.0:7947" }, "set the raft advertise address"},
		{"bad advertise", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:7947" }, "specific IP"},
		{"partitions", func(c *Config) { c.Partitions = 1 << 17 }, "partitions"},
		{"voters", func(c *Config) { c.MaxVoters = 10 }, "max voters"},
		{"lease", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "leader lease"},
		{"election", func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 }, "election timeout"},
	} {
		cfg := Config{NodeID: "n1", DataDir: "/tmp/x", BindAddr: "127.0.0.1:0"}
		cfg.EnsureDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("defaults: %v", err)
		}
		tc.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "raftring: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

// edgeGoroutines returns the stacks of the goroutines that belong to the
// adapters or to raft and memberlist.
func edgeGoroutines() []string {
	buf := make([]byte, 1<<22)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if (strings.Contains(g, "playhead/gossip.(*") || strings.Contains(g, "hashicorp/raft.") ||
			strings.Contains(g, "hashicorp/memberlist.")) && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

// TestRaftRingShutdownStopsGoroutines: once a node's reconciler, ring and
// membership are shut down, none of their goroutines (nor raft's or
// memberlist's) is left. (Counted against a baseline: goroutines of
// earlier tests' peers may still be winding down.)
func TestRaftRingShutdownStopsGoroutines(t *testing.T) {
	baseline := len(edgeGoroutines())
	rr, err := Open(Config{NodeID: "n1", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: true,
		OnTable: func(ring.Table) {}, OnLeader: func(bool) {}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := memberlist.Config{NodeID: "n1", BindAddr: "127.0.0.1:0", Keys: [][]byte{edgetest.Key(3)}, OnChange: func(ring.Member) {}}
	cfg.SetLoopbackTimings()
	ml, err := memberlist.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := StartReconciler(ReconcilerConfig{Membership: ml, Ring: rr, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 5*time.Second, func() string {
		if len(rr.RingMembers()) != 1 {
			return "the reconciler did not set the member set"
		}
		return ""
	})
	if n := len(edgeGoroutines()); n <= baseline {
		t.Fatalf("the check sees no goroutines of the running node (%d, baseline %d)", n, baseline)
	}
	rec.Stop()
	if err := rr.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := ml.Shutdown(); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 5*time.Second, func() string {
		if left := edgeGoroutines(); len(left) > baseline {
			return fmt.Sprintf("%d goroutines left (baseline %d):\n%s", len(left), baseline, strings.Join(left, "\n\n"))
		}
		return ""
	})
}

// Raft's routine start-up and shutdown warnings are logged at debug; other
// warnings and errors keep their level.
func TestRoutineRaftLogsAtDebug(t *testing.T) {
	var buf bytes.Buffer
	b := newHclogBridge(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), hclog.Trace)
	b.Warn("no known peers, aborting election")
	b.Warn("failed to get previous log", "error", "log not found")
	b.Error("failed to appendEntries to", "error", "dial tcp: connection refused")
	b.Error("failed to decode incoming command", "error", "transport shutdown")
	if buf.Len() != 0 {
		t.Errorf("routine records shown at info:\n%s", buf.String())
	}
	b.Error("failed to commit logs", "error", "disk full")
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "disk full") {
		t.Errorf("a real error lost its level: %q", buf.String())
	}
	buf.Reset()
	dbg := newHclogBridge(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), hclog.Trace)
	dbg.Warn("no known peers, aborting election")
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("routine record not at debug: %q", buf.String())
	}
}
