package clustersim

import (
	"fmt"
	"testing"
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
