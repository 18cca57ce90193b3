package raftring

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
	"github.com/playhead/playhead/gossip/ring"
)

// TestRaftRingStateFSM: the FSM applies commands, snapshots and restores,
// and refuses undecodable entries without changing state.
func TestRaftRingStateFSM(t *testing.T) {
	f := newRingFSM(slog.New(slog.DiscardHandler))
	cmd, err := ring.EncodeSetMembers(ring.SetMembersCmd{Members: []ring.NodeID{"a", "b"}, Partitions: 32, Replicas: 3})
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
	for _, bad := range [][]byte{nil, {7}, {ring.RingCmdSetMembers, 0xc1}, append(edgeClone(cmd), 0)} {
		resp := f.Apply(&raft.Log{Type: raft.LogCommand, Data: bad, Index: 2})
		if err, ok := resp.(error); !ok || !errors.Is(err, ring.ErrBadRingData) {
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
	broken.Members = []ring.NodeID{"a"}
	b, _ := ring.EncodeState(broken)
	if err := g.Restore(io.NopCloser(bytes.NewReader(b))); !errors.Is(err, ring.ErrBadRingData) {
		t.Fatalf("broken snapshot: %v", err)
	}
	if b, err := ring.EncodeState(ring.State{}); err != nil {
		t.Fatal(err)
	} else if s, err := ring.DecodeState(b); err != nil || s.Table.Version != 0 {
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
