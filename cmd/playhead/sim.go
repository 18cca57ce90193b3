package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	clustersim "github.com/playhead/playhead/cluster-sim"
)

func cmdSim(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", 1, "the run's seed: the same seed and options always replay the same run")
	seeds := fs.String("seeds", "", "sweep a range of seeds, e.g. 1-500 (overrides --seed)")
	nodes := fs.Int("nodes", 5, "cluster nodes")
	devices := fs.Int("devices", 200, "simulated devices (two per profile)")
	duration := fs.Duration("duration", 5*time.Minute, "simulated time with faults, before the liveness phase")
	faults := fs.String("faults", "all", "faults: all, none, or a comma list of partitions,loss,crashes,clocks,offline,membership,deletes,store-errors,viewer (store-errors: a node's store writes fail for a while; viewer, the viewer controls, is not part of all)")
	determinism := fs.Bool("check-determinism", false, "run each seed twice and compare the trace hashes")
	shrink := fs.Bool("shrink", true, "on a failure, shrink the run's plan (drop faults, devices, operations, the tail) to a smaller one failing the same invariant, write it under --shrink-dir and print its --replay command")
	purge := fs.Bool("purge", false, "after the checks, run the retention phase: deletes with replicas away, the clock moved past cursor_ttl and history_ttl, and the retention checkers")
	shrinkRuns := fs.Int("shrink-runs", clustersim.DefaultShrinkRuns, "the most runs one shrink tries")
	shrinkDir := fs.String("shrink-dir", "", "the directory the shrinker writes shrunk plans to (empty: the OS temp directory, $TMPDIR or /tmp)")
	replay := fs.String("replay", "", "run the plan in FILE (JSON, from --plan-out or the shrinker) exactly, to the same trace hash; its seed and options replace --seed, --nodes, --devices, --duration and --faults")
	planOut := fs.String("plan-out", "", "write the run's plan (its fault schedule and every device's operations, JSON) to FILE; one seed only")
	fs.Usage = usage(stderr, fs, "playhead sim [--seed N | --seeds A-B | --replay FILE] [--nodes 5] [--devices 200] [--duration 5m] [--faults all] [--plan-out FILE]",
		"Runs the deterministic cluster simulator: the real replication code for many nodes and devices on a\nvirtual clock and network, under faults, then checks the invariants of docs/DESIGN.md §6. A run is a\nplan drawn from the seed and options (the fault schedule and the devices' operations), executed; the\nsame plan always gives the same trace hash. A failure prints the command that replays it, and the\n--replay command of a shrunk plan that fails the same invariant.")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// A run allocates fast over a small live heap: collect less often
		// (the collector took a fifth of a 1000-device run at 100).
		debug.SetGCPercent(400)
	}
	f, err := clustersim.ParseFaults(*faults)
	if err != nil {
		return err
	}
	from, to := *seed, *seed
	if *seeds != "" {
		a, b, ok := strings.Cut(*seeds, "-")
		lo, err1 := strconv.ParseUint(a, 10, 64)
		hi, err2 := strconv.ParseUint(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || hi < lo {
			return fmt.Errorf("--seeds %q: want a range like 1-500", *seeds)
		}
		from, to = lo, hi
	}
	var plan *clustersim.Plan
	if *replay != "" {
		if *seeds != "" {
			return fmt.Errorf("--replay runs one recorded plan, --seeds sweeps seeds: give one of them")
		}
		b, err := os.ReadFile(*replay)
		if err != nil {
			return err
		}
		if plan, err = clustersim.ParsePlan(b); err != nil {
			return fmt.Errorf("%s: %w", *replay, err)
		}
		from, to = plan.Seed, plan.Seed
		fmt.Fprintf(stdout, "playhead sim: replaying %s: seed %d, %d nodes, %d devices, %s of faults (%s: %d scheduled, %d device operations), then a liveness phase\n",
			*replay, plan.Seed, plan.Nodes, len(plan.Devices), plan.Duration(), plan.Kinds, len(plan.Faults), len(plan.Ops))
	} else {
		fmt.Fprintf(stdout, "playhead sim: seeds %d-%d, %d nodes, %d devices, %s of faults (%s), then a liveness phase\n",
			from, to, *nodes, *devices, *duration, f)
	}
	if *planOut != "" && from != to {
		return fmt.Errorf("--plan-out writes one run's plan: give --seed, not --seeds")
	}
	failed := 0
	var simSeconds float64
	start := time.Now()
	for s := from; s <= to; s++ {
		o := clustersim.RunOptions{Seed: s, Nodes: *nodes, Devices: *devices, Duration: *duration, Faults: f, Plan: plan, Purge: *purge}
		if from == to {
			o.Progress = stdout
		}
		rep, err := clustersim.Run(o)
		if err != nil {
			return err
		}
		if *planOut != "" {
			if err := writePlan(*planOut, rep.Plan); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "plan written to %s (%d faults, %d devices, %d device operations)\n", *planOut, len(rep.Plan.Faults), len(rep.Plan.Devices), len(rep.Plan.Ops))
		}
		simSeconds += rep.SimSeconds
		if *determinism {
			o.Progress = nil
			again, err := clustersim.Run(o)
			if err != nil {
				return err
			}
			if again.TraceHash != rep.TraceHash {
				rep.Violations = append(rep.Violations, fmt.Sprintf("determinism: trace %s, then %s", rep.TraceHash, again.TraceHash))
			}
		}
		status := "ok"
		if rep.Failed() {
			status = "FAILED"
			failed++
		}
		fmt.Fprintf(stdout, "seed %d: %s — %d writes, %d acknowledged, %d faults (%d ring changes); %s\n", s, status, rep.Writes, rep.Acked, rep.Faults, rep.RingChanges, strings.Join(rep.Checks, ", "))
		fmt.Fprintf(stdout, "trace hash: %s\n", rep.TraceHash)
		if from == to {
			fmt.Fprintf(stdout, "store: %s; cycles: %s; %d store writes failed\n", rep.Store, rep.Cycles, rep.StoreErrors)
		}
		if rep.Failed() {
			for _, v := range rep.Violations {
				fmt.Fprintf(stdout, "  violation: %s\n", v)
			}
			if plan != nil {
				if *purge {
					fmt.Fprintf(stdout, "  replay: playhead sim --replay %s --purge\n", *replay)
				} else {
					fmt.Fprintf(stdout, "  replay: playhead sim --replay %s\n", *replay)
				}
			} else {
				fmt.Fprintf(stdout, "  replay: playhead sim %s\n", clustersim.ReplayArgs(o))
			}
			if *shrink {
				if err := shrinkRun(rep, *shrinkRuns, *shrinkDir, stdout, stderr); err != nil {
					return err
				}
			}
		}
	}
	wall := time.Since(start).Seconds()
	fmt.Fprintf(stdout, "%d of %d seeds failed; %.0f simulated seconds in %.1f s (%.0f simulated s per s)\n",
		failed, to-from+1, simSeconds, wall, simSeconds/max(wall, 1e-9))
	if failed > 0 {
		return fmt.Errorf("%d seeds violated an invariant", failed)
	}
	return nil
}

// shrinkRun shrinks a failed run, writes the shrunk plan under dir and
// prints its replay command. Its progress goes to stderr.
func shrinkRun(rep clustersim.Report, runs int, dir string, stdout, stderr io.Writer) error {
	start := time.Now()
	fmt.Fprintf(stderr, "shrink: seed %d fails %s; trying at most %d smaller runs\n", rep.Options.Seed, clustersim.FailedCheck(rep), runs)
	res, err := clustersim.Shrink(rep, clustersim.ShrinkOptions{MaxRuns: runs, Progress: stderr})
	if err != nil {
		return err
	}
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("playhead-sim-seed%d-%s.json", res.Plan.Seed, res.Check))
	if err := writePlan(path, res.Plan); err != nil {
		return err
	}
	how := "no single removal left fails it"
	if !res.Minimal {
		how = "the run budget ran out (--shrink-runs)"
	}
	fmt.Fprintf(stdout, "  shrunk: %d faults, %d devices, %d device operations, %s of faults, still failing %s (%d runs, %.1f s; %s)\n",
		len(res.Plan.Faults), len(res.Plan.Devices), len(res.Plan.Ops), res.Plan.Duration(), res.Check, res.Runs, time.Since(start).Seconds(), how)
	for _, v := range res.Report.Violations {
		fmt.Fprintf(stdout, "    violation: %s\n", v)
	}
	fmt.Fprintf(stdout, "    trace hash: %s\n", res.Report.TraceHash)
	purgeArg := "" // the retention phase is an option of the run, not part of its plan
	if rep.Options.Purge {
		purgeArg = " --purge"
	}
	fmt.Fprintf(stdout, "  replay shrunk: playhead sim --replay %s%s\n", path, purgeArg)
	return nil
}

func writePlan(path string, p *clustersim.Plan) error {
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
