package ring

import (
	"errors"
	"reflect"
	"testing"
)

// TestRaftRingStateSetMembers: the state machine's transitions.
func TestRaftRingStateSetMembers(t *testing.T) {
	var s State
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

// FuzzRaftRingDecode: the decoders of log entries and snapshots (read from
// disk and from the leader) never panic, and what they accept is valid.
func FuzzRaftRingDecode(f *testing.F) {
	cmd, _ := EncodeSetMembers(SetMembersCmd{Members: []NodeID{"a", "b", "c"}, Partitions: 8, Replicas: 3})
	f.Add(cmd)
	s, _, _ := State{}.SetMembers(8, 2, []NodeID{"a", "b", "c"})
	snap, _ := EncodeState(s)
	f.Add(snap)
	f.Add([]byte{ringSnapshotV1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeCommand(b); err == nil {
			_, _, _ = State{}.SetMembers(min(max(c.Partitions, 0), 64), min(c.Replicas, 8), c.Members)
		}
		st, err := DecodeState(b)
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
