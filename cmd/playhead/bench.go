package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playhead/playhead/bench"
	"github.com/playhead/playhead/bench/baseline"
	"github.com/playhead/playhead/node"
)

// cmdBench runs the load generator, or with "baseline-server" the Redis
// baseline service, or with "report" the compare report.
func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "baseline-server":
			return cmdBenchBaseline(args[1:], stdout, stderr)
		case "report":
			return cmdBenchReport(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the service under test")
	token := fs.String("token", "", "bearer token (or --secret-file to mint one)")
	secretFile := fs.String("secret-file", "", "cluster auth secret file; a token for --account is minted")
	account := fs.String("account", "bench", "account of a minted token; \"per-profile\" mints one account per profile (acct-PROFILE)")
	workload := fs.String("workload", "put", "put, batch, ws, read or propagation")
	rate := fs.Float64("rate", 0, "open loop: requests per second (latency from intended send time); 0 = closed loop")
	conc := fs.Int("concurrency", 32, "closed-loop workers, or open-loop max requests in flight")
	dur := fs.Duration("duration", 10*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "warm-up before measuring")
	devices := fs.Int("devices", 1000, "simulated devices")
	profiles := fs.Int("profiles", 1000, "profiles (Zipf-chosen)")
	videos := fs.Int("videos", 200, "videos per profile (Zipf-chosen)")
	zipfS := fs.Float64("zipf-s", 1.1, "Zipf exponent (> 1)")
	batchN := fs.Int("batch", 50, "updates per batch request")
	push := fs.String("push", "ws", "propagation subscriber transport: ws or sse")
	subs := fs.Int("subscribers", 20, "propagation: subscribed profiles")
	seed := fs.Uint64("seed", 1, "random seed")
	jsonOut := fs.String("json", "", "write the result as JSON to this file")
	quiet := fs.Bool("quiet", false, "no per-second progress line")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (with --url inprocess: node and load generator together)")
	fs.Usage = usage(stderr, fs, "playhead bench [--workload W] [--url U] (--token T | --secret-file F) [flags]\n       playhead bench baseline-server [flags]\n       playhead bench report [flags]",
		"Load generator of simulated devices against any playhead-compatible URL (issue #5).")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *url == "inprocess" {
		// a playhead node on Pebble in a temp dir, in this process, for pprof
		dir, err := os.MkdirTemp("", "playhead-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sec := []byte("0123456789abcdef0123456789abcdef-inprocess")
		n, err := node.New(node.Config{NodeID: "bench", DataDir: dir, AuthSecret: sec, Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
		if err != nil {
			return err
		}
		defer n.Shutdown(context.Background())
		srv := httptest.NewServer(n.Handler())
		defer srv.Close()
		*url = srv.URL
		if *token, err = node.IssueToken(sec, *account, nil, false, 24*time.Hour, time.Now()); err != nil {
			return err
		}
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
	var mint func(string) (string, error)
	if *token == "" && *secretFile != "" {
		secret, err := node.LoadSecret(*secretFile)
		if err != nil {
			return err
		}
		if *token, err = node.IssueToken(secret, *account, nil, false, 24*time.Hour, time.Now()); err != nil {
			return err
		}
		if *account == "per-profile" {
			mint = func(p string) (string, error) {
				return node.IssueToken(secret, "acct-"+p, nil, false, 24*time.Hour, time.Now())
			}
		}
	}
	cfg := bench.Config{URL: *url, Token: *token, Workload: *workload, Rate: *rate, Concurrency: *conc, Duration: *dur,
		Warmup: *warm, Devices: *devices, Profiles: *profiles, Videos: *videos, ZipfS: *zipfS, Batch: *batchN,
		Push: *push, Subscribers: *subs, Seed: *seed, Mint: mint}
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.WriteTable(stdout)
	if *jsonOut != "" {
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
	return nil
}

func cmdBenchBaseline(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench baseline-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "127.0.0.1:8090", "listen address")
	redisAddr := fs.String("redis-addr", "127.0.0.1:6379", "Redis address")
	pool := fs.Int("redis-pool", 64, "Redis connection pool size")
	secretFile := fs.String("secret-file", "", "auth secret file (HS256 tokens verified); empty = no auth")
	fs.Usage = usage(stderr, fs, "playhead bench baseline-server [flags]", "The Redis-backed baseline service of bench/baseline.")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var secret []byte
	if *secretFile != "" {
		var err error
		if secret, err = node.LoadSecret(*secretFile); err != nil {
			return err
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: *pool, MinIdleConns: *pool / 4})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := baseline.Script.Load(ctx, rdb).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	srv := &http.Server{Addr: *addr, Handler: baseline.New(rdb, secret).Handler()}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Fprintf(stdout, "baseline listening on http://%s (redis %s)\n", *addr, *redisAddr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdBenchReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of results NAME-SYSTEM-ROUND.json (system: playhead, baseline)")
	out := fs.String("out", "docs/BENCHMARKS.md", "markdown report to write")
	plots := fs.String("plots", "docs/bench", "directory for PNG plots")
	fs.Usage = usage(stderr, fs, "playhead bench report --dir D [--out F]", "Medians of compare runs into a markdown table of ratios, plus plots.")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return bench.Report(*dir, *out, *plots, stdout)
}
