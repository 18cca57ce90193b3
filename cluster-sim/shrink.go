package clustersim

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/playhead/playhead/gossip"
)

// Shrinking a failing run, the way property-testing libraries (Hypothesis,
// rapid) shrink a failing case: edit the recorded plan, never the seed.
// Each candidate is the best plan so far with something removed — a chunk
// of devices (with their operations), a chunk of the fault schedule, the
// tail of the fault phase, a chunk of operations — executed; it is kept
// only if the run still fails the same invariant. Chunks start at the whole
// list and halve down to one item (delta debugging), and the passes repeat
// until a full round removes nothing or the run budget is spent. Because
// the execution's own randomness is per link, node and device (plan.go), a
// removal leaves the rest of the run much as it was, and the failure
// usually survives it.

// DefaultShrinkRuns is how many runs a shrink tries at most by default.
const DefaultShrinkRuns = 300

// ShrinkOptions bound and report a shrink.
type ShrinkOptions struct {
	// MaxRuns bounds the runs tried (0: DefaultShrinkRuns).
	MaxRuns int
	// Progress, if set, receives a line per run tried.
	Progress io.Writer
	// Mutate is passed to every run (RunOptions.Mutate).
	Mutate func(*gossip.CoreConfig)
}

// ShrinkResult is the smallest failing plan a shrink found.
type ShrinkResult struct {
	Plan   *Plan
	Report Report // the run of Plan
	Check  string // the invariant it fails, as the original run did
	Runs   int    // runs tried
	// Minimal: a full round of every pass removed nothing (false: the
	// budget ran out first).
	Minimal bool
}

// FailedCheck is the invariant the report's first violation names ("" if
// it has none).
func FailedCheck(rep Report) string {
	if len(rep.Violations) == 0 {
		return ""
	}
	name, _, _ := strings.Cut(rep.Violations[0], ":")
	return name
}

func failsCheck(rep Report, check string) bool {
	return slices.ContainsFunc(rep.Violations, func(v string) bool { return strings.HasPrefix(v, check+":") })
}

type shrinker struct {
	so    ShrinkOptions
	check string
	best  *Plan
	rep   Report
	runs  int
}

// Shrink looks for a smaller plan that fails as failed did (the invariant
// of its first violation). failed must come from Run (its Plan set); a run
// that did not fail is returned as it is.
func Shrink(failed Report, so ShrinkOptions) (ShrinkResult, error) {
	if so.MaxRuns <= 0 {
		so.MaxRuns = DefaultShrinkRuns
	}
	if failed.Plan == nil {
		return ShrinkResult{}, fmt.Errorf("shrink: the report has no plan")
	}
	sh := &shrinker{so: so, check: FailedCheck(failed), best: failed.Plan.Clone(), rep: failed}
	if sh.check == "" {
		return ShrinkResult{Plan: sh.best, Report: failed, Minimal: true}, nil
	}
	sh.focus(failed)
	minimal := false
	for !sh.spent() {
		changed := sh.tail()
		changed = sh.chunks("devices", func() int { return len(sh.best.Devices) }, sh.withoutDevices) || changed
		changed = sh.chunks("faults", func() int { return len(sh.best.Faults) }, sh.withoutFaults) || changed
		changed = sh.chunks("ops", func() int { return len(sh.best.Ops) }, sh.withoutOps) || changed
		if !changed {
			minimal = !sh.spent() || sh.runs == 0
			break
		}
	}
	if !minimal && sh.so.Progress != nil {
		fmt.Fprintf(sh.so.Progress, "shrink: stopped after %d runs (the budget); the plan may shrink further\n", sh.runs)
	}
	return ShrinkResult{Plan: sh.best, Report: sh.rep, Check: sh.check, Runs: sh.runs, Minimal: minimal}, nil
}

// focus tries, first, only the devices the first violation names and the
// other device of each of their profiles: a failure about one device's
// view often needs nobody else.
func (sh *shrinker) focus(failed Report) {
	keep := map[int]bool{}
	for _, m := range devName.FindAllStringSubmatch(failed.Violations[0], -1) {
		if id, err := strconv.Atoi(m[1]); err == nil {
			keep[id], keep[id^1] = true, true
		}
	}
	if len(keep) == 0 || len(keep) >= len(sh.best.Devices) {
		return
	}
	c := sh.best.Clone()
	c.Devices = slices.DeleteFunc(c.Devices, func(d PlanDevice) bool { return !keep[d.ID] })
	c.Ops = slices.DeleteFunc(c.Ops, func(o DeviceOp) bool { return !keep[o.Dev] })
	sh.try(c, "only the devices the violation names, with their profiles")
}

var devName = regexp.MustCompile(`\bdev(\d+)\b`)

func (sh *shrinker) spent() bool { return sh.runs >= sh.so.MaxRuns }

// try runs candidate c and keeps it if it fails the same invariant.
func (sh *shrinker) try(c *Plan, what string) bool {
	if sh.spent() {
		return false
	}
	sh.runs++
	rep, err := Run(RunOptions{Plan: c, Mutate: sh.so.Mutate})
	ok := err == nil && failsCheck(rep, sh.check)
	if sh.so.Progress != nil {
		verdict := "passes or fails otherwise: dropped"
		if ok {
			verdict = "still fails " + sh.check + ": kept"
		}
		fmt.Fprintf(sh.so.Progress, "shrink: run %d/%d: %s → %d faults, %d devices, %d ops, %s: %s\n",
			sh.runs, sh.so.MaxRuns, what, len(c.Faults), len(c.Devices), len(c.Ops), c.Duration(), verdict)
	}
	if ok {
		sh.best, sh.rep = c, rep
	}
	return ok
}

// chunks removes chunks of a list of the plan, from the whole list down to
// single items.
func (sh *shrinker) chunks(what string, count func() int, without func(lo, hi int) *Plan) bool {
	changed := false
	for size := count(); size >= 1; size /= 2 {
		for lo := 0; lo < count() && !sh.spent(); {
			hi := min(lo+size, count())
			if sh.try(without(lo, hi), fmt.Sprintf("without %s %d-%d of %d", what, lo, hi-1, count())) {
				changed = true
				continue // the list is shorter: the same lo is the next chunk
			}
			lo = hi
		}
		if sh.spent() {
			break
		}
	}
	return changed
}

func (sh *shrinker) withoutDevices(lo, hi int) *Plan {
	c := sh.best.Clone()
	gone := map[int]bool{}
	for _, d := range c.Devices[lo:hi] {
		gone[d.ID] = true
	}
	c.Devices = slices.Delete(c.Devices, lo, hi)
	c.Ops = slices.DeleteFunc(c.Ops, func(o DeviceOp) bool { return gone[o.Dev] })
	return c
}

func (sh *shrinker) withoutFaults(lo, hi int) *Plan {
	c := sh.best.Clone()
	c.Faults = slices.Delete(c.Faults, lo, hi)
	return c
}

func (sh *shrinker) withoutOps(lo, hi int) *Plan {
	c := sh.best.Clone()
	c.Ops = slices.Delete(c.Ops, lo, hi)
	return c
}

// tail cuts the end of the fault phase (its faults and operations go with
// it): to just after the last fault, then to a quarter, a half, three
// quarters of it, keeping the first (shortest) that still fails.
func (sh *shrinker) tail() bool {
	cur := sh.best.DurationMs
	var cands []int64
	if n := len(sh.best.Faults); n > 0 {
		cands = append(cands, ceilSecond(sh.best.Faults[n-1].AtMs+1))
	}
	for _, q := range []int64{1, 2, 3} {
		cands = append(cands, ceilSecond(cur*q/4))
	}
	slices.Sort(cands)
	for _, d := range slices.Compact(cands) {
		if d <= 0 || d >= cur {
			continue
		}
		c := sh.best.Clone()
		c.DurationMs = d
		c.Faults = slices.DeleteFunc(c.Faults, func(f FaultEvent) bool { return f.AtMs > d })
		c.Ops = slices.DeleteFunc(c.Ops, func(o DeviceOp) bool { return o.AtMs > d })
		for i := range c.Devices {
			if c.Devices[i].SubscribeAtMs > d {
				c.Devices[i].SubscribeAtMs = 0
			}
		}
		if sh.try(c, fmt.Sprintf("fault phase cut to %s", c.Duration())) {
			return true
		}
		if sh.spent() {
			break
		}
	}
	return false
}

func ceilSecond(ms int64) int64 { return (ms + 999) / 1000 * 1000 }
