package ring

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"

	"github.com/playhead/playhead/gossip/internal/goldentest"
)

// TestGoldenRingFormats pins what the raft log and its snapshots hold (on
// disk, and sent to new servers by nodes of any release): the ring
// commands (EncodeSetMembers), the snapshot of a State with its partition
// table (EncodeState), and the partition tables SetMembers computes — every
// node applies the same log, so a release whose Rebalance or PartitionOf
// answered differently would disagree on who owns what. The pinned bytes
// must decode to the same values.
func TestGoldenRingFormats(t *testing.T) {
	members := []NodeID{"node-a", "node-b", "node-c", "node-d"}
	cmds := []struct {
		name string
		cmd  SetMembersCmd
	}{
		{"cmd-set-members", SetMembersCmd{Members: members, Partitions: 16, Replicas: 3}},
		{"cmd-set-members-one", SetMembersCmd{Members: []NodeID{"n1"}, Partitions: 65536, Replicas: 1}},
		{"cmd-set-members-empty", SetMembersCmd{}},
	}
	// The states a log of two commands produces: founding over four
	// members, then a fifth joins (Rebalance moves the fewest owners).
	s0 := State{}
	s1, _, err := s0.SetMembers(16, 3, members)
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := s1.SetMembers(16, 3, append([]NodeID{"node-e"}, members...))
	if err != nil {
		t.Fatal(err)
	}
	states := []struct {
		name string
		s    State
	}{
		{"snapshot-empty", s0},
		{"snapshot-founded", s1},
		{"snapshot-joined", s2},
		{"snapshot-hand-built", State{Table: Table{Version: 1 << 40, Replicas: 2, Owners: [][]NodeID{{"x", "y"}, {"y", "x"}}}, Members: []NodeID{"x", "y"}}},
	}

	var cases []goldentest.Case
	for _, c := range cmds {
		b, err := EncodeSetMembers(c.cmd)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, goldentest.Case{Name: c.name, Bytes: b})
	}
	for _, c := range states {
		b, err := EncodeState(c.s)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, goldentest.Case{Name: c.name, Bytes: b})
	}
	for i, p := range []struct{ account, profile string }{{"acct-7", "kids"}, {"acct-7", ""}, {"", ""}, {"a\x00b", "c"}, {"a", "\x00bc"}} {
		for _, n := range []int{1024, 65536} {
			cases = append(cases, goldentest.Case{Name: fmt.Sprintf("partition-of/%d/%d", i, n),
				Bytes: binary.BigEndian.AppendUint16(nil, PartitionOf(p.account, p.profile, n))})
		}
	}
	want := goldentest.Check(t, "testdata/ring.golden",
		"The ring's raft log and snapshots. cmd-*: a log entry, command type 0x01\n"+
			"(RingCmdSetMembers) then SetMembersCmd as a msgpack map under keys m, p, r.\n"+
			"snapshot-*: format byte 0x01, then the State as a msgpack map under keys v\n"+
			"(table version), r (replicas), o (owners per partition), m (members);\n"+
			"founded/joined are what State.SetMembers computes (16 partitions, RF 3).\n"+
			"partition-of/i/n: PartitionOf(account, profile, n) of the test's i-th profile,\n"+
			"big-endian u16 (the shard key hash: it decides which nodes store a profile).", cases)

	for _, c := range cmds {
		if w, ok := want[c.name]; ok {
			got, err := DecodeCommand(w)
			if err != nil || !reflect.DeepEqual(got, c.cmd) {
				t.Errorf("%s: pinned bytes decode to %+v, %v; want %+v", c.name, got, err, c.cmd)
			}
		}
	}
	for _, c := range states {
		if w, ok := want[c.name]; ok {
			got, err := DecodeState(w)
			if err != nil || !reflect.DeepEqual(got, c.s) {
				t.Errorf("%s: pinned bytes decode to %+v, %v; want %+v", c.name, got, err, c.s)
			}
		}
	}
	if RingCmdSetMembers != 1 || ringSnapshotV1 != 1 {
		t.Errorf("ring command type %d / snapshot format %d changed: they are on disk, append only", RingCmdSetMembers, ringSnapshotV1)
	}
}
