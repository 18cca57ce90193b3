package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/bench"
	"github.com/playhead/playhead/node"
)

// The smoke tests run every workload for about a second against a real
// node (Pebble in a temp dir) and check only that requests succeeded and
// the result is well formed: no timing is asserted.

var secret = []byte("0123456789abcdef0123456789abcdef-bench-tests")

func startNode(t *testing.T) (url string, mint func(string) (string, error)) {
	t.Helper()
	n, err := node.New(node.Config{NodeID: "bench-1", DataDir: t.TempDir(), AuthSecret: secret,
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
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
	return srv.URL, func(p string) (string, error) {
		return api.IssueToken(secret, "acct-"+p, nil, false, time.Hour, time.Now())
	}
}

// SmokeConfig is a short, low-rate run of workload against url.
func smokeConfig(url string, mint func(string) (string, error), workload string, rate float64) bench.Config {
	return bench.Config{
		URL: url, Mint: mint, Workload: workload, Rate: rate, Concurrency: 4,
		Duration: time.Second, Warmup: 200 * time.Millisecond, Profiles: 5, Videos: 10, Batch: 5,
		Subscribers: 3, Seed: 7,
	}
}

// checkResult asserts the run served requests without errors and that its
// JSON and table are well formed.
func checkResult(t *testing.T, res *bench.Result) {
	t.Helper()
	if res.OK == 0 {
		t.Fatalf("no successful operations: %+v", res)
	}
	for k, v := range res.Errors {
		t.Errorf("errors %s: %d", k, v)
	}
	if res.Latency.Count == 0 {
		t.Fatalf("no latencies recorded: %+v", res)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.WriteJSON(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, _ := os.ReadFile(path)
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatalf("result JSON: %v\n%s", err, b)
	}
	for _, k := range []string{"workload", "mode", "ops", "ok", "ops_per_sec", "updates_per_sec", "errors", "latency", "timeline_served_per_s"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("result JSON lacks %q", k)
		}
	}
	var back bench.Result
	if err := json.Unmarshal(b, &back); err != nil || back.Ops != res.Ops || back.Latency.P99 != res.Latency.P99 {
		t.Errorf("result JSON does not round-trip: %v", err)
	}
	var tbl bytes.Buffer
	res.WriteTable(&tbl)
	for _, want := range []string{"p99.9 ms", res.Workload} {
		if !strings.Contains(tbl.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tbl.String())
		}
	}
}

func TestWorkloadsAgainstNode(t *testing.T) {
	for _, tc := range []struct {
		name, workload, push string
		rate                 float64
		pipeline             int
		msgpack              bool
	}{
		{"put", "put", "", 50, 0, false},
		{"put-closed", "put", "", 0, 0, false},
		{"batch", "batch", "", 20, 0, false},
		{"ws", "ws", "", 50, 0, false},
		{"ws-pipelined", "ws", "", 20, 8, false},
		{"ws-msgpack", "ws", "", 20, 8, true},
		{"read", "read", "", 50, 0, false},
		{"propagation-ws", "propagation", "ws", 50, 0, false},
		{"propagation-sse", "propagation", "sse", 50, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, mint := startNode(t)
			cfg := smokeConfig(url, mint, tc.workload, tc.rate)
			cfg.Push = tc.push
			cfg.Pipeline, cfg.WSMsgpack = tc.pipeline, tc.msgpack
			var prog bytes.Buffer
			cfg.Progress = &prog
			res, err := bench.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res)
			if tc.workload == "read" && res.NotFound > 0 {
				t.Errorf("read after prefill found no cursor %d times", res.NotFound)
			}
			if tc.workload == "batch" && res.Updates != 5*(res.OK+res.Stale) {
				t.Errorf("batch: %d updates in %d requests of 5", res.Updates, res.OK+res.Stale)
			}
			if tc.pipeline > 0 && res.Updates != int64(tc.pipeline)*(res.OK+res.Stale) {
				t.Errorf("%s: %d updates in %d groups of %d", tc.name, res.Updates, res.OK+res.Stale, tc.pipeline)
			}
			if tc.workload == "propagation" && res.Delivered == 0 {
				t.Errorf("propagation: nothing delivered of %d applied", res.Applied)
			}
			if !strings.Contains(prog.String(), tc.workload) {
				t.Errorf("no progress line: %q", prog.String())
			}
		})
	}
}

// TestOpenLoopAccountsForEverySend runs an open loop against a server too
// slow for it and checks the bookkeeping that avoids coordinated omission:
// every send the schedule wanted in the window either ran (and was
// measured from its intended time) or is reported unsent.
func TestOpenLoopAccountsForEverySend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte(`{"applied":true}`))
	}))
	defer srv.Close()
	res, err := bench.Run(context.Background(), bench.Config{URL: srv.URL, Token: "t", Workload: "put", Rate: 500,
		Concurrency: 1, Duration: time.Second, Warmup: 100 * time.Millisecond, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "open" || res.Unsent == 0 {
		t.Fatalf("a server slower than the schedule must leave sends unsent: %+v", res)
	}
	if got := res.Ops + res.Unsent; got != 500 {
		t.Fatalf("ops %d + unsent %d = %d, want the 500 the schedule had in the window", res.Ops, res.Unsent, got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []bench.Config{
		{URL: "localhost:8080", Token: "t", Workload: "put"},
		{URL: "http://x", Workload: "put"},
		{URL: "http://x", Token: "t", Workload: "nope"},
		{URL: "http://x", Token: "t", Workload: "batch", Batch: 501},
		{URL: "http://x", Token: "t", Workload: "propagation", Push: "carrier-pigeon"},
	} {
		c.EnsureDefaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
