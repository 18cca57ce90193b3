//go:build plant_no_retain

package clustersim

import "testing"

// TestPurgePlantedResurrectionIsCaught runs in a build where records from
// peers skip the retention rule and anti-entropy ships what it would purge
// (gossip/plant_retain_on.go): a replica back after a month brings its
// expired and deleted records back to the others, and no-resurrection
// must say so.
//
//	go test -tags plant_no_retain -run TestPurgePlanted ./cluster-sim
func TestPurgePlantedResurrectionIsCaught(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		rep, err := Run(purgeRunOpts(seed))
		if err != nil {
			t.Fatal(err)
		}
		if containsCheck(rep.Checks, "no-resurrection: FAILED") {
			t.Logf("seed %d caught the planted resurrection: %v", seed, rep.Violations)
			return
		}
	}
	t.Fatal("no seed of 4 caught the planted resurrection")
}

func purgeRunOpts(seed uint64) RunOptions {
	o := ciRun(seed)
	o.Purge = true
	o.Faults.Viewer = true
	return o
}

func containsCheck(checks []string, want string) bool {
	for _, c := range checks {
		if len(c) >= len(want) && c[:len(want)] == want {
			return true
		}
	}
	return false
}
