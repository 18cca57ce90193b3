package raftring

import (
	"bytes"
	"io"
	"log/slog"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/playhead/playhead/gossip/internal/goldentest"
	"github.com/playhead/playhead/gossip/ring"
)

// TestGoldenRingFSM pins the bytes this FSM reads and writes through raft:
// the log entries a leader proposes (Raft.setMembers encodes them with
// ring.EncodeSetMembers) and the snapshots Persist writes after applying
// them. raft-boltdb keeps both on disk and raft sends them to servers of
// any release; a new server restores the pinned snapshot to the same
// state, and applying the pinned log to an empty FSM gives the snapshot.
// (The layout of the entries is pinned field by field in
// gossip/ring/testdata/ring.golden.)
func TestGoldenRingFSM(t *testing.T) {
	members := []ring.NodeID{"node-a", "node-b", "node-c"}
	cmds := []ring.SetMembersCmd{
		{Members: members, Partitions: 8, Replicas: 3},
		{Members: append([]ring.NodeID{"node-d"}, members...), Partitions: 8, Replicas: 3},
		{Members: []ring.NodeID{"node-a", "node-d"}, Partitions: 8, Replicas: 2},
	}
	f := newRingFSM(slog.New(slog.DiscardHandler))
	var cases []goldentest.Case
	var states []ring.State
	for i, c := range cmds {
		b, err := ring.EncodeSetMembers(c)
		if err != nil {
			t.Fatal(err)
		}
		if resp := f.Apply(&raft.Log{Type: raft.LogCommand, Data: b, Index: uint64(i + 1)}); resp != nil {
			t.Fatal(resp)
		}
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		sink := &edgeMemSink{}
		if err := snap.Persist(sink); err != nil {
			t.Fatal(err)
		}
		states = append(states, *f.state.Load())
		n := string(rune('1' + i))
		cases = append(cases, goldentest.Case{Name: "log-" + n, Bytes: b}, goldentest.Case{Name: "snapshot-after-" + n, Bytes: sink.Bytes()})
	}
	want := goldentest.Check(t, "testdata/fsm.golden",
		"The ring FSM's raft log entries (log-i: the i-th entry a leader proposes, from\n"+
			"ring.EncodeSetMembers) and the snapshots Persist writes after applying entries\n"+
			"1..i to an empty FSM (ring.EncodeState). Layout: gossip/ring/testdata/ring.golden.", cases)

	// Replaying the pinned log gives the pinned snapshots' states.
	g := newRingFSM(slog.New(slog.DiscardHandler))
	for i := range cmds {
		n := string(rune('1' + i))
		if resp := g.Apply(&raft.Log{Type: raft.LogCommand, Data: want["log-"+n], Index: uint64(i + 1)}); resp != nil {
			t.Fatalf("pinned log-%s: %v", n, resp)
		}
		h := newRingFSM(slog.New(slog.DiscardHandler))
		if err := h.Restore(io.NopCloser(bytes.NewReader(want["snapshot-after-"+n]))); err != nil {
			t.Fatalf("pinned snapshot-after-%s: %v", n, err)
		}
		if !reflect.DeepEqual(*g.state.Load(), states[i]) || !reflect.DeepEqual(*h.state.Load(), states[i]) {
			t.Errorf("entry %s: the pinned log gives %+v, the pinned snapshot %+v; want %+v", n, *g.state.Load(), *h.state.Load(), states[i])
		}
	}
}
