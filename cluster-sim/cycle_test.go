package clustersim

import (
	"fmt"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/ring"
)

// TestCyclesBatchInputs: with Options.Batch, a node takes the requests
// waiting for it into one cycle and makes their writes durable in one
// Flush (the driver's group commit), and every request is still answered
// with its own write; with Batch 1 each request is a cycle of its own.
func TestCyclesBatchInputs(t *testing.T) {
	for _, batch := range []int{1, 4096} {
		s := mustSim(t, Options{Seed: 7, Nodes: 3, Batch: batch})
		co := s.Owners(ref)[0]
		s.RunFor(100)
		before := s.Node(co).Core.Stats().Flushes
		var ids []uint64
		for i := range 20 {
			ids = append(ids, s.Submit(co, put(fmt.Sprintf("v%d", i), 1_000, "tv", "s1")))
		}
		// Until the cycles ran: the coordinator's next few ms.
		end := s.Now() + 1
		for len(s.queue) > 0 && s.queue[0].at < end {
			s.step()
		}
		flushes := s.Node(co).Core.Stats().Flushes - before
		settle(t, s, 10_000)
		for i, id := range ids {
			c, ok := s.Result(id)
			if !ok || c.Err != nil || len(c.Res.Writes) != 1 || !c.Res.Writes[0].Applied || c.Res.Writes[0].Cursor.Video != fmt.Sprintf("v%d", i) {
				t.Fatalf("batch %d: request %d: %+v (answered %v)", batch, i, c, ok)
			}
		}
		switch {
		case batch == 1 && flushes < 20:
			t.Fatalf("batch 1: 20 requests made %d flushes, want one each", flushes)
		case batch > 1 && flushes > 2:
			t.Fatalf("batch %d: 20 requests waiting together made %d flushes, want them in one cycle", batch, flushes)
		}
		if batch > 1 && s.Inputs <= s.Cycles {
			t.Fatalf("batch %d: %d inputs in %d cycles: nothing batched", batch, s.Inputs, s.Cycles)
		}
	}
}

// TestNodesFoundTheRing: simulated nodes start without a ring and found
// one through the ring controller's founding rule (ring.Controller.Found):
// not before the expected members were seen for 2 s, with every node as a
// member, installed on every node; a node with ring state (the founder's
// ring installed) does not found again.
func TestNodesFoundTheRing(t *testing.T) {
	s := mustSim(t, Options{Seed: 3, Nodes: 4})
	if el := s.Now() - simEpoch; el <= 2_000 {
		t.Fatalf("the ring was founded %d ms after start, before FoundAfter", el)
	}
	if got := len(s.Table().Load()); got != 4 {
		t.Fatalf("the founded ring has %d members, want 4", got)
	}
	for _, n := range s.Nodes() {
		tb, ok := n.Core.Table()
		if !ok || tb.Version != s.Table().Version {
			t.Fatalf("%s: ring %v (known %v), want version %d", n.ID, tb.Version, ok, s.Table().Version)
		}
		if _, had := n.Core.Table(); s.founders[n.ID].Found(s.Now()+time.Hour.Milliseconds(), []ring.NodeID{"n1", "n2", "n3", "n4"}, had) {
			t.Fatalf("%s would found a second ring", n.ID)
		}
	}
	mustApply(t, s, 2, put("film", 1_000, "tv", "s1"))
}

// TestCycleDrawsUseNodeStreams: what a cycle draws (how many waiting
// inputs it takes, how long its write lasts) and a faulty store's coins
// come from the node's own streams, never the Sim's shared PRNG: a run that
// draws from Sim.Rand in between (as a plan a shrinker edited draws
// differently) has the same trace. Otherwise dropping anything from a
// plan re-rolls every node's cycles.
func TestCycleDrawsUseNodeStreams(t *testing.T) {
	run := func(stir bool) (string, uint64, uint64) {
		s := mustSim(t, Options{Seed: 11, Nodes: 3, Batch: 8, CycleMs: 5, DeferredSync: true})
		s.SetStoreErrors(2, 50, s.Now()+60_000, StoreFailEither)
		for burst := range 20 {
			for i := range 30 {
				if stir {
					s.Rand().Uint64()
				}
				s.Submit(1+i%3, put(fmt.Sprintf("v%d-%d", burst, i), int64(1_000+burst), "tv", "s1"))
			}
			s.RunFor(50)
		}
		settle(t, s, 10_000)
		return s.TraceHash(), s.StoreErrors, s.Inputs - s.Cycles
	}
	h1, errs, batched := run(false)
	h2, _, _ := run(true)
	if errs == 0 || batched == 0 {
		t.Fatalf("%d store errors, %d inputs beyond one per cycle: the run tests nothing", errs, batched)
	}
	if h1 != h2 {
		t.Fatalf("drawing from the shared PRNG changed the trace: %s, then %s", h1, h2)
	}
}
