//go:build plant_merge || plant_early_ack || plant_ae_skip

package clustersim

import (
	"testing"
	"time"
)

// TestPlantedBugIsCaught runs in a build with a planted bug (see
// gossip/plant_off.go and crdt/plant_off.go) and requires the CI sweep to
// catch it: some seed must violate an invariant.
func TestPlantedBugIsCaught(t *testing.T) {
	for seed := uint64(1); seed <= ciSeeds; seed++ {
		rep, err := Run(ciRun(seed))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed() {
			t.Logf("seed %d caught the planted bug: %v", seed, rep.Violations[0])
			return
		}
	}
	t.Fatalf("no seed of %d caught the planted bug", ciSeeds)
}

var _ = time.Second
