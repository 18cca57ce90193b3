package gossip

import (
	"maps"
	"slices"

	"github.com/playhead/playhead/gossip/ring"
)

// Push interest, the follower's side: the profiles this node's subscribers
// follow (a set, changed by deltas as subscribers come and go), and the
// renewal that keeps their owners pushing to this node. The owner's side
// (leases, catch-up from marks) is in push.go and Core.Step.

// SetInterest sets the profiles this node's subscribers follow: the
// difference from the current set is applied as AddInterest and
// RemoveInterest would (linear in the set's size).
func (c *Core) SetInterest(refs []Ref) {
	keep := make(map[Ref]struct{}, len(refs))
	for _, r := range refs {
		keep[r] = struct{}{}
	}
	var gone []Ref
	for _, r := range c.wantedList {
		if _, ok := keep[r]; !ok {
			gone = append(gone, r)
		}
	}
	c.RemoveInterest(gone...)
	c.AddInterest(refs...)
}

// AddInterest adds profiles this node's subscribers follow. Interest in
// each new one is registered with its owners at once; renewal keeps it.
// Refs already followed cost a map lookup.
func (c *Core) AddInterest(refs ...Ref) {
	var fresh []Ref
	for _, r := range refs {
		if _, ok := c.wanted[r]; ok {
			continue
		}
		c.wanted[r] = len(c.wantedList)
		c.wantedList = append(c.wantedList, r)
		c.markOf(r)
		fresh = append(fresh, r)
	}
	if len(fresh) > 0 {
		c.sendInterest(fresh)
	}
}

// RemoveInterest drops profiles nobody here follows any more. Their
// interest is no longer renewed and lapses at the owners within
// InterestLease.
func (c *Core) RemoveInterest(refs ...Ref) {
	for _, r := range refs {
		i, ok := c.wanted[r]
		if !ok {
			continue
		}
		last := len(c.wantedList) - 1
		moved := c.wantedList[last]
		c.wantedList[i] = moved
		c.wanted[moved] = i
		c.wantedList = c.wantedList[:last]
		delete(c.wanted, r)
		delete(c.marks, r)
	}
	if c.renewNext >= len(c.wantedList) {
		c.renewNext = 0
	}
}

// Interest returns how many profiles this node's subscribers follow.
func (c *Core) Interest() int { return len(c.wantedList) }

// renewInterest renews the interest of the profiles due: each is sent to
// its owners once per InterestLease/3, and the work is spread over the
// ticks in batches (of renewBatch, or the whole set when smaller), so a
// node following 100k profiles never stalls a cycle to renew them all.
func (c *Core) renewInterest() {
	period := max(1, c.cfg.InterestLease.Milliseconds()/3)
	// Time before the first tick earns no credit: a ref added then was
	// sent when it was added (or, before the ring was known, SetTable gives
	// the credit to send it), so the first tick does not renew everything
	// at once.
	elapsed := c.nowMs - c.lastInterest
	if !c.renewing {
		elapsed, c.renewing = 0, true
	}
	c.lastInterest = c.nowMs
	n := len(c.wantedList)
	if n == 0 {
		c.renewCredit = 0
		return
	}
	c.renewCredit = min(c.renewCredit+int64(n)*elapsed, int64(n)*period)
	due := int(c.renewCredit / period)
	if due < min(n, renewBatch) {
		return
	}
	c.renewCredit -= int64(due) * period
	batch := make([]Ref, 0, due)
	for range due {
		if c.renewNext >= n {
			c.renewNext = 0
		}
		batch = append(batch, c.wantedList[c.renewNext])
		c.renewNext++
	}
	c.sendInterest(batch)
}

// renewBatch is the fewest refs a renewal sends at once (unless fewer are
// followed): small enough to bound a tick, large enough to fill messages.
const renewBatch = 256

func (c *Core) sendInterest(refs []Ref) {
	if !c.haveTable || len(refs) == 0 {
		return
	}
	byOwner := map[ring.NodeID][]Ref{}
	marks := map[ring.NodeID][]InterestMark{}
	for _, r := range refs {
		mark := c.markOf(r).interestMark()
		for _, o := range c.table.OwnersOf(c.Partition(r)) {
			if o == c.cfg.Self {
				set := c.interest[r]
				if set == nil {
					set = map[ring.NodeID]int64{}
					c.interest[r] = set
				}
				set[o] = c.nowMs + c.cfg.InterestLease.Milliseconds()
				// This node may be the coordinator itself: a change another
				// node coordinated meanwhile (its view of who is alive
				// differed) reached it only as a replica. Catch its own
				// subscribers up from its own store, as it would another's.
				c.queueCatchUps(c.cfg.Self, Msg{Refs: []Ref{r}, Marks: []InterestMark{mark}})
				continue
			}
			byOwner[o] = append(byOwner[o], r)
			marks[o] = append(marks[o], mark)
		}
	}
	for _, o := range slices.Sorted(maps.Keys(byOwner)) {
		c.send(o, Msg{Type: MsgInterest, Refs: byOwner[o], LeaseMs: c.cfg.InterestLease.Milliseconds(), Marks: marks[o]})
	}
}
