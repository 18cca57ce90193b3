package clustersim

import (
	"fmt"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip"
)

// With hints and anti-entropy off, an owner that missed writes stays
// stale for quorum-1 reads; a quorum-2 read through it answers every
// acknowledged write and repairs it, so a quorum-1 read afterwards is
// correct too — across the whole simulated network, forwarding included.
func TestQuorumReadRepairsAcrossTheNetwork(t *testing.T) {
	s := mustSim(t, Options{Seed: 31, Core: gossip.CoreConfig{MaxHints: -1, AEInterval: time.Hour}})
	s.Partition([]int{3}, []int{1, 2})
	s.SetAlive(3, false)
	for i := range 5 {
		mustApply(t, s, 1+i%2, put(fmt.Sprintf("v%d", i), int64(i+1)*1000, "tv", "s1"))
	}
	s.Heal()
	s.SetAlive(3, true)
	s.RunFor(3_000)
	readQ := func(node int, v string, q int) gossip.Completion {
		op := readLocal(v) // on node 3 itself, not its coordinator
		op.ReadQuorum = q
		return s.Do(node, op, 5_000)
	}
	if c := readQ(3, "v0", 1); c.Err != nil || c.Res.Found {
		t.Fatalf("quorum-1 read on the stale owner: %+v %v (the test needs it stale)", c.Res.Cursor, c.Err)
	}
	for i := range 5 {
		v := fmt.Sprintf("v%d", i)
		if c := readQ(3, v, 2); c.Err != nil || c.Res.Cursor.PositionMs != int64(i+1)*1000 {
			t.Fatalf("quorum-2 read of %s on node 3: %+v %v", v, c.Res.Cursor, c.Err)
		}
		if c := readQ(3, v, 1); c.Err != nil || c.Res.Cursor.PositionMs != int64(i+1)*1000 {
			t.Fatalf("quorum-1 read of %s on node 3 after the repair: %+v %v", v, c.Res.Cursor, c.Err)
		}
	}
	if ok, _ := s.Converged(); !ok {
		t.Fatal("owners differ after reads repaired the only profile")
	}
}
