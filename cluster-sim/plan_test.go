package clustersim

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A run is its plan executed: the plan written to JSON and read back
// replays to the same trace hash, and the plan decides the run (a plan
// with a device or a fault fewer is another run).
func TestPlanReplaysExactly(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		o := ciRun(seed)
		o.Devices, o.Duration = 30, 20*time.Second
		o.Faults.Viewer = true
		if seed%2 == 0 {
			o.Store = "pebble"
		}
		rep, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := rep.Plan.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		fresh, _ := NewPlan(o)
		if b2, _ := fresh.Marshal(); !bytes.Equal(b, b2) {
			t.Fatalf("seed %d: NewPlan drew two different plans", seed)
		}
		p, err := ParsePlan(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Run(RunOptions{Plan: p})
		if err != nil {
			t.Fatal(err)
		}
		if again.TraceHash != rep.TraceHash || again.Writes != rep.Writes || again.Faults != rep.Faults {
			t.Errorf("seed %d: ran %s (%d writes, %d faults), replayed from JSON %s (%d writes, %d faults)",
				seed, rep.TraceHash, rep.Writes, rep.Faults, again.TraceHash, again.Writes, again.Faults)
		}
		for what, c := range map[string]*Plan{"a fault": p.Clone(), "a device": p.Clone()} {
			if what == "a fault" {
				if len(c.Faults) == 0 {
					continue
				}
				c.Faults = c.Faults[1:]
			} else {
				c.Devices = c.Devices[1:]
				id := p.Devices[0].ID
				var ops []DeviceOp
				for _, o := range c.Ops {
					if o.Dev != id {
						ops = append(ops, o)
					}
				}
				c.Ops = ops
			}
			other, err := Run(RunOptions{Plan: c})
			if err != nil {
				t.Fatal(err)
			}
			if other.TraceHash == rep.TraceHash {
				t.Errorf("seed %d: without %s, the same trace %s", seed, what, rep.TraceHash)
			}
		}
	}
}

// A plan that cannot be executed is refused with the reason.
func TestParsePlanRefuses(t *testing.T) {
	o := ciRun(1)
	o.Nodes, o.Devices, o.Duration = 3, 4, 20*time.Second
	p, err := NewPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want   string
		mutate func(*Plan)
	}{
		{"format", func(p *Plan) { p.Format = 99 }},
		{"nodes", func(p *Plan) { p.Nodes = 0 }},
		{"store", func(p *Plan) { p.Store = "disk" }},
		{"device", func(p *Plan) { p.Devices[0].Node = 4 }},
		{"device", func(p *Plan) { p.Devices[1].ID = p.Devices[0].ID }},
		{"unknown fault", func(p *Plan) { p.Faults[0].Kind = "meteor" }},
		{"names node", func(p *Plan) { p.Faults[0].Nodes = []int{0} }},
		{"of no device", func(p *Plan) { p.Ops[0].Dev = 77 }},
		{"unknown op", func(p *Plan) { p.Ops[0].Kind = "dance" }},
		{"time order", func(p *Plan) { p.Ops[0].AtMs = p.Ops[len(p.Ops)-1].AtMs + 1 }},
		{"video", func(p *Plan) { p.Ops[0].Video = simVideos }},
		{"batch", func(p *Plan) { p.Batch = 0 }},
		{"cycle_ms", func(p *Plan) { p.CycleMs = -1 }},
		{"mode", func(p *Plan) {
			p.Faults[0] = FaultEvent{AtMs: p.Faults[0].AtMs, Kind: FaultStoreErrors, Nodes: []int{1}, ErrPct: 50, ForMs: 1_000, Mode: "melt"}
		}},
		{"err_pct", func(p *Plan) {
			p.Faults[0] = FaultEvent{AtMs: p.Faults[0].AtMs, Kind: FaultStoreErrors, Nodes: []int{1}, ErrPct: 0, ForMs: 1_000, Mode: StoreFailSync}
		}},
		{"names no node", func(p *Plan) {
			p.Faults[0] = FaultEvent{AtMs: p.Faults[0].AtMs, Kind: FaultStoreErrors, ErrPct: 50, ForMs: 1_000, Mode: StoreFailSync}
		}},
	} {
		c := p.Clone()
		tc.mutate(c)
		b, _ := c.Marshal()
		if _, err := ParsePlan(b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v", tc.want, err)
		}
	}
	b, _ := p.Marshal()
	if _, err := ParsePlan(b); err != nil {
		t.Errorf("the plan itself: %v", err)
	}
	if _, err := ParsePlan([]byte(`{"format":1,"faults":"meteors"}`)); err == nil {
		t.Error("unknown fault kinds accepted")
	}
}

// The store-errors fault is part of the plan: the schedule of a run with
// store errors names the node, rate, length and mode, and executing the
// plan fails store writes exactly when such a fault is in it.
func TestStoreErrorsArePlanned(t *testing.T) {
	o := ciRun(3)
	o.Devices, o.Duration = 20, 30*time.Second
	o.Faults = Faults{StoreErrors: true}
	p, err := NewPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Faults) == 0 {
		t.Fatal("no store fault planned in 30 s")
	}
	for _, f := range p.Faults {
		if f.Kind != FaultStoreErrors || len(f.Nodes) != 1 || f.ErrPct < 10 || f.ForMs < 1_000 || f.Mode == "" {
			t.Fatalf("planned %+v", f)
		}
	}
	rep, err := Run(RunOptions{Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	if rep.StoreErrors == 0 || rep.Failed() {
		t.Fatalf("%d store faults planned: %d store writes failed, violations %v", len(p.Faults), rep.StoreErrors, rep.Violations)
	}
	c := p.Clone()
	c.Faults = nil
	if rep, err = Run(RunOptions{Plan: c}); err != nil || rep.StoreErrors != 0 {
		t.Fatalf("without the store faults: %d store writes failed (%v)", rep.StoreErrors, err)
	}
}
