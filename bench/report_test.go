package bench_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playhead/playhead/bench"
)

func fakeResult(workload string, updatesPerSec, p99 float64) *bench.Result {
	return &bench.Result{Workload: workload, UpdatesPerSec: updatesPerSec, OpsPerSec: updatesPerSec, OK: 10, Updates: 10,
		Errors: map[string]int64{}, Latency: bench.Summary{Count: 10, P50: p99 / 2, P99: p99, CDF: [][2]float64{{0, 0.1}, {50, p99 / 2}, {100, p99}}},
		Timeline: []float64{1, 2, 3}}
}

func TestReportRatiosAndKeepsNotes(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	os.MkdirAll(raw, 0o755)
	write := func(name, sys string, round int, r *bench.Result) {
		f, err := os.Create(filepath.Join(raw, bench.ResultFile(name, sys, round)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := r.WriteJSON(f); err != nil {
			t.Fatal(err)
		}
	}
	// medians: playhead 200 (100, 200, 300), baseline 100 (50, 100, 900)
	for i, v := range []float64{100, 200, 300} {
		write("put", bench.SysPlayhead, i+1, fakeResult("put", v, 4))
	}
	for i, v := range []float64{50, 100, 900} {
		write("put", bench.SysBaseline, i+1, fakeResult("put", v, 2))
	}
	write("ws", bench.SysPlayhead, 1, fakeResult("ws", 1000, 3))

	docs := filepath.Join(dir, "docs")
	os.MkdirAll(docs, 0o755)
	md := filepath.Join(docs, "BENCHMARKS.md")
	if err := bench.Report(raw, docs); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	for _, want := range []string{"| put | 3 | updates/s | 200 | 100 | **2.00×** |", "| ws | 1 | updates/s | 1000 | n/a | — |", "cdf-put.png", "2.00× (200 vs 100 updates/s)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
	for _, png := range []string{"throughput.png", "cdf-put.png", "timeline-ws.png"} {
		if st, err := os.Stat(filepath.Join(docs, "bench", png)); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", png, err)
		}
	}
	// hand-written notes below the marker survive a rewrite
	os.WriteFile(md, append(b, []byte("\nmy notes\n")...), 0o644)
	if err := bench.Report(raw, docs); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(md)
	if !strings.Contains(string(b), "my notes") || strings.Count(string(b), "hand-written") != 1 {
		t.Fatalf("notes lost or marker repeated:\n%s", b)
	}
}
