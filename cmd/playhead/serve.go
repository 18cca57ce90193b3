package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/clusterkey"
	"github.com/playhead/playhead/gossip/memberlist"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/node"
)

// serveFlags registers the node's flags on fs and returns a function that
// builds the node.Config once fs is parsed.
func serveFlags(fs *flag.FlagSet, defaultDataDir string) func() (node.Config, error) {
	d := node.Config{}
	d.EnsureDefaults()
	nodeID := fs.String("node-id", "", "this node's stable id (default: the host name)")
	dataDir := fs.String("data-dir", defaultDataDir, "directory for the node's storage; created if missing")
	httpAddr := fs.String("http-addr", d.HTTPAddr, "host:port the device API listens on")
	secretFile := fs.String("auth-secret-file", "", "file holding the cluster's auth secret: at least 32 bytes, a trailing newline ignored; required")
	maxSkew := fs.Duration("max-clock-skew", d.MaxClockSkew, "refuse device timestamps further than this ahead of the node's clock")
	minPct := fs.Float64("min-resume-pct", d.Policy.MinResumePct, "below this share watched (percent) there is nothing to resume")
	maxPct := fs.Float64("max-resume-pct", d.Policy.MaxResumePct, "at or past this share watched (percent) a video counts as watched")
	minDur := fs.Duration("min-resume-duration", d.Policy.MinResumeDuration, "videos shorter than this are never resumable")
	cursorTTL := fs.Duration("cursor-ttl", d.Policy.CursorTTL, "a resume position untouched this long expires")
	historyTTL := fs.Duration("history-ttl", d.Policy.HistoryTTL, "history entries (and deletion tombstones) are kept this long")
	rate := fs.Float64("device-rate", d.DeviceRate, "writes per second allowed per device (token bucket rate); excess gets 429")
	burst := fs.Int("device-burst", d.DeviceBurst, "burst size of the per-device token bucket")
	accountRate := fs.Float64("account-rate", d.AccountRate, "other requests (reads, push streams) per second allowed per account; excess gets 429; negative disables")
	accountBurst := fs.Int("account-burst", d.AccountBurst, "burst size of the per-account token bucket")
	gossipAddr := fs.String("gossip-addr", "", "host:port for cluster membership (memberlist, UDP+TCP); setting it, --join or --bootstrap-expect > 1 makes the node a cluster member (e.g. 0.0.0.0:7946)")
	rpcAddr := fs.String("rpc-addr", "", "host:port for replication traffic between nodes (TCP); default: the gossip host, port 7948")
	raftAddr := fs.String("raft-addr", "", "host:port for the ring configuration's raft (TCP); default: the gossip host, port 7947")
	advertiseHost := fs.String("advertise-addr", "", "IP address other nodes reach this node at, when the cluster addresses bind 0.0.0.0 (default: derived from the bound addresses)")
	var join stringList
	fs.Var(&join, "join", "gossip addresses of cluster members to join, comma-separated or repeated")
	bootstrapExpect := fs.Int("bootstrap-expect", 1, "members a new cluster waits for before founding its ring; with no --join and 1, a node runs alone")
	gossipKeyFile := fs.String("gossip-key-file", "", "file with the cluster key (base64, 32 bytes; `playhead keygen` prints one); one per line to rotate, the first is used to send; required for a cluster")
	replication := fs.Int("replication", ring.DefaultReplicas, "copies of each profile kept in the cluster")
	writeQuorum := fs.Int("write-quorum", gossip.DefaultWriteQuorum, "copies that must be durable before a write is acknowledged")
	deadGrace := fs.Duration("dead-node-grace", ring.DefaultDeadNodeGrace, "how long a dead node keeps its partitions before they move to others")
	loopback := fs.Bool("loopback-timings", false, "shorten failure detection and raft timings for a cluster on one host (tests, dev); never on a real network")
	walSync := fs.Duration("wal-min-sync-interval", 0, "shortest time between two syncs of the write-ahead log: under load, writes arriving within it share the next sync (group commit sized by load, up to this much added latency); 0 = sync as soon as the previous sync ends")
	recordCache := fs.Int("record-cache", 0, "records (cursors, history entries, profile settings; ~700 B of heap each) kept in memory in front of the store; 0 = 65536, negative = off")
	var corsOrigins stringList
	fs.Var(&corsOrigins, "cors-origins", "origins (scheme://host[:port], comma-separated or repeated; * for any) whose web pages may call the API from a browser; default none")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	return func() (node.Config, error) {
		cfg := d
		cfg.NodeID, cfg.DataDir, cfg.HTTPAddr = *nodeID, *dataDir, *httpAddr
		if cfg.NodeID == "" {
			host, _ := os.Hostname()
			cfg.NodeID = host
		}
		if *secretFile == "" {
			return cfg, fmt.Errorf("--auth-secret-file is required (a file with at least 32 random bytes, e.g. `head -c 32 /dev/urandom | base64 > secret`)")
		}
		secret, err := node.LoadSecret(*secretFile)
		if err != nil {
			return cfg, err
		}
		cfg.AuthSecret = secret
		cfg.MaxClockSkew = *maxSkew
		cfg.Policy.MinResumePct, cfg.Policy.MaxResumePct = *minPct, *maxPct
		cfg.Policy.MinResumeDuration, cfg.Policy.CursorTTL, cfg.Policy.HistoryTTL = *minDur, *cursorTTL, *historyTTL
		cfg.DeviceRate, cfg.DeviceBurst = *rate, *burst
		cfg.AccountRate, cfg.AccountBurst = *accountRate, *accountBurst
		cfg.RecordCache = *recordCache
		cfg.WALMinSyncInterval = *walSync
		cfg.CORSOrigins = corsOrigins
		logger, err := newLogger(*logLevel, *logFormat)
		if err != nil {
			return cfg, err
		}
		cfg.Logger = logger
		if *gossipAddr != "" || len(join) > 0 || *bootstrapExpect > 1 {
			if *gossipKeyFile == "" {
				return cfg, fmt.Errorf("a cluster member needs --gossip-key-file (create one with `playhead keygen > cluster.key` and give every node the same file)")
			}
			keys, err := clusterkey.LoadAll(*gossipKeyFile)
			if err != nil {
				return cfg, err
			}
			g := *gossipAddr
			if g == "" {
				g = memberlist.DefaultGossipBindAddr
			}
			host, _, err := net.SplitHostPort(g)
			if err != nil {
				return cfg, fmt.Errorf("--gossip-addr %q: %v", g, err)
			}
			// --rpc-addr and --raft-addr default to the gossip host
			// (node.ClusterOptions.EnsureDefaults).
			if host == "0.0.0.0" || host == "::" {
				if *advertiseHost == "" {
					return cfg, fmt.Errorf("--gossip-addr %s binds every interface: give --advertise-addr, the IP other nodes reach this one at", g)
				}
			}
			cfg.ClusterOptions = &node.ClusterOptions{GossipAddr: g, AdvertiseHost: *advertiseHost, RPCAddr: *rpcAddr, RaftAddr: *raftAddr,
				Join: join, BootstrapExpect: *bootstrapExpect, Keys: keys, Replication: *replication,
				WriteQuorum: *writeQuorum, DeadNodeGrace: *deadGrace, Loopback: *loopback}
		}
		return cfg, nil
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	build := serveFlags(fs, "playhead-data")
	fs.Usage = usage(stderr, fs, "playhead serve --data-dir DIR --http-addr HOST:PORT --auth-secret-file FILE [flags]",
		"Runs one playhead node. SIGTERM or SIGINT shuts it down gracefully: it stops taking requests,\nfinishes those in flight, leaves the cluster, and closes storage; no acknowledged write is lost.\n\nA cluster: start every node with the same --gossip-key-file, --bootstrap-expect N (the number of\nfirst nodes) and --join with one or more members' --gossip-addr; each node needs its own\n--node-id, --data-dir and addresses. /readyz answers 200 once the node knows the ring.")
	gcPercent := fs.Int("gc-percent", defaultGCPercent, "Go garbage collector target (as GOGC): the heap may grow this many percent over live data between collections; higher spends memory to save CPU (at 100 the collector took about a third of the CPU under write load); the GOGC variable, when set, wins over this default")
	memLimit := fs.String("memory-limit", "1GiB", "soft limit of the Go runtime's memory (as GOMEMLIMIT; B, KiB, MiB, GiB): the collector works harder as the process nears it, so --gc-percent's headroom cannot push memory past it; 0 = none; the GOMEMLIMIT variable, when set, wins over this default")
	pprofAddr := fs.String("pprof-addr", "", "host:port serving Go's /debug/pprof profiles (CPU, heap, mutex, goroutines) for diagnosis; off when empty; keep it on loopback")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := build()
	if err != nil {
		return err
	}
	setGCPercent(fs, *gcPercent)
	if err := setMemoryLimit(fs, *memLimit); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *pprofAddr != "" {
		if err := servePprof(ctx, *pprofAddr, cfg.Logger); err != nil {
			return err
		}
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// servePprof serves net/http/pprof on its own listener (never on the device
// API's) until ctx ends. Mutex and block profiles are sampled while it runs.
func servePprof(ctx context.Context, addr string, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %v", err)
	}
	runtime.SetMutexProfileFraction(100)
	runtime.SetBlockProfileRate(int(time.Millisecond))
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	logger.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}

// defaultGCPercent is --gc-percent's default: a node's live heap is small
// (records live in Pebble, off the Go heap) and its allocation rate high, so
// the collector's default of 100 runs it very often.
const defaultGCPercent = 400

// setGCPercent applies --gc-percent unless it was left at its default and
// GOGC is set in the environment (the runtime already applied that).
func setGCPercent(fs *flag.FlagSet, pct int) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "gc-percent" })
	if !given && os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(pct)
}

// setMemoryLimit applies --memory-limit unless it was left at its default
// and GOMEMLIMIT is set in the environment.
func setMemoryLimit(fs *flag.FlagSet, v string) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "memory-limit" })
	if !given && os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := parseBytes(v)
	if err != nil {
		return fmt.Errorf("--memory-limit %q: %v (e.g. 1GiB, 512MiB, 0 for none)", v, err)
	}
	if n == 0 {
		n = math.MaxInt64
	}
	debug.SetMemoryLimit(n)
	return nil
}

// parseBytes parses a byte size: an integer with an optional B, KiB, MiB or
// GiB suffix.
func parseBytes(v string) (int64, error) {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, errors.New("not a size")
	}
	return n * mult, nil
}
