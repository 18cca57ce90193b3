package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Systems compared, in table order.
const (
	SysPlayhead = "playhead"
	SysBaseline = "baseline"
)

// notesMarker separates the generated report from hand-written notes,
// which a new report keeps.
const notesMarker = "<!-- everything below this line is hand-written and kept when bench compare rewrites the file -->"

// Median of xs (0 if empty).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Results maps case name → system → one result per round.
type Results map[string]map[string][]*Result

// Add files r under name and system.
func (rs Results) Add(name, system string, r *Result) {
	if rs[name] == nil {
		rs[name] = map[string][]*Result{}
	}
	rs[name][system] = append(rs[name][system], r)
}

// ResultFile is the file name of a case's round for a system.
func ResultFile(name, system string, round int) string {
	return fmt.Sprintf("%s-%s-%d.json", name, system, round)
}

// LoadResults reads dir/NAME-SYSTEM-ROUND.json files, rounds in order.
func LoadResults(dir string) (Results, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	type entry struct {
		name, sys string
		round     int
		r         *Result
	}
	var es []entry
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".json"), "-")
		if len(parts) < 3 {
			continue
		}
		round, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", f, err)
		}
		es = append(es, entry{strings.Join(parts[:len(parts)-2], "-"), parts[len(parts)-2], round, &r})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].round < es[j].round })
	out := Results{}
	for _, e := range es {
		out.Add(e.name, e.sys, e.r)
	}
	return out, nil
}

// Throughput is the headline rate of a result: updates/s for writes,
// served ops/s for reads, writes/s for propagation.
func Throughput(r *Result) float64 {
	switch r.Workload {
	case "put", "batch", "ws":
		return r.UpdatesPerSec
	}
	return r.OpsPerSec
}

func throughputUnit(workload string) string {
	switch workload {
	case "put", "batch", "ws":
		return "updates/s"
	case "propagation":
		return "writes/s"
	}
	return "reads/s"
}

// agg is the median over rounds of each figure.
type agg struct {
	n                              int
	thr, thrMin, thrMax            float64
	p50, p99, p999, max            float64
	errs, stale, unsent            float64
	cpuPerOp, rssMiB, deliveredPct float64
}

func aggregate(rs []*Result) agg {
	if len(rs) == 0 {
		return agg{}
	}
	col := func(f func(*Result) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return Median(xs)
	}
	a := agg{n: len(rs), thrMin: Throughput(rs[0]), thrMax: Throughput(rs[0])}
	for _, r := range rs {
		a.thrMin, a.thrMax = min(a.thrMin, Throughput(r)), max(a.thrMax, Throughput(r))
	}
	a.thr = col(Throughput)
	a.p50 = col(func(r *Result) float64 { return r.Latency.P50 })
	a.p99 = col(func(r *Result) float64 { return r.Latency.P99 })
	a.p999 = col(func(r *Result) float64 { return r.Latency.P999 })
	a.max = col(func(r *Result) float64 { return r.Latency.Max })
	a.errs = col(func(r *Result) float64 { return float64(r.ErrorCount()) })
	a.stale = col(func(r *Result) float64 { return float64(r.Stale) })
	a.unsent = col(func(r *Result) float64 { return float64(r.Unsent) })
	a.cpuPerOp = col(func(r *Result) float64 {
		ops := float64(r.OK + r.Stale + r.NotFound)
		if r.Workload == "batch" || r.Workload == "put" || r.Workload == "ws" {
			ops = float64(r.Updates)
		}
		if ops == 0 {
			return 0
		}
		return r.ServerCPUSeconds / ops * 1e6
	})
	a.rssMiB = col(func(r *Result) float64 { return float64(r.ServerRSSBytes) / (1 << 20) })
	a.deliveredPct = col(func(r *Result) float64 {
		if r.Applied == 0 {
			return 0
		}
		return 100 * float64(r.Delivered) / float64(r.Applied)
	})
	return a
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("**%.2f×**", a/b)
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func count(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// caseOrder sorts case names in the order compare runs them.
var caseOrder = []string{"put", "batch", "ws", "ws-msgpack", "read", "read-half", "propagation"}

func sortedCases(all Results) []string {
	names := slices.Collect(maps.Keys(all))
	rank := func(n string) int {
		if i := slices.Index(caseOrder, n); i >= 0 {
			return i
		}
		return len(caseOrder)
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	return names
}

// ReportInput is what a report shows besides the results.
type ReportInput struct {
	Results Results
	// Header is markdown put above the tables: how the run was made.
	Header string
	// PlotDir, relative to the report's directory, holds the PNGs (empty:
	// no plots).
	PlotDir string
}

// WriteReport renders the markdown report to path, keeping hand-written
// notes found below notesMarker in the existing file.
func WriteReport(path string, in ReportInput) error {
	var b bytes.Buffer
	renderReport(&b, in)
	if old, err := os.ReadFile(path); err == nil {
		if _, notes, ok := bytes.Cut(old, []byte(notesMarker)); ok {
			b.WriteString(notesMarker)
			b.Write(notes)
		}
	}
	if !bytes.Contains(b.Bytes(), []byte(notesMarker)) {
		b.WriteString("\n" + notesMarker + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func renderReport(b *bytes.Buffer, in ReportInput) {
	all := in.Results
	names := sortedCases(all)
	b.WriteString("# Benchmarks: playhead vs the Redis baseline\n\n")
	b.WriteString(in.Header)
	b.WriteString("\n## Playhead / baseline, medians over rounds\n\n")
	b.WriteString("Throughput: higher is better; a ratio above 1 favours playhead. Latency and CPU: lower is better; a ratio below 1 favours playhead. CPU is the server side's CPU time per operation (per update for writes) in the measured window: the playhead process, or the baseline process plus redis-server.\n\n")
	b.WriteString("| case | rounds | throughput | playhead | baseline | ratio | playhead range | p50 ms ph / bl | p99 ms ph / bl | p99 ratio | p99.9 ms ph / bl | max ms ph / bl | CPU µs/op ph / bl | errors ph / bl | 409 ph / bl |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range names {
		ph, bl := aggregate(all[n][SysPlayhead]), aggregate(all[n][SysBaseline])
		unit := throughputUnit(firstWorkload(all[n]))
		blv := func(v float64) string {
			if bl.n == 0 {
				return "n/a"
			}
			return num(v)
		}
		cnt := func(v float64) string {
			if bl.n == 0 {
				return "n/a"
			}
			return count(v)
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s–%s | %s / %s | %s / %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s |\n",
			n, max(ph.n, bl.n), unit, num(ph.thr), blv(bl.thr), ratio(ph.thr, bl.thr), num(ph.thrMin), num(ph.thrMax),
			num(ph.p50), blv(bl.p50), num(ph.p99), blv(bl.p99), ratio(ph.p99, bl.p99), num(ph.p999), blv(bl.p999),
			num(ph.max), blv(bl.max), num(ph.cpuPerOp), blv(bl.cpuPerOp), count(ph.errs), cnt(bl.errs), count(ph.stale), cnt(bl.stale))
	}
	var notes []string
	for _, n := range names {
		for _, sys := range []string{SysPlayhead, SysBaseline} {
			a := aggregate(all[n][sys])
			if a.unsent > 0 {
				notes = append(notes, fmt.Sprintf("- %s on %s did not sustain the offered rate: a median of %.0f scheduled requests never started (latency above still counts from the schedule for those that did).", n, sys, a.unsent))
			}
			if a.deliveredPct > 0 && a.deliveredPct < 99.9 {
				notes = append(notes, fmt.Sprintf("- %s on %s: %.1f %% of applied writes were seen pushed (the rest lost, coalesced or late).", n, sys, a.deliveredPct))
			}
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	renderTargets(b, all)
	if in.PlotDir != "" {
		fmt.Fprintf(b, "\n## Plots\n\n![throughput ratio](%s/throughput.png)\n", in.PlotDir)
		for _, n := range names {
			fmt.Fprintf(b, "\n![%s latency CDF](%[2]s/cdf-%[1]s.png) ![%[1]s throughput over time](%[2]s/timeline-%[1]s.png)\n", n, in.PlotDir)
		}
	}
}

func firstWorkload(m map[string][]*Result) string {
	for _, rs := range m {
		if len(rs) > 0 {
			return rs[0].Workload
		}
	}
	return ""
}

// renderTargets compares the run with issue #5's targets. The run is on a
// small shared machine with the generator on the same cores, so a miss here
// is a measurement of this machine, not a verdict.
func renderTargets(b *bytes.Buffer, all Results) {
	b.WriteString("\n## Issue #5 targets, as measured by this run\n\n| target | measured | met? |\n|---|---|---|\n")
	row := func(target, measured string, ok, known bool) {
		v := "not measured by compare"
		if known {
			v = map[bool]string{true: "yes", false: "no"}[ok]
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", target, measured, v)
	}
	ph := func(n string) agg { return aggregate(all[n][SysPlayhead]) }
	if p, q := ph("put"), aggregate(all["put"][SysBaseline]); p.n > 0 && q.n > 0 {
		row("HTTP PUT throughput ≥ 1.3× baseline, every ack synced", fmt.Sprintf("%.2f× (%s vs %s updates/s)", p.thr/q.thr, num(p.thr), num(q.thr)), p.thr >= 1.3*q.thr, true)
	} else {
		row("HTTP PUT throughput ≥ 1.3× baseline, every ack synced", "—", false, false)
	}
	for _, n := range []string{"batch", "ws", "ws-msgpack"} {
		if a := ph(n); a.n > 0 {
			row(fmt.Sprintf("%s ≥ 150,000 updates/s durable on 1 node", n), num(a.thr)+" updates/s", a.thr >= 150_000, true)
		}
	}
	if a := ph("read-half"); a.n > 0 {
		row("resume read p99 ≤ 2 ms at half max load", fmt.Sprintf("p99 %s ms at %.0f reads/s", num(a.p99), all["read-half"][SysPlayhead][0].TargetRate), a.p99 <= 2, true)
	}
	if a := ph("propagation"); a.n > 0 {
		row("propagation p99 ≤ 50 ms on one node", fmt.Sprintf("p99 %s ms", num(a.p99)), a.p99 <= 50, true)
	}
	row("storage ≤ 50 B/cursor at 10M cursors, RSS ≤ 1 GiB", fmt.Sprintf("not by compare: `go test ./node -bench StorageAtScale` (notes below); RSS at the end of the put runs here: %s MiB", num(ph("put").rssMiB)), false, false)
}
