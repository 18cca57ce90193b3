package gossip

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestRaftRingStateSetMembers: the state machine's transitions.
func TestRaftRingStateSetMembers(t *testing.T) {
	var s RingState
	s1, changed, err := s.SetMembers(64, 3, []NodeID{"b", "a", "c", "a"})
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if want := NewTable(64, 3, []NodeID{"a", "b", "c"}); !reflect.DeepEqual(s1.Table, want) {
		t.Fatal("first SetMembers is not NewTable")
	}
	if !reflect.DeepEqual(s1.Members, []NodeID{"a", "b", "c"}) {
		t.Fatalf("members %v", s1.Members)
	}
	if s.Table.Partitions() != 0 {
		t.Fatal("SetMembers changed its receiver")
	}

	same, changed, err := s1.SetMembers(64, 3, []NodeID{"c", "b", "a"})
	if err != nil || changed || same.Table.Version != s1.Table.Version {
		t.Fatalf("same set: changed %v, version %d, %v", changed, same.Table.Version, err)
	}
	rf2, changed, err := s1.SetMembers(64, 2, s1.Members)
	if err != nil || !changed || rf2.Table.Check(s1.Members) != nil || len(rf2.Table.Owners[0]) != 2 {
		t.Fatalf("replicas 3→2: changed %v, %v", changed, err)
	}
	if _, _, err := s1.SetMembers(128, 3, s1.Members); !errors.Is(err, ErrPartitionsFixed) {
		t.Fatalf("partition change: %v", err)
	}
	for _, bad := range [][]NodeID{nil, {}, {""}, {"", "a"}} {
		if _, _, err := s1.SetMembers(64, 3, bad); err == nil {
			t.Fatalf("members %q accepted", bad)
		}
	}
	if _, _, err := s.SetMembers(0, 3, s1.Members); err == nil {
		t.Fatal("0 partitions accepted")
	}
	if _, _, err := s.SetMembers(64, 0, s1.Members); err == nil {
		t.Fatal("0 replicas accepted")
	}
}

// TestRaftRingStateFSM: the FSM applies commands, snapshots and restores,
// and refuses undecodable entries without changing state.
func TestRaftRingStateFSM(t *testing.T) {
	f := newRingFSM(slog.New(slog.DiscardHandler))
	cmd, err := encodeSetMembers(setMembersCmd{Members: []NodeID{"a", "b"}, Partitions: 32, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if resp := f.Apply(&raft.Log{Type: raft.LogCommand, Data: cmd, Index: 1}); resp != nil {
		t.Fatal(resp)
	}
	want := *f.state.Load()
	if want.Table.Version != 1 {
		t.Fatalf("version %d", want.Table.Version)
	}
	for _, bad := range [][]byte{nil, {7}, {ringCmdSetMembers, 0xc1}, append(edgeClone(cmd), 0)} {
		resp := f.Apply(&raft.Log{Type: raft.LogCommand, Data: bad, Index: 2})
		if err, ok := resp.(error); !ok || !errors.Is(err, ErrBadRingData) {
			t.Fatalf("apply %x: %v", bad, resp)
		}
	}
	if !reflect.DeepEqual(*f.state.Load(), want) {
		t.Fatal("a refused command changed the state")
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &edgeMemSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatal(err)
	}
	g := newRingFSM(slog.New(slog.DiscardHandler))
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*g.state.Load(), want) {
		t.Fatal("restored state differs")
	}
	select {
	case <-g.changed:
	default:
		t.Fatal("restore did not signal a change")
	}

	// A snapshot whose table breaks the invariant is refused.
	broken := want
	broken.Members = []NodeID{"a"}
	b, _ := encodeRingState(broken)
	if err := g.Restore(io.NopCloser(bytes.NewReader(b))); !errors.Is(err, ErrBadRingData) {
		t.Fatalf("broken snapshot: %v", err)
	}
	if b, err := encodeRingState(RingState{}); err != nil {
		t.Fatal(err)
	} else if s, err := decodeRingState(b); err != nil || s.Table.Version != 0 {
		t.Fatalf("empty state round trip: %+v, %v", s, err)
	}
}

func edgeClone(b []byte) []byte { return append([]byte(nil), b...) }

type edgeMemSink struct {
	bytes.Buffer
	closed bool
}

func (s *edgeMemSink) ID() string    { return "mem" }
func (s *edgeMemSink) Cancel() error { return nil }
func (s *edgeMemSink) Close() error  { s.closed = true; return nil }

// FuzzRaftRingDecode: the decoders of log entries and snapshots (read from
// disk and from the leader) never panic, and what they accept is valid.
func FuzzRaftRingDecode(f *testing.F) {
	cmd, _ := encodeSetMembers(setMembersCmd{Members: []NodeID{"a", "b", "c"}, Partitions: 8, Replicas: 3})
	f.Add(cmd)
	s, _, _ := RingState{}.SetMembers(8, 2, []NodeID{"a", "b", "c"})
	snap, _ := encodeRingState(s)
	f.Add(snap)
	f.Add([]byte{ringSnapshotV1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeRingCommand(b); err == nil {
			_, _, _ = RingState{}.SetMembers(min(max(c.Partitions, 0), 64), min(c.Replicas, 8), c.Members)
		}
		st, err := decodeRingState(b)
		if err != nil {
			return
		}
		if st.Table.Version > 0 {
			if err := st.Table.Check(st.Members); err != nil {
				t.Fatalf("accepted an invalid table: %v", err)
			}
		}
	})
}

// TestRaftRingLogBridge: raft's hclog records reach slog at warn and above,
// with their arguments, logger name and implied arguments.
func TestRaftRingLogBridge(t *testing.T) {
	var buf bytes.Buffer
	l := newHclogBridge(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), hclog.Warn)
	l.Info("chatter", "k", 1)
	l.Debug("more chatter")
	if l.IsInfo() || !l.IsWarn() || !l.IsError() {
		t.Fatal("level checks")
	}
	l.Named("raft").With("peer", "n2").Warn("heartbeat failed", "err", "boom")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("from std")
	out := buf.String()
	if strings.Contains(out, "chatter") {
		t.Fatalf("info passed the warn floor:\n%s", out)
	}
	for _, want := range []string{"level=WARN", `msg="heartbeat failed"`, "logger=raft", "peer=n2", "err=boom", "level=ERROR", `msg="from std"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
