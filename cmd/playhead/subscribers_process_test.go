package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkSubscriberMemory measures what one connected device costs a
// node: it starts the real binary (`playhead serve`, one node), opens
// PLAYHEAD_BENCH_SUBSCRIBERS WebSocket push subscribers (default 2 000),
// each on its own profile as a device would, from this process, and reads
// the server process's memory before and after:
//
//   - RSS-KiB/sub: resident set (/proc/PID/status VmRSS) grown per subscriber;
//   - heap-KiB/sub: Go heap in use after a collection (pprof heap ?gc=1,
//     HeapInuse), per subscriber;
//   - stack-KiB/sub: goroutine stacks in use, per subscriber;
//   - goroutines/sub: server goroutines per subscriber.
//
// Kernel socket buffers are not in RSS; they are counted in the capacity
// model separately (docs/CAPACITY.md). The clients live in this process,
// so they do not inflate the server's figures.
//
//	PLAYHEAD_BENCH_SUBSCRIBERS=10000 go test ./cmd/playhead -run '^$' -bench SubscriberMemory -benchtime 1x
func BenchmarkSubscriberMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs the binary")
	}
	n := 2000
	if s := os.Getenv("PLAYHEAD_BENCH_SUBSCRIBERS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 10 {
			b.Fatalf("PLAYHEAD_BENCH_SUBSCRIBERS=%q: want an integer ≥ 10", s)
		}
		n = v
	}
	bin, err := buildOnce()
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		measureSubscribers(b, bin, n)
	}
}

func measureSubscribers(b *testing.B, bin string, n int) {
	dir := b.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("subscriber-memory-secret-0123456789abcdef"), 0o600); err != nil {
		b.Fatal(err)
	}
	addr, pprofAddr := freeAddr(b), freeAddr(b)
	cmd := exec.Command(bin, "serve", "--data-dir", filepath.Join(dir, "data"), "--http-addr", addr,
		"--auth-secret-file", secretFile, "--account-rate", "-1", "--pprof-addr", pprofAddr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitReady(b, addr)
	out, err := exec.Command(bin, "token", "--secret-file", secretFile, "--account", "acct-mem").Output()
	if err != nil {
		b.Fatalf("playhead token: %v", err)
	}
	f := strings.Fields(string(out))
	tok := f[len(f)-1]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dial := func(i int) *websocket.Conn {
		url := fmt.Sprintf("ws://%s/v1/profiles/p%d/events", addr, i)
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			b.Fatalf("subscriber %d: %v", i, err)
		}
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
		return c
	}
	// Warm up: a few subscribers open and close, so that pools and the
	// hub's first allocations are in the "before" figures.
	for i := range 20 {
		dial(-1-i).Close(websocket.StatusNormalClosure, "")
	}
	time.Sleep(time.Second)
	before := serverMem(b, cmd.Process.Pid, pprofAddr)

	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conns[i] = dial(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	time.Sleep(2 * time.Second) // let the server finish setting each stream up
	after := serverMem(b, cmd.Process.Pid, pprofAddr)
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}

	per := func(a, z int64) float64 { return float64(z-a) / float64(n) }
	b.ReportMetric(per(before.rssKiB, after.rssKiB), "RSS-KiB/sub")
	b.ReportMetric(per(before.heap, after.heap)/1024, "heap-KiB/sub")
	b.ReportMetric(per(before.stack, after.stack)/1024, "stack-KiB/sub")
	b.ReportMetric(per(before.goroutines, after.goroutines), "goroutines/sub")
	b.ReportMetric(float64(after.rssKiB)/1024, "RSS-MiB")
	b.ReportMetric(float64(n), "subscribers")
}

type memFigures struct {
	rssKiB, heap, stack, goroutines int64
}

// serverMem reads the server's resident set from /proc and its Go heap,
// stacks and goroutines from its pprof endpoint (after a collection).
func serverMem(b *testing.B, pid int, pprofAddr string) memFigures {
	var m memFigures
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			m.rssKiB, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			m.heap, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			m.stack, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		b.Fatal(err)
	}
	first, _ := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	if v, ok := strings.CutPrefix(strings.TrimSpace(first), "goroutine profile: total "); ok {
		m.goroutines, _ = strconv.ParseInt(v, 10, 64)
	}
	if m.rssKiB == 0 || m.heap == 0 || m.goroutines == 0 {
		b.Fatalf("could not read the server's memory figures: %+v", m)
	}
	return m
}

func waitReady(b *testing.B, addr string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("playhead serve did not become ready")
}
