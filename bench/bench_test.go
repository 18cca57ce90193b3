package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/playhead/playhead/bench"
	"github.com/playhead/playhead/node"
	"github.com/playhead/playhead/storage"
)

var secret = []byte("0123456789abcdef0123456789abcdef-bench-tests")

func startNode(t *testing.T) (string, string) {
	t.Helper()
	n, err := node.NewWithStore(node.Config{NodeID: "bench-1", AuthSecret: secret, Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	tok, err := node.IssueToken(secret, "acct-bench", nil, false, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, tok
}

func TestWorkloadsAgainstNode(t *testing.T) {
	for _, tc := range []struct {
		workload string
		push     string
		rate     float64
	}{
		{"put", "", 50}, {"batch", "", 20}, {"ws", "", 50}, {"read", "", 50}, {"propagation", "ws", 50}, {"put", "", 0},
	} {
		name := tc.workload
		if tc.rate == 0 {
			name += "-closed"
		}
		t.Run(name, func(t *testing.T) {
			url, tok := startNode(t)
			var prog bytes.Buffer
			res, err := bench.Run(context.Background(), bench.Config{
				URL: url, Token: tok, Workload: tc.workload, Rate: tc.rate, Concurrency: 4,
				Duration: time.Second, Warmup: 200 * time.Millisecond, Profiles: 5, Videos: 10, Batch: 5,
				Push: tc.push, Subscribers: 3, Seed: 7, Progress: &prog,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops == 0 || res.OK == 0 {
				t.Fatalf("no successful ops: %+v", res)
			}
			for k, v := range res.Errors {
				t.Errorf("errors %s: %d", k, v)
			}
			if res.Latency.Count == 0 {
				t.Fatalf("no latencies recorded")
			}
			f := filepath.Join(t.TempDir(), "r.json")
			fh, _ := os.Create(f)
			if err := res.WriteJSON(fh); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			b, _ := os.ReadFile(f)
			var back map[string]any
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("bad JSON: %v", err)
			}
			for _, k := range []string{"workload", "ops", "ops_per_sec", "errors", "latency"} {
				if _, ok := back[k]; !ok {
					t.Errorf("JSON lacks %q", k)
				}
			}
			var tbl bytes.Buffer
			res.WriteTable(&tbl)
			if !bytes.Contains(tbl.Bytes(), []byte("p99.9")) {
				t.Errorf("table: %s", tbl.String())
			}
		})
	}
}

func TestHistPercentiles(t *testing.T) {
	h := bench.NewHist()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summarize()
	if s.Count != 1000 {
		t.Fatalf("count %d", s.Count)
	}
	near := func(got, want float64) bool { return got >= want*0.99 && got <= want*1.01 }
	if !near(s.P50, 500) || !near(s.P90, 900) || !near(s.P99, 990) || !near(s.Max, 1000) {
		t.Fatalf("percentiles %+v", s)
	}
	if s.P50 > s.P90 || s.P90 > s.P99 || s.P99 > s.P999 || s.P999 > s.Max {
		t.Fatalf("not monotone %+v", s)
	}
	if e := bench.NewHist().Summarize(); e.Count != 0 || e.P99 != 0 {
		t.Fatalf("empty %+v", e)
	}
}

func TestMedian(t *testing.T) {
	if m := bench.Median([]float64{3, 1, 2}); m != 2 {
		t.Fatal(m)
	}
	if m := bench.Median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Fatal(m)
	}
}

func TestZipfDeterministic(t *testing.T) {
	a, b, c := bench.NewZipf(42, 1.1, 100), bench.NewZipf(42, 1.1, 100), bench.NewZipf(43, 1.1, 100)
	same, counts := true, map[int]int{}
	for i := 0; i < 10000; i++ {
		x, y := a.Next(), b.Next()
		if x != y {
			t.Fatalf("same seed differs at %d", i)
		}
		if x < 0 || x >= 100 {
			t.Fatalf("out of range %d", x)
		}
		if c.Next() != x {
			same = false
		}
		counts[x]++
	}
	if same {
		t.Fatal("different seeds gave the same sequence")
	}
	if counts[0] <= counts[50] {
		t.Fatalf("not skewed: %d vs %d", counts[0], counts[50])
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	for i, sys := range []string{"playhead", "baseline"} {
		r := &bench.Result{Workload: "put", OpsPerSec: float64(100 * (i + 1)), Errors: map[string]int64{}, Latency: bench.Summary{P50: 1, P99: 2}}
		f, _ := os.Create(filepath.Join(dir, "put-"+sys+"-1.json"))
		r.WriteJSON(f)
		f.Close()
	}
	out := filepath.Join(dir, "B.md")
	var log bytes.Buffer
	if err := bench.Report(dir, out, "", &log); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if !bytes.Contains(b, []byte("| put | 1 | 100 | 200 | 0.50×")) {
		t.Fatalf("report:\n%s", b)
	}
}
