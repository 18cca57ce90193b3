package main

import (
	"flag"
	"fmt"
	"io"
	"os"
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
	shrink := fs.Bool("shrink", true, "on a failure, look for a smaller failing run and print it")
	purge := fs.Bool("purge", false, "after the checks, run the retention phase: deletes with replicas away, the clock moved past cursor_ttl and history_ttl, and the retention checkers")
	fs.Usage = usage(stderr, fs, "playhead sim [--seed N | --seeds A-B] [--nodes 5] [--devices 200] [--duration 5m] [--faults all]",
		"Runs the deterministic cluster simulator: the real replication code for many nodes and devices on a\nvirtual clock and network, under faults, then checks the invariants of docs/DESIGN.md §6. The same\nseed and options always give the same trace hash; a failure prints the command that replays it.")
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
	fmt.Fprintf(stdout, "playhead sim: seeds %d-%d, %d nodes, %d devices, %s of faults (%s), then a liveness phase\n",
		from, to, *nodes, *devices, *duration, f)
	failed := 0
	var simSeconds float64
	start := time.Now()
	for s := from; s <= to; s++ {
		o := clustersim.RunOptions{Seed: s, Nodes: *nodes, Devices: *devices, Duration: *duration, Faults: f, Purge: *purge}
		if from == to {
			o.Progress = stdout
		}
		rep, err := clustersim.Run(o)
		if err != nil {
			return err
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
			fmt.Fprintf(stdout, "  replay: playhead sim %s\n", clustersim.ReplayArgs(o))
			if *shrink {
				small := clustersim.Shrink(o)
				fmt.Fprintf(stdout, "  shrunk:  playhead sim %s\n", clustersim.ReplayArgs(small))
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
