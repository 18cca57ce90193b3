//go:build plant_merge || plant_early_ack || plant_ae_skip

package clustersim

import (
	"testing"
)

// TestPlantedBugShrinks runs in a build with a planted bug (as
// TestPlantedBugIsCaught): the first CI seed that catches it is shrunk, and
// the shrunk plan must be small (at most 3 faults and 4 devices), still
// fail the same invariant, and replay from its JSON to the same trace hash.
func TestPlantedBugShrinks(t *testing.T) {
	for seed := uint64(1); seed <= ciSeeds; seed++ {
		rep, err := Run(ciRun(seed))
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Failed() {
			continue
		}
		check := FailedCheck(rep)
		res, err := Shrink(rep, ShrinkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := res.Plan
		t.Logf("seed %d fails %s: shrunk from %d faults, %d devices, %d ops, %s to %d faults, %d devices, %d ops, %s in %d runs",
			seed, check, len(rep.Plan.Faults), len(rep.Plan.Devices), len(rep.Plan.Ops), rep.Plan.Duration(),
			len(p.Faults), len(p.Devices), len(p.Ops), p.Duration(), res.Runs)
		if len(p.Faults) > 3 || len(p.Devices) > 4 {
			t.Errorf("shrunk to %d faults and %d devices; want at most 3 and 4", len(p.Faults), len(p.Devices))
		}
		if res.Check != check || !failsCheck(res.Report, check) {
			t.Errorf("the shrunk run fails %q (%v); the original failed %q", res.Check, res.Report.Violations, check)
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePlan(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Run(RunOptions{Plan: back})
		if err != nil {
			t.Fatal(err)
		}
		if again.TraceHash != res.Report.TraceHash || !failsCheck(again, check) {
			t.Errorf("the shrunk plan replayed from JSON: trace %s, violations %v; the shrink's run: trace %s", again.TraceHash, again.Violations, res.Report.TraceHash)
		}
		return
	}
	t.Fatalf("no seed of %d caught the planted bug", ciSeeds)
}
