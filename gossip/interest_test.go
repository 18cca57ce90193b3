package gossip

import (
	"fmt"
	"testing"

	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// interestSent counts, per ref, how often rd asked an owner for interest.
func interestSent(rd Ready, into map[Ref]int) (refs int) {
	for _, e := range rd.Messages {
		if e.Msg.Type == MsgInterest {
			for _, r := range e.Msg.Refs {
				into[r]++
				refs++
			}
		}
	}
	return refs
}

func interestTestCore(t *testing.T) *Core {
	t.Helper()
	// n1 owns no partition: every ref's interest goes out as messages.
	c, err := NewCore(CoreConfig{Self: "n1"}, storage.NewMem(), replT0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTable(ring.NewTable(ring.DefaultPartitions, 3, []ring.NodeID{"n2", "n3", "n4"}))
	return c
}

// TestInterestDeltas: a profile's interest is sent when it is added, not
// again when it is added twice, and no longer renewed once removed;
// SetInterest applies the difference.
func TestInterestDeltas(t *testing.T) {
	c := interestTestCore(t)
	a, b := Ref{"acct", "a"}, Ref{"acct", "b"}
	sent := map[Ref]int{}
	c.AddInterest(a, b)
	interestSent(c.Ready(), sent)
	if sent[a] != 3 || sent[b] != 3 {
		t.Fatalf("added: sent %v, want each ref to its 3 owners", sent)
	}
	clear(sent)
	c.AddInterest(a)
	c.SetInterest([]Ref{a, b})
	if n := interestSent(c.Ready(), sent); n != 0 {
		t.Fatalf("re-adding followed refs sent %d interests", n)
	}
	c.SetInterest([]Ref{b}) // removes a
	if c.Interest() != 1 {
		t.Fatalf("Interest() = %d after removing one of two", c.Interest())
	}
	// A few renewal periods: b renewed, a never again.
	lease := c.cfg.InterestLease.Milliseconds()
	for now := int64(replT0); now < replT0+2*lease; now += 10 {
		c.Tick(now)
		interestSent(c.Ready(), sent)
	}
	if sent[a] != 0 || sent[b] == 0 {
		t.Fatalf("after removing a: sent %v, want b renewed and a not", sent)
	}
	c.RemoveInterest(b, b, Ref{"acct", "never"})
	if c.Interest() != 0 {
		t.Fatalf("Interest() = %d after removing all", c.Interest())
	}
}

// TestInterestRenewalIsSpread: with many profiles followed, each is
// renewed once per InterestLease/3, and no tick renews more than a batch
// of them (a renewal never stalls a cycle with the whole set).
func TestInterestRenewalIsSpread(t *testing.T) {
	c := interestTestCore(t)
	const n = 5000
	refs := make([]Ref, n)
	for i := range refs {
		refs[i] = Ref{"acct", fmt.Sprint("p", i)}
	}
	c.SetInterest(refs)
	c.Ready()
	period := c.cfg.InterestLease.Milliseconds() / 3
	sent := map[Ref]int{}
	now := int64(replT0)
	maxPerTick := 0 // the first tick included: it once renewed the whole set
	for end := now + 3*period; now < end; {
		now += 10
		c.Tick(now)
		maxPerTick = max(maxPerTick, interestSent(c.Ready(), sent))
	}
	t.Logf("distinct %d, max per tick %d", len(sent), maxPerTick)
	for _, r := range refs {
		if got := sent[r]; got < 2*3 || got > 4*3 { // ~3 periods, 3 owners each
			t.Fatalf("%v renewed %d times in 3 periods, want about 3 (to 3 owners each)", r, got/3)
		}
	}
	if limit := 3 * (renewBatch + n*10/int(period) + 1); maxPerTick > limit {
		t.Fatalf("one tick renewed %d ref-owner pairs, want at most %d", maxPerTick, limit)
	}
}

// TestInterestAddedBeforeTheRing: profiles followed before the ring is
// known cannot be sent when added; the first tick after the ring arrives
// sends each to its owners.
func TestInterestAddedBeforeTheRing(t *testing.T) {
	c, err := NewCore(CoreConfig{Self: "n1"}, storage.NewMem(), replT0)
	if err != nil {
		t.Fatal(err)
	}
	refs := []Ref{{"acct", "a"}, {"acct", "b"}}
	c.AddInterest(refs...)
	c.Tick(replT0 + 10)
	sent := map[Ref]int{}
	if n := interestSent(c.Ready(), sent); n != 0 {
		t.Fatalf("sent %d interests with no ring", n)
	}
	c.SetTable(ring.NewTable(ring.DefaultPartitions, 3, []ring.NodeID{"n2", "n3", "n4"}))
	c.Tick(replT0 + 20)
	interestSent(c.Ready(), sent)
	for _, r := range refs {
		if sent[r] != 3 {
			t.Fatalf("after the ring arrived: %v sent to %d owners, want 3", r, sent[r])
		}
	}
}
