package ring

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
)

// NodeID names a cluster member. It is stable across restarts (the
// operator's --node-id).
type NodeID string

// Table is the partition table: for every partition, its ordered preference
// list of distinct owners. The first owner is the partition's primary: it
// coordinates writes that need a single decision (stamping).
//
// In a cluster the table is the state of the raft group, so every node
// agrees on it; Rebalance computes the next table when membership changes.
//
// Invariant: every list has min(Replicas, number of members) distinct
// members. FORMAT: in ring snapshots (EncodeState; state_golden_test.go).
type Table struct {
	Version  uint64     // bumped by every change
	Replicas int        // RF
	Owners   [][]NodeID // Owners[p] is partition p's preference list
}

// NewTable returns the table of partitions partitions over members with rf
// replicas, computed from scratch.
func NewTable(partitions, rf int, members []NodeID) Table {
	t := Table{Replicas: rf, Owners: make([][]NodeID, partitions)}
	return Rebalance(t, members)
}

// Partitions returns the number of partitions.
func (t Table) Partitions() int { return len(t.Owners) }

// OwnersOf returns partition p's preference list (shared; do not modify).
// A partition the table does not have (an empty table's, or one past its
// size, as a peer's message may name) has no owners.
func (t Table) OwnersOf(p uint16) []NodeID {
	if int(p) >= len(t.Owners) {
		return nil
	}
	return t.Owners[p]
}

// Owns reports whether n is one of partition p's owners.
func (t Table) Owns(n NodeID, p uint16) bool { return slices.Contains(t.OwnersOf(p), n) }

// Load returns how many replicas of partitions each node holds.
func (t Table) Load() map[NodeID]int {
	load := map[NodeID]int{}
	for _, owners := range t.Owners {
		for _, n := range owners {
			load[n]++
		}
	}
	return load
}

// Clone returns a deep copy.
func (t Table) Clone() Table {
	c := t
	c.Owners = make([][]NodeID, len(t.Owners))
	for p, o := range t.Owners {
		c.Owners[p] = slices.Clone(o)
	}
	return c
}

// Moves counts the replicas placed on a node that did not hold them in from:
// the partitions that must be streamed to reach to.
func Moves(from, to Table) int {
	n := 0
	for p := range to.Owners {
		for _, o := range to.Owners[p] {
			if p >= len(from.Owners) || !slices.Contains(from.Owners[p], o) {
				n++
			}
		}
	}
	return n
}

// Check verifies the table's invariant against members.
func (t Table) Check(members []NodeID) error {
	want := min(t.Replicas, len(members))
	for p, owners := range t.Owners {
		if len(owners) != want {
			return fmt.Errorf("ring: partition %d has %d owners, want %d", p, len(owners), want)
		}
		for i, o := range owners {
			if !slices.Contains(members, o) {
				return fmt.Errorf("ring: partition %d owner %q is not a member", p, o)
			}
			if slices.Contains(owners[:i], o) {
				return fmt.Errorf("ring: partition %d lists %q twice", p, o)
			}
		}
	}
	return nil
}

// Rebalance returns the table for a new member set, moving as few replicas
// as it can while keeping every node's load at most ceil(partitions × RF ÷
// members) — within 10 % of the fair share whenever that share is at least
// 10 replicas. It is deterministic: a pure function of t and the member set.
//
// Steps: (1) drop owners that left; (2) fill every list up to RF with the
// least-loaded eligible nodes; (3) move single replicas from the most- to
// the least-loaded node until all loads lie in [floor, cap]. Owners that stay
// keep their place in the list, so primaries move only when they must.
func Rebalance(t Table, members []NodeID) Table {
	members = slices.Clone(members)
	slices.Sort(members)
	members = slices.Compact(members)
	out := t.Clone()
	out.Version++
	if len(members) == 0 {
		for p := range out.Owners {
			out.Owners[p] = nil
		}
		return out
	}
	rf := min(t.Replicas, len(members))
	isMember := map[NodeID]bool{}
	for _, m := range members {
		isMember[m] = true
	}
	total := len(out.Owners) * rf
	capLoad := (total + len(members) - 1) / len(members)
	floor := total / len(members)

	// (1) Drop departed owners and any surplus beyond rf.
	load := map[NodeID]int{}
	for p, owners := range out.Owners {
		kept := owners[:0:0]
		for _, o := range owners {
			if isMember[o] && !slices.Contains(kept, o) && len(kept) < rf {
				kept = append(kept, o)
			}
		}
		out.Owners[p] = kept
		for _, o := range kept {
			load[o]++
		}
	}
	order := partitionOrder(len(out.Owners))

	// (2) Fill lists with the least-loaded eligible nodes: the replicas of
	// the nodes that left (or of a grown RF) must move somewhere.
	for _, p := range order {
		for len(out.Owners[p]) < rf {
			n := leastLoaded(members, out.Owners[p], load, uint16(p))
			out.Owners[p] = append(out.Owners[p], n)
			load[n]++
		}
	}

	// (3) Even out with single moves, from the most-loaded node to the
	// least-loaded one, until every node is within [floor, cap]. Each step
	// moves one replica, so a join moves just the newcomer's share. The
	// sum of squared loads falls with every step, so this ends.
	for {
		hi, lo := members[0], members[0]
		for _, m := range members {
			if load[m] > load[hi] {
				hi = m
			}
			if load[m] < load[lo] {
				lo = m
			}
		}
		if load[hi] <= capLoad && load[lo] >= floor {
			break
		}
		moved := false
		for _, p := range order {
			owners := out.Owners[p]
			i := slices.Index(owners, hi)
			if i < 0 || slices.Contains(owners, lo) {
				continue
			}
			owners[i] = lo
			load[hi]--
			load[lo]++
			moved = true
			break
		}
		if !moved {
			break // cannot happen: hi owns more partitions than lo
		}
	}
	return out
}

// leastLoaded picks the member not in owners with the smallest load; ties
// break on a hash of (partition, node) so equal nodes spread evenly.
func leastLoaded(members, owners []NodeID, load map[NodeID]int, p uint16) NodeID {
	var best NodeID
	var bestKey uint64
	found := false
	for _, m := range members {
		if slices.Contains(owners, m) {
			continue
		}
		k := tieHash(p, m)
		if !found || load[m] < load[best] || (load[m] == load[best] && k < bestKey) {
			best, bestKey, found = m, k, true
		}
	}
	return best
}

func tieHash(p uint16, n NodeID) uint64 {
	h := fnv.New64a()
	h.Write([]byte{byte(p >> 8), byte(p)})
	h.Write([]byte(n))
	return h.Sum64()
}

// partitionOrder is a fixed pseudo-random order of the partitions, so that
// shedding and filling do not all land on low-numbered partitions.
func partitionOrder(n int) []int {
	order := make([]int, n)
	keys := make([]uint64, n)
	for i := range order {
		order[i] = i
		keys[i] = tieHash(uint16(i), "order")
	}
	sort.Slice(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
	return order
}
