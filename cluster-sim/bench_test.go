package clustersim

import (
	"testing"
	"time"
)

// BenchmarkSim1000Devices is the simulator's speed at the size of the
// issue's figure: 5 nodes, 1,000 devices, every fault, one simulated minute
// (plus the liveness phase). It reports simulated seconds per wall second
// (sim-s/s), the figure docs/BENCHMARKS.md records:
//
//	go test ./cluster-sim -run '^$' -bench Sim1000Devices -benchtime 1x -count 3
func BenchmarkSim1000Devices(b *testing.B) {
	var simSeconds float64
	for i := range b.N {
		rep, err := Run(RunOptions{Seed: uint64(1 + i), Nodes: 5, Devices: 1000, Duration: time.Minute,
			Faults: mustFaults(b, "all")})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed() {
			b.Logf("seed %d: %v", 1+i, rep.Violations)
		}
		simSeconds += rep.SimSeconds
	}
	b.ReportMetric(simSeconds/b.Elapsed().Seconds(), "sim-s/s")
}

func mustFaults(tb testing.TB, s string) Faults {
	f, err := ParseFaults(s)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}
