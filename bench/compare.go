package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playhead/playhead/api"
)

// Compare defaults: about four minutes in all on a small machine.
const (
	DefaultCompareRounds   = 3
	DefaultCompareDuration = 5 * time.Second
	DefaultCompareWarmup   = time.Second
	DefaultPropagationRate = 200.0
)

// CompareCases are the cases Compare runs, in order. read-half is an open
// loop at half of playhead's closed-loop read throughput of round 1 (same
// rate for both systems); ws has no baseline (the baseline has no WebSocket).
var CompareCases = []string{"put", "batch", "ws", "ws-msgpack", "read", "read-half", "propagation"}

// CompareConfig describes one comparison. Zero fields take the defaults.
type CompareConfig struct {
	// Playhead is the playhead binary: it runs the node (`serve`).
	// Required.
	Playhead string
	// Bench is the playhead-bench binary: it runs the baseline
	// (`baseline-server`). Required.
	Bench string
	// RedisServer is the redis-server binary. The default value is the one
	// on $PATH.
	RedisServer string
	// Docs is the directory that receives BENCHMARKS.md, bench/*.png and
	// bench/raw/*.json. The default value is "docs".
	Docs string
	// Rounds of every case on each system, alternating which goes first.
	// The default value is 3.
	Rounds int
	// Duration and Warmup of each run. Defaults 5s and 1s.
	Duration, Warmup time.Duration
	// Concurrency, Batch, Profiles, Videos as in Config (defaults there).
	Concurrency, Batch, Profiles, Videos int
	// Pipeline is the ws case's updates sent back to back per device before
	// waiting for their acks. The default value is 16 (the pipelining depth
	// at which Redis ran the Lua script at 154,000/s on this machine).
	Pipeline int
	// PropagationRate is the writes/s of the propagation case (open loop).
	// The default value is 200.
	PropagationRate float64
	// Cases to run, a subset of CompareCases. The default value is all.
	Cases []string
	// Seed of round 1; round r uses Seed+r-1.
	Seed uint64
	// Log receives what is happening; Progress, when set, also gets each
	// run's per-second line.
	Log, Progress io.Writer
}

func (c *CompareConfig) ensureDefaults() {
	if c.Pipeline <= 0 {
		c.Pipeline = 16
	}
	if c.RedisServer == "" {
		c.RedisServer = "redis-server"
	}
	if c.Docs == "" {
		c.Docs = "docs"
	}
	if c.Rounds <= 0 {
		c.Rounds = DefaultCompareRounds
	}
	if c.Duration <= 0 {
		c.Duration = DefaultCompareDuration
	}
	if c.Warmup <= 0 {
		c.Warmup = DefaultCompareWarmup
	}
	if c.PropagationRate <= 0 {
		c.PropagationRate = DefaultPropagationRate
	}
	if len(c.Cases) == 0 {
		c.Cases = CompareCases
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// proc is a server process Compare started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(name, logPath string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The servers take only the flags given here, not PLAYHEAD_* settings
	// the caller's environment may hold.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PLAYHEAD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// cpuSeconds is the user+system CPU time the processes used so far
// (/proc/PID/stat, USER_HZ 100), or 0 where /proc is not available.
func cpuSeconds(ps ...*proc) float64 {
	var t float64
	for _, p := range ps {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			return 0
		}
		_, rest, _ := bytes.Cut(b, []byte(") ")) // the command name may contain spaces
		f := strings.Fields(string(rest))
		if len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		t += (u + s) / 100
	}
	return t
}

// rssBytes is the processes' resident memory (/proc/PID/status VmRSS).
func rssBytes(ps ...*proc) int64 {
	var t int64
	for _, p := range ps {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				t += kb << 10
			}
		}
	}
	return t
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(ctx context.Context, url string, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return fmt.Errorf("bench: %s exited:\n%s", p.name, p.logTail())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("bench: %s not ready at %s after 30s:\n%s", p.name, url, p.logTail())
}

// system is one side of the comparison.
type system struct {
	name  string
	url   string
	procs []*proc // whose CPU and memory count
}

// Compare starts Redis, the baseline and a playhead node on loopback in a
// temporary directory, runs every case against both systems round by round
// (alternating which goes first), and writes the report, plots and raw
// results under cfg.Docs.
func Compare(ctx context.Context, cfg CompareConfig) error {
	cfg.ensureDefaults()
	if cfg.Playhead == "" {
		return fmt.Errorf("%w: CompareConfig.Playhead (the playhead binary) is required", ErrConfig)
	}
	if cfg.Bench == "" {
		return fmt.Errorf("%w: CompareConfig.Bench (the playhead-bench binary, for the baseline) is required", ErrConfig)
	}
	for _, c := range cfg.Cases {
		if !slices.Contains(CompareCases, c) {
			return fmt.Errorf("%w: case %q is not one of %s", ErrConfig, c, strings.Join(CompareCases, ", "))
		}
	}
	redisBin, err := exec.LookPath(cfg.RedisServer)
	if err != nil {
		return fmt.Errorf("bench: %s not found (apt-get install -y redis-server, or run bench/compare.sh which does): %w", cfg.RedisServer, err)
	}
	tmp, err := os.MkdirTemp("", "playhead-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	raw := make([]byte, 48)
	rand.Read(raw)
	secret := []byte(base64.StdEncoding.EncodeToString(raw))
	secretFile := filepath.Join(tmp, "secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		return err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	redisAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	blURL, phURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1]), fmt.Sprintf("http://127.0.0.1:%d", ports[2])

	var procs []*proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	start := func(name string, bin string, args ...string) (*proc, error) {
		p, err := startProc(name, filepath.Join(tmp, name+".log"), bin, args...)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	redisProc, err := start("redis", redisBin, "--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1", "--dir", tmp,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no")
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	for i := 0; rdb.Ping(ctx).Err() != nil; i++ {
		if i > 100 || !redisProc.alive() {
			return fmt.Errorf("bench: redis did not start:\n%s", redisProc.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	redisVersion := "?"
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "redis_version:"); ok {
				redisVersion = v
			}
		}
	}
	blProc, err := start("baseline", cfg.Bench, "baseline-server", "--http-addr", strings.TrimPrefix(blURL, "http://"),
		"--redis-addr", redisAddr, "--secret-file", secretFile)
	if err != nil {
		return err
	}
	phProc, err := start("playhead", cfg.Playhead, "serve", "--node-id", "bench", "--data-dir", filepath.Join(tmp, "playhead-data"),
		"--http-addr", strings.TrimPrefix(phURL, "http://"), "--auth-secret-file", secretFile,
		"--device-rate", "-1", "--account-rate", "-1", "--log-level", "warn")
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, blURL+"/healthz", blProc); err != nil {
		return err
	}
	if err := waitHTTP(ctx, phURL+"/readyz", phProc); err != nil {
		return err
	}
	systems := map[string]system{
		SysPlayhead: {SysPlayhead, phURL, []*proc{phProc}},
		SysBaseline: {SysBaseline, blURL, []*proc{blProc, redisProc}},
	}
	// One account per profile, as households are: no account is hot
	// beyond its own profile.
	var tokMu sync.Mutex
	toks := map[string]string{}
	mint := func(profile string) (string, error) {
		tokMu.Lock()
		defer tokMu.Unlock()
		if t, ok := toks[profile]; ok {
			return t, nil
		}
		t, err := api.IssueToken(secret, "acct-"+profile, nil, false, 24*time.Hour, time.Now())
		toks[profile] = t
		return t, err
	}

	rawDir := filepath.Join(cfg.Docs, "bench", "raw")
	if err := os.MkdirAll(rawDir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(rawDir, "*.json"))
	for _, f := range append(old, filepath.Join(rawDir, headerFile)) {
		os.Remove(f)
	}
	fmt.Fprintf(cfg.Log, "redis %s at %s, baseline at %s, playhead at %s; %d rounds of %v (+%v warm-up) per case and system\n",
		redisVersion, redisAddr, blURL, phURL, cfg.Rounds, cfg.Duration, cfg.Warmup)

	all := Results{}
	readHalfRate := 0.0
	began := time.Now()
	for round := 1; round <= cfg.Rounds; round++ {
		for _, c := range cfg.Cases {
			order := []string{SysPlayhead, SysBaseline}
			if round%2 == 0 {
				order = []string{SysBaseline, SysPlayhead}
			}
			if c == "ws" || c == "ws-msgpack" {
				order = []string{SysPlayhead}
			}
			if c == "read-half" && readHalfRate == 0 {
				if rs := all["read"][SysPlayhead]; len(rs) > 0 {
					readHalfRate = rs[0].OpsPerSec / 2
				} else {
					fmt.Fprintln(cfg.Log, "read-half skipped: it needs the read case first")
					continue
				}
			}
			for _, sysName := range order {
				sys := systems[sysName]
				for _, p := range sys.procs {
					if !p.alive() {
						return fmt.Errorf("bench: %s died:\n%s", p.name, p.logTail())
					}
				}
				rc := Config{
					URL: sys.url, Mint: mint, Workload: c, Concurrency: cfg.Concurrency, Duration: cfg.Duration,
					Warmup: cfg.Warmup, Profiles: cfg.Profiles, Videos: cfg.Videos, Batch: cfg.Batch,
					Seed: cfg.Seed + uint64(round) - 1, Progress: cfg.Progress,
				}
				switch c {
				case "read-half":
					rc.Workload, rc.Rate = "read", readHalfRate
				case "ws":
					rc.Pipeline = cfg.Pipeline
				case "ws-msgpack":
					rc.Workload, rc.Pipeline, rc.WSMsgpack = "ws", cfg.Batch, true
				case "propagation":
					rc.Rate, rc.Push = cfg.PropagationRate, "sse" // the baseline pushes over SSE only
				}
				var cpu0, cpu1 float64
				rc.OnWindow = func(begin bool) {
					if begin {
						cpu0 = cpuSeconds(sys.procs...)
					} else {
						cpu1 = cpuSeconds(sys.procs...)
					}
				}
				res, err := Run(ctx, rc)
				if err != nil {
					return fmt.Errorf("bench: %s on %s, round %d: %w", c, sysName, round, err)
				}
				if cpu1 > cpu0 {
					res.ServerCPUSeconds = cpu1 - cpu0
				}
				res.ServerRSSBytes = rssBytes(sys.procs...)
				all.Add(c, sysName, res)
				f, err := os.Create(filepath.Join(rawDir, ResultFile(c, sysName, round)))
				if err != nil {
					return err
				}
				err = res.WriteJSON(f)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cfg.Log, "[%3.0fs] round %d %-11s %-8s %9.0f %-9s p50 %7.2f ms  p99 %8.2f ms  errors %d  409 %d  unsent %d  server CPU %.2fs\n",
					time.Since(began).Seconds(), round, c, sysName, Throughput(res), throughputUnit(res.Workload), res.Latency.P50,
					res.Latency.P99, res.ErrorCount(), res.Stale, res.Unsent, res.ServerCPUSeconds)
			}
		}
	}

	plotDir := filepath.Join(cfg.Docs, "bench")
	if err := WritePlots(all, plotDir); err != nil {
		return fmt.Errorf("bench: plots: %w", err)
	}
	header := compareHeader(cfg, redisVersion, readHalfRate, time.Since(began))
	if err := os.WriteFile(filepath.Join(rawDir, headerFile), []byte(header), 0o644); err != nil {
		return err
	}
	out := filepath.Join(cfg.Docs, "BENCHMARKS.md")
	if err := WriteReport(out, ReportInput{Results: all, Header: header, PlotDir: "bench"}); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Log, "wrote %s, %s/*.png and %s/*.json\n", out, plotDir, rawDir)
	return nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func compareHeader(cfg CompareConfig, redisVersion string, readHalf float64, took time.Duration) string {
	c := Config{Concurrency: cfg.Concurrency, Profiles: cfg.Profiles, Videos: cfg.Videos, Batch: cfg.Batch}
	c.EnsureDefaults()
	var b strings.Builder
	fmt.Fprintf(&b, "Generated by `bench/compare.sh` (`playhead-bench compare`) on %s in %.0f s. Regenerate with `bench/compare.sh` (about 4 minutes; `bench/compare.sh --long` for 5 rounds of 20 s).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Seconds())
	fmt.Fprintf(&b, "- **Machine**: %d CPUs (%s), %s/%s, %s; the load generator, the servers and Redis share these CPUs, and the machine was shared with other work, so absolute figures are noisy and low — the ratios are the point.\n",
		runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "- **playhead**: one `playhead serve` node on loopback, Pebble in a temp dir, the WAL synced before every acknowledgement (group commit); rate limits off (the baseline has none).\n")
	fmt.Fprintf(&b, "- **baseline** (`bench/baseline`): `playhead-bench baseline-server` (Go net/http, go-redis/v9 pool, Lua stale-refusal, PUBLISH + SSE) over redis-server %s with `appendonly yes`, `appendfsync everysec`, no RDB: it acknowledges before the fsync, a weaker promise than playhead's.\n", redisVersion)
	fmt.Fprintf(&b, "- **Load**: %d rounds, alternating which system goes first (A B, B A, …); each run %v measured after %v warm-up; closed loop with %d workers unless noted, each HTTP worker on its own keep-alive connection through a minimal HTTP/1.1 client (as wrk; net/http's client cost about as much CPU per request as the server); Zipf(%.1f) over %d profiles × %d videos, %d devices per profile, one account per profile; devices stamp their own (epoch, seq, session) like the SDK, so both systems refuse exactly the same writes (409s come only from two writes racing on one cursor).\n",
		cfg.Rounds, cfg.Duration, cfg.Warmup, c.Concurrency, c.ZipfS, c.Profiles, c.Videos, c.DevicesPerProfile)
	fmt.Fprintf(&b, "- **Cases**: `put` one update per PUT; `batch` %d updates per POST; `ws` one update per WebSocket message, %d sent back to back by each device before it waits for their acks (playhead only: the baseline has no WebSocket); `ws-msgpack` the same over the `playhead.v1.msgpack` subprotocol, %d updates per array message; `read` resume GETs over prefilled cursors; `read-half` the same, open loop at %.0f reads/s (half of playhead's round-1 `read`), latency from the intended send time; `propagation` open loop at %.0f PUTs/s to %d profiles each watched by another device over SSE, latency from the write's send to the push of that version.\n",
		c.Batch, cfg.Pipeline, c.Batch, readHalf, cfg.PropagationRate, c.Subscribers)
	b.WriteString("- Raw results: `docs/bench/raw/CASE-SYSTEM-ROUND.json`; `playhead-bench report --dir docs/bench/raw` rebuilds this file from them.\n")
	return b.String()
}

// headerFile, next to the raw results, keeps the report's header so
// Report can rebuild the same file.
const headerFile = "header.md"

// Report rebuilds the report and plots from a directory of raw results.
func Report(rawDir, docs string) error {
	all, err := LoadResults(rawDir)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return errors.New("bench: no results NAME-SYSTEM-ROUND.json in " + rawDir)
	}
	if err := WritePlots(all, filepath.Join(docs, "bench")); err != nil {
		return err
	}
	header := "Rebuilt by `playhead-bench report` from the raw results in `docs/bench/raw/`.\n"
	if b, err := os.ReadFile(filepath.Join(rawDir, headerFile)); err == nil {
		header = string(b)
	}
	return WriteReport(filepath.Join(docs, "BENCHMARKS.md"), ReportInput{Results: all, Header: header, PlotDir: "bench"})
}
