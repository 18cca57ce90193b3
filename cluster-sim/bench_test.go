package clustersim

import (
	"runtime/debug"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSim1000Devices is the simulator's speed at the size of the
// issue's figure: 5 nodes, 1,000 devices, every fault, one simulated minute
// of faults then the liveness phase, seeds 1, 2, … (one per iteration), with
// the collector set as `playhead sim` sets it (GOGC 400). It reports
// simulated seconds per wall second (sim-s/s, what `playhead sim` prints)
// and per CPU second of the process (sim-s/cpu-s: steadier on a shared
// machine), the figures docs/BENCHMARKS.md records:
//
//	go test ./cluster-sim -run '^$' -bench Sim1000Devices -benchtime 3x
func BenchmarkSim1000Devices(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	var simSeconds float64
	cpu0 := cpuSeconds(b)
	for i := range b.N {
		rep, err := Run(RunOptions{Seed: uint64(1 + i), Nodes: 5, Devices: 1000, Duration: time.Minute,
			Faults: mustFaults(b, "all")})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed() {
			b.Errorf("seed %d: %v", 1+i, rep.Violations)
		}
		simSeconds += rep.SimSeconds
	}
	b.ReportMetric(simSeconds/b.Elapsed().Seconds(), "sim-s/s")
	b.ReportMetric(simSeconds/(cpuSeconds(b)-cpu0), "sim-s/cpu-s")
}

// cpuSeconds is the CPU time (user and system) the process used so far.
func cpuSeconds(tb testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func mustFaults(tb testing.TB, s string) Faults {
	f, err := ParseFaults(s)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}
