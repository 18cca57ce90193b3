//go:build !plant_merge && !plant_early_ack && !plant_ae_skip

package clustersim

import (
	"strings"
	"testing"
)

// viewerSeeds is how many seeds TestSweepViewer runs.
const viewerSeeds = 12

// TestSweepViewer runs every fault with the viewer's controls on: devices
// hide titles and mark them watched or unwatched while nodes crash, links
// partition and rings change. Every invariant holds, plus hide-sticks (a
// cursor acknowledged before an acknowledged hide was asked stays hidden on
// every owner), and marks count as writes for no-lost-ack, monotonic and
// push delivery.
func TestSweepViewer(t *testing.T) {
	seeds := uint64(viewerSeeds)
	if testing.Short() {
		seeds = 3
	}
	hides := false
	for seed := uint64(1); seed <= seeds; seed++ {
		o := ciRun(seed)
		o.Faults.Viewer = true
		rep, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Checks {
			hides = hides || strings.HasPrefix(c, "hide-sticks")
		}
		if rep.Failed() {
			t.Errorf("seed %d: %v\nreplay: go run ./cmd/playhead sim %s", seed, rep.Violations, ReplayArgs(rep.Options))
		}
	}
	if !hides {
		t.Fatal("no run checked hide-sticks")
	}
}
