package clustersim

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
)

var ref = gossip.Ref{Account: "acct", Profile: "kids"}

func put(video string, pos int64, device, session string) gossip.Op {
	return gossip.Op{Kind: gossip.OpPut, Ref: ref, Ups: []crdt.Update{{
		Video: video, Device: device, Session: session, PositionMs: pos, DurationMs: 3_600_000, State: crdt.StatePlaying,
	}}}
}

func read(video string) gossip.Op { return gossip.Op{Kind: gossip.OpCursor, Ref: ref, Video: video} }

// readLocal reads the node's own replica (what an operator's
// ?replica=local does), not the coordinator's.
func readLocal(video string) gossip.Op {
	return gossip.Op{Kind: gossip.OpCursor, Ref: ref, Video: video, Local: true}
}

func mustReadLocal(t *testing.T, s *Sim, node int, video string) crdt.Cursor {
	t.Helper()
	c := s.Do(node, readLocal(video), 5_000)
	if c.Err != nil || !c.Res.Found {
		t.Fatalf("local read %s on node %d: found=%v err=%v", video, node, c.Res.Found, c.Err)
	}
	return c.Res.Cursor
}

func mustSim(t *testing.T, o Options) *Sim {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustApply(t *testing.T, s *Sim, node int, op gossip.Op) crdt.Cursor {
	t.Helper()
	c := s.Do(node, op, 5_000)
	if c.Err != nil {
		t.Fatalf("write via node %d: %v", node, c.Err)
	}
	if len(c.Res.Writes) != 1 || !c.Res.Writes[0].Applied {
		t.Fatalf("write via node %d not applied: %+v", node, c.Res.Writes)
	}
	return c.Res.Writes[0].Cursor
}

func mustRead(t *testing.T, s *Sim, node int, video string) crdt.Cursor {
	t.Helper()
	c := s.Do(node, read(video), 5_000)
	if c.Err != nil || !c.Res.Found {
		t.Fatalf("read %s via node %d: found=%v err=%v", video, node, c.Res.Found, c.Err)
	}
	return c.Res.Cursor
}

func settle(t *testing.T, s *Sim, limitMs int64) {
	t.Helper()
	for waited := int64(0); waited < limitMs; waited += 100 {
		s.RunFor(100)
		if ok, _ := s.Converged(); ok {
			return
		}
	}
	_, why := s.Converged()
	t.Fatalf("replicas did not converge within %d ms: %s", limitMs, why)
}

func TestWriteOnOneNodeReadOnAnother(t *testing.T) {
	s := mustSim(t, Options{Seed: 1})
	w := mustApply(t, s, 1, put("film", 754_000, "tv", "s1"))
	if w.Video != "film" || w.PositionMs != 754_000 {
		t.Fatalf("write answer: %+v", w)
	}
	got := mustRead(t, s, 3, "film")
	if got.PositionMs != 754_000 || got.Version != w.Version {
		t.Fatalf("read on node 3: %+v, wrote %+v", got, w)
	}
	settle(t, s, 5_000)
	for _, n := range s.Nodes() {
		if n.Core.Stats().FlushedRecords == 0 {
			t.Errorf("%s persisted nothing: it is an owner (RF=3 of 3)", n.ID)
		}
	}
}

func TestStaleWriteAnsweredWithCurrentCursor(t *testing.T) {
	s := mustSim(t, Options{Seed: 2})
	mustApply(t, s, 1, put("film", 100_000, "tv", "s1"))
	s.RunFor(50)
	c := s.Do(2, gossip.Op{Kind: gossip.OpPut, Ref: ref, Ups: []crdt.Update{{
		Video: "film", Device: "tv", Session: "s0", PositionMs: 5_000, DurationMs: 3_600_000,
		Epoch: 1, Seq: 1, State: crdt.StatePlaying,
	}}}, 5_000)
	if c.Err != nil || c.Res.Writes[0].Applied || c.Res.Writes[0].Cursor.PositionMs != 100_000 {
		t.Fatalf("stale write: %+v %v", c.Res.Writes, c.Err)
	}
}

// With one owner cut off, W=2 writes still succeed; the missing owner gets
// them as hints once the link heals, and all replicas converge.
func TestOneOwnerDownHintsReplayAfterHeal(t *testing.T) {
	s := mustSim(t, Options{Seed: 3})
	s.Partition([]int{3}, []int{1, 2})
	for i := range 20 {
		mustApply(t, s, 1, put(fmt.Sprintf("v%d", i), int64(i+1)*1000, "tv", "s1"))
	}
	// The coordinator keeps hints once a write's deadline passed without
	// the owner's ack.
	s.RunFor(3_000)
	hints := func() int { return s.Node(1).Core.HintsFor("n3") + s.Node(2).Core.HintsFor("n3") }
	if hints() == 0 {
		t.Fatal("no hints kept for the unreachable owner")
	}
	s.Heal()
	settle(t, s, 10_000)
	s.RunFor(3_000) // a hint interval or two
	if hints() != 0 {
		t.Fatalf("hints not cleared after replay: %d", hints())
	}
	var replayed uint64
	for _, n := range s.Nodes() {
		replayed += n.Core.Stats().HintsReplayed
	}
	if replayed == 0 {
		t.Fatal("converged without replaying a hint")
	}
	// Node 3's own replica now holds every write.
	s.Partition([]int{3}, []int{1, 2})
	for i := range 20 {
		if got := mustReadLocal(t, s, 3, fmt.Sprintf("v%d", i)); got.PositionMs != int64(i+1)*1000 {
			t.Fatalf("v%d on node 3: %+v", i, got)
		}
	}
}

// With two of three owners unreachable, writes are refused as unavailable;
// every write acknowledged before is still there after the heal.
func TestQuorumLossIsUnavailableAndLosesNothing(t *testing.T) {
	s := mustSim(t, Options{Seed: 4})
	acked := map[string]int64{}
	for i := range 10 {
		v := fmt.Sprintf("v%d", i)
		mustApply(t, s, 1, put(v, 1000, "tv", "s1"))
		acked[v] = 1000
	}
	s.Partition([]int{1}, []int{2, 3})
	refused := 0
	for i := range 10 {
		c := s.Do(1, put(fmt.Sprintf("v%d", i), 2000, "tv", "s1"), 10_000)
		switch {
		case errors.Is(c.Err, gossip.ErrUnavailable):
			refused++
		case c.Err != nil:
			t.Fatalf("unexpected error: %v", c.Err)
		default:
			t.Fatalf("write acknowledged without a quorum: %+v", c.Res.Writes)
		}
	}
	if refused != 10 {
		t.Fatalf("%d of 10 writes refused", refused)
	}
	s.Heal()
	settle(t, s, 10_000)
	for v, pos := range acked {
		for node := 1; node <= 3; node++ {
			if got := mustRead(t, s, node, v); got.PositionMs < pos {
				t.Fatalf("%s on node %d: %+v, acknowledged %d", v, node, got, pos)
			}
		}
	}
}

// A coordinator crash loses no acknowledged write: the other owners have it
// durable, and the restarted node catches up by anti-entropy.
func TestCrashAndRestartConverges(t *testing.T) {
	s := mustSim(t, Options{Seed: 5})
	for i := range 30 {
		mustApply(t, s, 1+i%3, put(fmt.Sprintf("v%d", i%7), int64(i+1)*1000, "tv", "s1"))
	}
	s.Crash(2)
	s.SetAlive(2, false)
	for i := range 30 {
		mustApply(t, s, 1, put(fmt.Sprintf("w%d", i%5), int64(i+1)*1000, "tv", "s1"))
	}
	if err := s.Restart(2); err != nil {
		t.Fatal(err)
	}
	s.SetAlive(2, true)
	settle(t, s, 15_000)
	s.Partition([]int{2}, []int{1, 3})
	for i := range 5 {
		v := fmt.Sprintf("w%d", i)
		want := int64(25+i+1) * 1000
		if got := mustReadLocal(t, s, 2, v); got.PositionMs != want {
			t.Fatalf("%s on restarted node: %d, want %d", v, got.PositionMs, want)
		}
	}
}

// Anti-entropy alone (no hints: the records were never sent to node 3)
// converges replicas after a partition heals.
func TestAntiEntropyConvergesWithoutHints(t *testing.T) {
	s := mustSim(t, Options{Seed: 6, Core: gossip.CoreConfig{MaxHints: -1}})
	s.Partition([]int{3}, []int{1, 2})
	for i := range 40 {
		mustApply(t, s, 1, put(fmt.Sprintf("v%d", i), 1000, "tv", "s1"))
	}
	s.RunFor(3_000)
	if ok, _ := s.Converged(); ok {
		t.Fatal("converged while partitioned: the check cannot fail")
	}
	s.Heal()
	settle(t, s, 20_000)
	if s.Node(3).Core.Stats().AEBucketsRepaired == 0 && s.Node(1).Core.Stats().AEBucketsRepaired == 0 {
		t.Fatal("converged without anti-entropy repairing a bucket")
	}
}

// Duplicated, reordered and lost messages change nothing: the same writes
// end in the same state.
func TestLossyNetworkConverges(t *testing.T) {
	s := mustSim(t, Options{Seed: 7, LossPct: 10, DupPct: 20, MinLatencyMs: 1, MaxLatencyMs: 50})
	want := map[string]int64{}
	for i := range 40 {
		v := fmt.Sprintf("v%d", i%8)
		c := s.Do(1+i%3, put(v, int64(i+1)*1000, "tv", "s1"), 10_000)
		if c.Err == nil && c.Res.Writes[0].Applied {
			want[v] = int64(i+1) * 1000
		}
	}
	s.opts.LossPct, s.opts.DupPct = 0, 0
	settle(t, s, 20_000)
	for v, pos := range want {
		for node := 1; node <= 3; node++ {
			if got := mustRead(t, s, node, v); got.PositionMs < pos {
				t.Fatalf("%s on node %d: %d, acknowledged %d", v, node, got.PositionMs, pos)
			}
		}
	}
}

// A fourth node joins: partitions move to it by handoff, no acknowledged
// write is lost and reads stay correct throughout.
func TestJoinHandsPartitionsOff(t *testing.T) {
	s := mustSim(t, Options{Seed: 8, Partitions: 32})
	refs := make([]gossip.Ref, 40)
	for i := range refs {
		refs[i] = gossip.Ref{Account: "acct", Profile: fmt.Sprintf("p%d", i)}
		op := put("film", int64(i+1)*1000, "tv", "s1")
		op.Ref = refs[i]
		if c := s.Do(1+i%3, op, 5_000); c.Err != nil {
			t.Fatal(c.Err)
		}
	}
	n4, err := s.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	s.SetMembers([]int{1, 2, 3, n4})
	moved := 0
	for p := range s.Table().Partitions() {
		if s.Table().Owns("n4", uint16(p)) {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the new node owns nothing")
	}
	// Reads during the handoff, through every node, see every write.
	for round := 0; round < 3; round++ {
		for i, r := range refs {
			op := read("film")
			op.Ref = r
			c := s.Do(1+(i+round)%4, op, 5_000)
			if c.Err != nil || !c.Res.Found || c.Res.Cursor.PositionMs != int64(i+1)*1000 {
				t.Fatalf("round %d, %s via node %d: %+v %v", round, r.Profile, 1+(i+round)%4, c.Res.Cursor, c.Err)
			}
		}
		s.RunFor(200)
	}
	settle(t, s, 10_000)
	if s.Node(n4).Core.Handoffs() != 0 {
		t.Fatalf("%d handoffs still pending", s.Node(n4).Core.Handoffs())
	}
	// The new node alone serves its partitions correctly.
	s.Partition([]int{n4}, []int{1, 2, 3})
	for i, r := range refs {
		if !s.Table().Owns("n4", ring.PartitionOf(r.Account, r.Profile, 32)) {
			continue
		}
		op := readLocal("film")
		op.Ref = r
		c := s.Do(n4, op, 5_000)
		if c.Err != nil || c.Res.Cursor.PositionMs != int64(i+1)*1000 {
			t.Fatalf("%s on the new node alone: %+v %v", r.Profile, c.Res.Cursor, c.Err)
		}
	}
}

// Push: a device subscribed on node 3 hears a write coordinated elsewhere.
func TestPushReachesInterestedNode(t *testing.T) {
	s := mustSim(t, Options{Seed: 9, Nodes: 5})
	owners := s.Owners(ref)
	sub := 0
	for i := 1; i <= 5; i++ {
		if !contains(owners, i) {
			sub = i
			break
		}
	}
	s.Node(sub).Core.SetInterest([]gossip.Ref{ref})
	s.process(s.Node(sub))
	s.RunFor(50)
	mustApply(t, s, owners[0], put("film", 42_000, "tv", "s1"))
	s.RunFor(50)
	found := false
	for _, ev := range s.Node(sub).Events {
		if ev.Type == gossip.EventCursor && ev.Cursor.PositionMs == 42_000 && ev.Video == "film" {
			found = true
		}
	}
	if !found {
		t.Fatalf("node %d (not an owner) got no push: %+v", sub, s.Node(sub).Events)
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// The same seed gives the same trace; another seed another.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) string {
		s := mustSim(t, Options{Seed: seed, LossPct: 5, DupPct: 5, MaxLatencyMs: 30})
		for i := range 30 {
			s.Submit(1+s.Rand().IntN(3), put(fmt.Sprintf("v%d", s.Rand().IntN(5)), int64(i)*1000, "tv", "s1"))
			s.RunFor(s.Rand().Int64N(50))
		}
		s.RunFor(2_000)
		return s.TraceHash()
	}
	a, b, c := run(11), run(11), run(12)
	if a != b {
		t.Fatalf("same seed, different traces: %s vs %s", a, b)
	}
	if a == c {
		t.Fatalf("different seeds, same trace %s", a)
	}
}

// Hints are durable: the coordinator that kept them crashes and restarts,
// and still replays them to the owner that missed the writes. Anti-entropy
// is off after the first round, so the hints alone repair the owner.
func TestHintsSurviveCoordinatorCrash(t *testing.T) {
	s := mustSim(t, Options{Seed: 10, Core: gossip.CoreConfig{AEInterval: time.Hour}})
	owners := s.Owners(ref)
	co, missing := owners[0], owners[2]
	s.RunFor(100) // every node's first anti-entropy round, before any write
	s.Partition([]int{missing}, others(s, missing))
	for i := range 10 {
		mustApply(t, s, co, put(fmt.Sprintf("v%d", i), int64(i+1)*1000, "tv", "s1"))
	}
	s.RunFor(3_000) // past the writes' deadline: the hints are kept
	kept := s.Node(co).Core.HintsFor(s.Node(missing).ID)
	if kept == 0 {
		t.Fatal("no hints kept for the unreachable owner")
	}
	s.Crash(co)
	if err := s.Restart(co); err != nil {
		t.Fatal(err)
	}
	if got := s.Node(co).Core.Stats().HintsLoaded; got != uint64(kept) {
		t.Fatalf("restarted coordinator loaded %d hints, kept %d", got, kept)
	}
	s.Heal()
	s.RunFor(3_000)
	if h := s.Node(co).Core.Hints(); h != 0 {
		t.Fatalf("%d hints left after the heal", h)
	}
	if r := s.Node(missing).Core.Stats().AEBucketsRepaired; r != 0 {
		t.Fatalf("anti-entropy repaired %d buckets: the test no longer shows the hints did it", r)
	}
	s.Partition([]int{missing}, others(s, missing))
	for i := range 10 {
		if got := mustReadLocal(t, s, missing, fmt.Sprintf("v%d", i)); got.PositionMs != int64(i+1)*1000 {
			t.Fatalf("v%d on the owner that missed it: %+v", i, got)
		}
	}
}

func others(s *Sim, i int) []int {
	var out []int
	for j := 1; j <= len(s.Nodes()); j++ {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}
