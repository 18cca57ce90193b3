//go:build !plant_merge && !plant_early_ack && !plant_ae_skip && !plant_no_retain

package clustersim

import (
	"strings"
	"testing"

	"github.com/playhead/playhead/gossip"
)

func purgeRunOpts(seed uint64) RunOptions {
	o := ciRun(seed)
	o.Purge = true
	o.Faults.Viewer = true
	return o
}

// TestPurgeCheckers runs the retention phase (purge.go) with the real
// policy — cursors 30 days, history 3 years — on a few seeds: every
// replica erases deleted content within a sweep period and purges what
// expired within a pass, and replicas away for a month or for three years
// bring nothing back.
func TestPurgeCheckers(t *testing.T) {
	seeds := uint64(4)
	if testing.Short() {
		seeds = 1
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		rep, err := Run(purgeRunOpts(seed))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed() {
			t.Fatalf("seed %d: %v\n replay: go run ./cmd/playhead sim %s", seed, rep.Violations, ReplayArgs(rep.Options))
		}
		for _, name := range []string{"deleted-content-gone", "expired-purged", "no-resurrection"} {
			if !containsCheck(rep.Checks, name+": ok") {
				t.Fatalf("seed %d: check %s did not run: %v", seed, name, rep.Checks)
			}
		}
		t.Logf("seed %d: %.0f simulated seconds and 3 years skipped, %d writes, checks %v", seed, rep.SimSeconds, rep.Writes, rep.Checks)
	}
}

// TestPurgeCheckersFailWithoutTheSweep: with the sweep turned off on every
// replica, deleted content stays and expired records stay, and the
// checkers say so.
func TestPurgeCheckersFailWithoutTheSweep(t *testing.T) {
	o := purgeRunOpts(1)
	o.Mutate = func(c *gossip.CoreConfig) { c.SweepInterval = -1 }
	rep, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"deleted-content-gone", "expired-purged"} {
		if !containsCheck(rep.Checks, name+": FAILED") {
			t.Errorf("check %s passed with the sweep off: %v", name, rep.Checks)
		}
	}
}

func containsCheck(checks []string, want string) bool {
	for _, c := range checks {
		if strings.HasPrefix(c, want) {
			return true
		}
	}
	return false
}
