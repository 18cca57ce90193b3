package gossip

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Interest renewal at the scale of one node with many connected devices:
// every subscribed profile's interest is renewed with its owners once per
// InterestLease/3, on the Core's goroutine — the one every write waits
// for. These benchmarks measure that cost and a write's cycle while it
// runs, at up to 100k subscribed profiles.
//
//	go test -run '^$' -bench 'Interest|WriteDuringRenewal' -benchtime 3x ./gossip/

var interestSizes = []int{2_000, 10_000, 100_000}

func interestCore(b *testing.B, n int) (*Core, []Ref) {
	b.Helper()
	ids := []ring.NodeID{"n1", "n2", "n3", "n4", "n5", "n6"}
	c, err := NewCore(CoreConfig{Self: "n1"}, storage.NewMem(), replT0)
	if err != nil {
		b.Fatal(err)
	}
	c.SetTable(ring.NewTable(ring.DefaultPartitions, 3, ids))
	refs := make([]Ref, n)
	for i := range refs {
		refs[i] = Ref{Account: fmt.Sprint("acct", i), Profile: "p"}
	}
	return c, refs
}

// subscribed finishes the subscription burst (the first catch-ups) that
// SetInterest started, so that the measurement sees steady renewal.
func subscribed(b *testing.B, c *Core) {
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}
	c.Ready()
}

// BenchmarkInterestSet: the node handing the Core its whole set of
// subscribed profiles again (unchanged), as it did every 3 s.
func BenchmarkInterestSet(b *testing.B) {
	for _, n := range interestSizes {
		b.Run(fmt.Sprint("profiles=", n), func(b *testing.B) {
			c, refs := interestCore(b, n)
			c.SetInterest(refs)
			subscribed(b, c)
			for b.Loop() {
				c.SetInterest(refs)
			}
		})
	}
}

// BenchmarkInterestRenewal: one whole renewal period (InterestLease/3) of
// 10 ms ticks with every profile subscribed; max-tick-ms is the longest
// single tick, the stall a write queued behind it sees.
func BenchmarkInterestRenewal(b *testing.B) {
	for _, n := range interestSizes {
		b.Run(fmt.Sprint("profiles=", n), func(b *testing.B) {
			c, refs := interestCore(b, n)
			c.SetInterest(refs)
			subscribed(b, c)
			now := c.nowMs
			period := c.cfg.InterestLease.Milliseconds() / 3
			var maxTick time.Duration
			sent := 0
			for b.Loop() {
				for t := int64(0); t < period; t += 10 {
					now += 10
					start := time.Now()
					c.Tick(now)
					if err := c.Flush(); err != nil {
						b.Fatal(err)
					}
					rd := c.Ready()
					maxTick = max(maxTick, time.Since(start))
					for _, e := range rd.Messages {
						if e.Msg.Type == MsgInterest {
							sent += len(e.Msg.Refs)
						}
					}
				}
			}
			b.ReportMetric(float64(maxTick.Microseconds())/1000, "max-tick-ms")
			b.ReportMetric(float64(sent)/float64(b.N), "refs-sent/period")
		})
	}
}

// BenchmarkWriteDuringRenewal: one write per 10 ms driver cycle (submit,
// tick, flush, ready) while every profile's interest is being renewed;
// ns/op is a cycle, max-cycle-ms the worst one (the latency a write
// queued behind renewal sees).
func BenchmarkWriteDuringRenewal(b *testing.B) {
	for _, n := range interestSizes {
		b.Run(fmt.Sprint("profiles=", n), func(b *testing.B) {
			c, refs := interestCore(b, n)
			c.SetInterest(refs)
			subscribed(b, c)
			now := c.nowMs
			var cycles []time.Duration
			i := 0
			for b.Loop() {
				i++
				now += 10
				start := time.Now()
				c.Submit(uint64(i), Op{Kind: OpPut, Ref: refs[i%len(refs)], Ups: []crdt.Update{{
					Video: "v", Session: "s", PositionMs: int64(i), DurationMs: 1 << 30}}})
				c.Tick(now)
				if err := c.Flush(); err != nil {
					b.Fatal(err)
				}
				c.Ready()
				cycles = append(cycles, time.Since(start))
			}
			slices.Sort(cycles)
			b.ReportMetric(float64(cycles[len(cycles)-1].Microseconds())/1000, "max-cycle-ms")
			b.ReportMetric(float64(cycles[len(cycles)*99/100].Microseconds())/1000, "p99-cycle-ms")
		})
	}
}
