package clustersim

import (
	"fmt"
	"time"
)

// ciSeeds is how many seeds the CI sweep (and each planted-bug test) runs.
const ciSeeds = 200

// ciRun is the options of CI seed s: every fault on (store errors too), 5 nodes, 100 devices,
// 60 simulated seconds of faults then the liveness phase.
func ciRun(seed uint64) RunOptions {
	return RunOptions{Seed: seed, Nodes: 5, Devices: 100, Duration: time.Minute,
		Faults: Faults{Partitions: true, Loss: true, Crashes: true, Clocks: true, Offline: true, Membership: true, Deletes: true, StoreErrors: true}}
}

// ReplayArgs returns the `playhead sim` arguments that replay a run.
func ReplayArgs(o RunOptions) string {
	return fmt.Sprintf("--seed %d --nodes %d --devices %d --duration %s --faults %s", o.Seed, o.Nodes, o.Devices, o.Duration, o.Faults)
}
