package ring

import (
	"fmt"
	"testing"
)

func nodes(n int) []NodeID {
	out := make([]NodeID, n)
	for i := range out {
		out[i] = NodeID(fmt.Sprintf("n%d", i+1))
	}
	return out
}

// checkBalanced asserts the table invariant and that no node holds more
// than 10 % above its fair share.
func checkBalanced(t *testing.T, tb Table, members []NodeID) {
	t.Helper()
	if err := tb.Check(members); err != nil {
		t.Fatal(err)
	}
	rf := min(tb.Replicas, len(members))
	fair := float64(tb.Partitions()*rf) / float64(len(members))
	for n, l := range tb.Load() {
		if float64(l) > fair*1.10 {
			t.Fatalf("%s holds %d replicas, fair share %.1f (+10%% = %.1f)", n, l, fair, fair*1.1)
		}
	}
}

func TestTableBalancedFromScratch(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 10, 31} {
		members := nodes(n)
		tb := NewTable(DefaultPartitions, 3, members)
		checkBalanced(t, tb, members)
	}
}

func TestTableJoinMovesFewReplicas(t *testing.T) {
	for _, n := range []int{3, 4, 5, 9} {
		members := nodes(n)
		before := NewTable(DefaultPartitions, 3, members)
		after := Rebalance(before, nodes(n+1))
		checkBalanced(t, after, nodes(n+1))
		// The newcomer's fair share is the least that must move.
		minimum := DefaultPartitions * 3 / (n + 1)
		moves := Moves(before, after)
		if moves > minimum+minimum/10+1 {
			t.Fatalf("%d→%d nodes: %d replicas moved, the newcomer's share is %d", n, n+1, moves, minimum)
		}
		t.Logf("%d→%d nodes: %d replicas moved (share %d)", n, n+1, moves, minimum)
	}
}

func TestTableLeaveMovesOnlyTheLeaversReplicas(t *testing.T) {
	for _, n := range []int{4, 5, 9} {
		members := nodes(n)
		before := NewTable(DefaultPartitions, 3, members)
		gone := members[1]
		left := append(append([]NodeID{}, members[:1]...), members[2:]...)
		after := Rebalance(before, left)
		checkBalanced(t, after, left)
		held := before.Load()[gone]
		moves := Moves(before, after)
		if moves > held+held/10+1 {
			t.Fatalf("%d→%d nodes: %d replicas moved, the leaver held %d", n, n-1, moves, held)
		}
		for p := range after.Owners {
			if after.Owns(gone, uint16(p)) {
				t.Fatalf("partition %d still owned by departed %s", p, gone)
			}
		}
	}
}

func TestTableDeterministicAndStable(t *testing.T) {
	a := NewTable(DefaultPartitions, 3, nodes(5))
	b := NewTable(DefaultPartitions, 3, []NodeID{"n5", "n3", "n1", "n4", "n2", "n3"})
	for p := range a.Owners {
		if fmt.Sprint(a.Owners[p]) != fmt.Sprint(b.Owners[p]) {
			t.Fatalf("partition %d: %v vs %v", p, a.Owners[p], b.Owners[p])
		}
	}
	again := Rebalance(a, nodes(5))
	if m := Moves(a, again); m != 0 {
		t.Fatalf("rebalancing an unchanged member set moved %d replicas", m)
	}
}

func TestTableFewerMembersThanReplicas(t *testing.T) {
	tb := NewTable(16, 3, nodes(2))
	if err := tb.Check(nodes(2)); err != nil {
		t.Fatal(err)
	}
	grown := Rebalance(tb, nodes(3))
	checkBalanced(t, grown, nodes(3))
	for p := range grown.Owners {
		if len(grown.Owners[p]) != 3 {
			t.Fatalf("partition %d: %v", p, grown.Owners[p])
		}
	}
}
