// Command playhead-bench is playhead's load generator, the Redis baseline
// and their comparison (bench/compare.sh). It is its own binary so that the
// product binary, cmd/playhead, links neither the plotting nor the Redis
// client.
//
//	playhead-bench [flags]                  load against any URL speaking the device API
//	playhead-bench baseline-server [flags]  the Redis baseline (bench/baseline)
//	playhead-bench compare [flags]          playhead vs the baseline → docs/BENCHMARKS.md
//	playhead-bench report [flags]           rebuild docs/BENCHMARKS.md from raw results
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/bench"
	"github.com/playhead/playhead/bench/baseline"
	"github.com/playhead/playhead/internal/cliflag"
	"github.com/playhead/playhead/node"
)

// inprocessSecret signs tokens for `--url inprocess` (a throwaway node).
const inprocessSecret = "playhead-bench-inprocess-secret-0123456789"

func main() {
	err := cmdBench(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, cliflag.ErrReported):
		os.Exit(2)
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "playhead-bench: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "playhead-bench: %v\n", err)
		os.Exit(1)
	}
}

// errUsage marks a usage error (cliflag.ErrUsage): the usage was printed.
var errUsage = cliflag.ErrUsage

var (
	parseFlags = cliflag.Parse
	usage      = cliflag.Usage
)

// cmdBench runs the load generator; `bench baseline-server`, `bench
// compare` and `bench report` are its helpers (bench/compare.sh runs compare).
func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "baseline-server":
			return cmdBenchBaseline(args[1:], stdout, stderr)
		case "compare":
			return cmdBenchCompare(args[1:], stdout, stderr)
		case "report":
			return cmdBenchReport(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the service under test; \"inprocess\" starts a playhead node on Pebble in a temp dir inside this process (for --cpuprofile)")
	token := fs.String("token", "", "bearer token sent with every request (or --secret-file to mint tokens)")
	secretFile := fs.String("secret-file", "", "the cluster's auth secret file: tokens are minted for --account")
	account := fs.String("account", "per-profile", "account of minted tokens; \"per-profile\" mints one account per profile (acct-PROFILE), as households are")
	workload := fs.String("workload", "put", "what the devices do: "+strings.Join(bench.Workloads, ", "))
	rate := fs.Float64("rate", 0, "open loop: requests (ws: updates) per second, latency from each one's intended send time; 0 = closed loop at the highest rate")
	conc := fs.Int("concurrency", bench.DefaultConcurrency, "closed loop: workers; open loop: most requests in flight; ws: connections")
	dur := fs.Duration("duration", bench.DefaultDuration, "measured time")
	warm := fs.Duration("warmup", bench.DefaultWarmup, "time run before measuring, not recorded")
	drain := fs.Duration("drain", bench.DefaultDrain, "how long requests in flight at the end may take to finish")
	profiles := fs.Int("profiles", bench.DefaultProfiles, "profiles, picked with a Zipf law")
	videos := fs.Int("videos", bench.DefaultVideos, "videos per profile, picked with a Zipf law")
	devices := fs.Int("devices-per-profile", bench.DefaultDevicesPerProfile, "devices of each profile (each with its own session per video)")
	zipfS := fs.Float64("zipf-s", bench.DefaultZipfS, "Zipf exponent (> 1; larger = hotter head)")
	uniformKeys := fs.Bool("uniform", false, "pick profiles and videos uniformly instead of with a Zipf law")
	batchN := fs.Int("batch", bench.DefaultBatch, "batch: updates per request (≤ 500)")
	pipeline := fs.Int("pipeline", 1, "ws: updates a device sends back to back before waiting for their acks (≤ 256)")
	wsMsgpack := fs.Bool("ws-msgpack", false, "ws: speak the playhead.v1.msgpack subprotocol, the --pipeline updates as one array message")
	wsOmitOwn := fs.Bool("ws-omit-own", false, "ws: each device opens its stream with omit_device=ITS-ID, so its own writes are not echoed back")
	push := fs.String("push", bench.DefaultPush, "propagation: the subscribers' transport, ws or sse")
	subs := fs.Int("subscribers", bench.DefaultSubscribers, "propagation: watched profiles (one listening device each)")
	noPrefill := fs.Bool("no-prefill", false, "read: skip writing one cursor per profile and video first")
	seed := fs.Uint64("seed", 1, "random seed of the key choices")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress line every second on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to this file (with --url inprocess it covers the node too)")
	mutexProfile := fs.String("mutexprofile", "", "write a mutex contention profile of this process to this file (with --url inprocess: the node's locks)")
	fs.Usage = usage(stderr, fs,
		"playhead-bench [--workload W] [--url U] (--token T | --secret-file F) [flags]\n"+
			"       playhead-bench baseline-server [flags]   the Redis baseline (bench/baseline)\n"+
			"       playhead-bench compare [flags]           playhead vs the baseline → docs/BENCHMARKS.md (bench/compare.sh)\n"+
			"       playhead-bench report [flags]            rebuild docs/BENCHMARKS.md from raw results",
		"Load generator of simulated devices against any URL speaking playhead's device API: HDR latency\n"+
			"histograms, open or closed loop, Zipf-distributed profiles and videos, a table on stdout.")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg := bench.Config{URL: *url, Token: *token, Workload: *workload, Rate: *rate, Concurrency: *conc, Duration: *dur,
		Warmup: *warm, Drain: *drain, Profiles: *profiles, Videos: *videos, DevicesPerProfile: *devices, ZipfS: *zipfS, Uniform: *uniformKeys,
		Batch: *batchN, Pipeline: *pipeline, WSMsgpack: *wsMsgpack, WSOmitOwn: *wsOmitOwn, Push: *push, Subscribers: *subs, NoPrefill: *noPrefill, Seed: *seed}
	var secret []byte
	if *url == "inprocess" {
		stop, u, err := inprocessNode()
		if err != nil {
			return err
		}
		defer stop()
		cfg.URL, secret = u, []byte(inprocessSecret)
	} else if *secretFile != "" && *token == "" {
		var err error
		if secret, err = node.LoadSecret(*secretFile); err != nil {
			return err
		}
	}
	if secret != nil && *token == "" {
		if *account == "per-profile" {
			cfg.Mint = func(p string) (string, error) {
				return api.IssueToken(secret, "acct-"+p, nil, false, 24*time.Hour, time.Now())
			}
		} else {
			t, err := api.IssueToken(secret, *account, nil, false, 24*time.Hour, time.Now())
			if err != nil {
				return err
			}
			cfg.Token = t
		}
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *mutexProfile != "" {
		runtime.SetMutexProfileFraction(1)
		defer func() {
			if f, err := os.Create(*mutexProfile); err == nil {
				pprof.Lookup("mutex").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.WriteTable(stdout)
	if *jsonOut == "" {
		return nil
	}
	f, err := os.Create(*jsonOut)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// inprocessNode starts a single playhead node on Pebble in a temp dir,
// rate limits off, and returns its URL.
func inprocessNode() (stop func(), url string, err error) {
	dir, err := os.MkdirTemp("", "playhead-bench-")
	if err != nil {
		return nil, "", err
	}
	n, err := node.New(node.Config{NodeID: "bench", DataDir: dir, AuthSecret: []byte(inprocessSecret),
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.Shutdown(context.Background())
		os.RemoveAll(dir)
		return nil, "", err
	}
	srv := &http.Server{Handler: n.Handler()}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		n.Shutdown(context.Background())
		os.RemoveAll(dir)
	}, "http://" + ln.Addr().String(), nil
}

func cmdBenchBaseline(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench baseline-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "127.0.0.1:8090", "host:port the baseline's API listens on")
	redisAddr := fs.String("redis-addr", "127.0.0.1:6379", "Redis host:port")
	pool := fs.Int("redis-pool", 64, "Redis connection pool size (go-redis PoolSize); idle connections kept: a quarter")
	secretFile := fs.String("secret-file", "", "auth secret file: HS256 device tokens are verified as playhead does; empty = no auth")
	fs.Usage = usage(stderr, fs, "playhead-bench baseline-server [flags]",
		"The benchmark baseline (bench/baseline): a stateless HTTP service over Redis speaking playhead's\nPUT/batch/GET positions and SSE events.")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var secret []byte
	if *secretFile != "" {
		var err error
		if secret, err = node.LoadSecret(*secretFile); err != nil {
			return err
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: *pool, MinIdleConns: *pool / 4})
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := baseline.Ready(ctx, rdb); err != nil {
		return fmt.Errorf("redis at %s: %w", *redisAddr, err)
	}
	s := baseline.New(rdb, secret)
	defer s.Close()
	srv := &http.Server{Addr: *addr, Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Fprintf(stdout, "baseline listening on http://%s (redis %s)\n", *addr, *redisAddr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdBenchCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", bench.DefaultCompareRounds, "rounds of every case on each system (alternating which goes first)")
	dur := fs.Duration("duration", bench.DefaultCompareDuration, "measured time of each run")
	warm := fs.Duration("warmup", bench.DefaultCompareWarmup, "warm-up of each run")
	long := fs.Bool("long", false, "a longer, steadier comparison: 5 rounds of 20s after 5s warm-up (unless those flags are given)")
	conc := fs.Int("concurrency", bench.DefaultConcurrency, "closed-loop workers (and the most in flight in open loop)")
	batchN := fs.Int("batch", bench.DefaultBatch, "updates per batch request")
	pipeline := fs.Int("pipeline", 16, "ws case: updates each device sends back to back before waiting for their acks")
	profiles := fs.Int("profiles", bench.DefaultProfiles, "profiles (Zipf)")
	videos := fs.Int("videos", bench.DefaultVideos, "videos per profile (Zipf)")
	propRate := fs.Float64("propagation-rate", bench.DefaultPropagationRate, "writes per second of the propagation case")
	cases := fs.String("cases", strings.Join(bench.CompareCases, ","), "cases to run, comma-separated")
	docs := fs.String("docs", "docs", "directory receiving BENCHMARKS.md, bench/*.png and bench/raw/*.json")
	redisServer := fs.String("redis-server", "redis-server", "the redis-server binary")
	bin := fs.String("playhead", "playhead", "the playhead binary to benchmark (a path, or a name on $PATH; bench/compare.sh builds it)")
	seed := fs.Uint64("seed", 1, "seed of round 1 (round r uses seed+r-1)")
	progress := fs.Bool("progress", false, "print every run's per-second progress line")
	fs.Usage = usage(stderr, fs, "playhead-bench compare [flags]",
		"Starts redis-server (AOF, appendfsync everysec), the baseline and a playhead node on loopback in a temp\n"+
			"dir, runs each case against both, alternating, and writes docs/BENCHMARKS.md with plots.\n"+
			"bench/compare.sh installs redis-server if missing, builds playhead and playhead-bench and runs this.")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *long {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			*rounds = 5
		}
		if !set["duration"] {
			*dur = 20 * time.Second
		}
		if !set["warmup"] {
			*warm = 5 * time.Second
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if p, err := exec.LookPath(*bin); err == nil {
		*bin = p
	} else {
		return fmt.Errorf("--playhead %q: %v (build it: go build -o playhead ./cmd/playhead)", *bin, err)
	}
	cfg := bench.CompareConfig{Playhead: *bin, Bench: self, RedisServer: *redisServer, Docs: *docs, Rounds: *rounds, Duration: *dur,
		Warmup: *warm, Concurrency: *conc, Batch: *batchN, Pipeline: *pipeline, Profiles: *profiles, Videos: *videos, PropagationRate: *propRate,
		Cases: strings.Split(*cases, ","), Seed: *seed, Log: stderr}
	if *progress {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench.Compare(ctx, cfg)
}

func cmdBenchReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "docs/bench/raw", "directory of raw results CASE-SYSTEM-ROUND.json")
	docs := fs.String("docs", "docs", "directory receiving BENCHMARKS.md and bench/*.png")
	fs.Usage = usage(stderr, fs, "playhead-bench report [--dir D] [--docs D]", "Rebuilds the compare report and plots from raw results.")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return bench.Report(*dir, *docs)
}
