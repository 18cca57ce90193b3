package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// binaries builds playhead-bench and playhead once per test run.
var binaries = sync.OnceValues(func() ([2]string, error) {
	dir, err := os.MkdirTemp("", "playhead-bench-bin-")
	if err != nil {
		return [2]string{}, err
	}
	bins := [2]string{filepath.Join(dir, "playhead-bench"), filepath.Join(dir, "playhead")}
	for i, pkg := range []string{".", "../playhead"} {
		if out, err := exec.Command("go", "build", "-o", bins[i], pkg).CombinedOutput(); err != nil {
			return bins, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return bins, nil
})

func binary(t *testing.T) [2]string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	b, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The CLI smoke tests run the real binary for a fraction of a second per
// run, so `playhead-bench` and `playhead-bench compare` cannot rot. They assert that
// the runs succeed and their output is well formed, never a timing.

func TestBenchInprocessWritesJSON(t *testing.T) {
	bin := binary(t)
	out := filepath.Join(t.TempDir(), "r.json")
	cmd := exec.Command(bin[0], "--url", "inprocess", "--workload", "batch", "--duration", "500ms",
		"--warmup", "100ms", "--concurrency", "2", "--profiles", "5", "--videos", "5", "--batch", "5", "--quiet", "--json", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !strings.Contains(string(b), "p99.9 ms") {
		t.Fatalf("no table:\n%s", b)
	}
	var res struct {
		Workload string           `json:"workload"`
		OK       int64            `json:"ok"`
		Errors   map[string]int64 `json:"errors"`
	}
	raw, _ := os.ReadFile(out)
	if err := json.Unmarshal(raw, &res); err != nil || res.Workload != "batch" || res.OK == 0 || len(res.Errors) != 0 {
		t.Fatalf("result %+v (%v):\n%s", res, err, raw)
	}
}

func TestBenchCompareSmoke(t *testing.T) {
	bin := binary(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (apt-get install -y redis-server): skipping the compare smoke test")
	}
	docs := t.TempDir()
	cmd := exec.Command(bin[0], "compare", "--playhead", bin[1], "--docs", docs, "--rounds", "1", "--duration", "300ms", "--warmup", "100ms",
		"--concurrency", "2", "--profiles", "5", "--videos", "5", "--batch", "5", "--propagation-rate", "20")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	md, err := os.ReadFile(filepath.Join(docs, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| put | 1 |", "| batch | 1 |", "| ws | 1 |", "| read-half | 1 |", "| propagation | 1 |", "throughput.png"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"bench/throughput.png", "bench/cdf-put.png", "bench/raw/put-playhead-1.json", "bench/raw/put-baseline-1.json"} {
		if st, err := os.Stat(filepath.Join(docs, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
