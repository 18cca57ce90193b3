package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/gossip/clusterkey"
	"github.com/playhead/playhead/node"
)

func cmdDev(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "keep storage here instead of a temporary directory removed at exit")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "host:port the device API listens on")
	account := fs.String("account", "dev", "account of the printed token")
	nodes := fs.Int("nodes", 3, "cluster nodes to run in this process (RF=3, W=2); 1 runs a single node; node i listens on --http-addr's port + i-1")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	cors := fs.String("cors-origins", node.CORSAny, "origins (scheme://host[:port], comma-separated; * for any) whose web pages may call the API from a browser; empty for none")
	fs.Usage = usage(stderr, fs, "playhead dev [--nodes 3] [--data-dir DIR] [--http-addr HOST:PORT]",
		"Runs a ready-to-use local playhead cluster (3 nodes in this process, on loopback) with embedded\nstorage and a fresh secret, and prints the demo page's URL (a TV and a phone staying in step), each\nnode's URL, an admin token valid for 24 h and curl lines to try. Ctrl-C stops it.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "playhead-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	secretHex := []byte(hex.EncodeToString(secret))
	secretFile := filepath.Join(dir, "auth-secret")
	if err := os.WriteFile(secretFile, append(secretHex, '\n'), 0o600); err != nil {
		return err
	}
	logger, err := newLogger(*logLevel, "text")
	if err != nil {
		return err
	}
	var origins stringList
	origins.Set(*cors)
	if *nodes < 1 {
		return fmt.Errorf("--nodes must be at least 1, got %d", *nodes)
	}
	host, port, err := net.SplitHostPort(*httpAddr)
	if err != nil {
		return fmt.Errorf("--http-addr %q: %v", *httpAddr, err)
	}
	basePort, _ := strconv.Atoi(port)
	var key [][]byte
	if *nodes > 1 {
		k := make([]byte, clusterkey.Size)
		rand.Read(k)
		key = [][]byte{k}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var urls []string
	var running []*node.Node
	var seed string
	errc := make(chan error, *nodes)
	for i := 1; i <= *nodes; i++ {
		addr := *httpAddr
		if i > 1 && basePort != 0 {
			addr = net.JoinHostPort(host, strconv.Itoa(basePort+i-1))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("cannot listen on %s (%v): pass a free address with --http-addr 127.0.0.1:0", addr, err)
		}
		cfg := node.Config{NodeID: fmt.Sprintf("dev-%d", i), DataDir: filepath.Join(dir, fmt.Sprintf("data-%d", i)),
			HTTPAddr: ln.Addr().String(), AuthSecret: secretHex, Logger: logger, CORSOrigins: origins}
		if *nodes > 1 {
			cfg.ClusterOptions = &node.ClusterOptions{GossipAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0",
				Keys: key, Loopback: true}
			if seed != "" {
				cfg.ClusterOptions.Join = []string{seed}
			}
		}
		n, err := node.New(cfg)
		if err != nil {
			ln.Close()
			return err
		}
		if i == 1 && *nodes > 1 {
			seed = n.GossipAddr()
		}
		running = append(running, n)
		urls = append(urls, "http://"+ln.Addr().String())
		go func() { errc <- n.Serve(ctx, ln) }()
	}
	// Wait until every node knows the ring with all its members.
	fmt.Fprintf(stderr, "starting %d node(s)…\n", *nodes)
	for _, n := range running {
		for !n.Ready(*nodes) {
			select {
			case <-ctx.Done():
				return nil
			case err := <-errc:
				return err
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	tok, err := api.IssueToken(secretHex, *account, nil, true, 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	last := urls[len(urls)-1]
	mid := urls[min(1, len(urls)-1)]
	fmt.Fprintf(stdout, "playhead dev is running: %d node(s)\n\nopen the demo page (a TV and a phone in step; the token is in the URL):\n  %s\n\n", *nodes, pageURL(urls[0], tok))
	for i, u := range urls {
		fmt.Fprintf(stdout, "  node %d: %s\n", i+1, u)
	}
	fmt.Fprintf(stdout, `  storage: %s
  secret:  %s (for: playhead token --secret-file %s --account A)

token (account %q, every profile, admin, 24 h):
%s

try, in a second terminal: watch the pushes on node %d (as the phone would),
  export TOKEN=%s
  curl -N -H "Authorization: Bearer $TOKEN" -H "Accept: text/event-stream" %s/v1/profiles/me/events
and in a third, report a position through node 1 (the TV) and resume on node %d:
  curl -X PUT -H "Authorization: Bearer $TOKEN" %s/v1/profiles/me/positions/ep-1 -d '{"position_ms": 754000, "duration_ms": 2580000, "device": "tv", "session": "s-tv-1", "state": "paused"}'
  curl -H "Authorization: Bearer $TOKEN" %s/v1/profiles/me/positions/ep-1

Ctrl-C stops it.
`, dir, secretFile, secretFile, *account, tok, min(2, len(urls)), tok, mid, len(urls), urls[0], last)
	var firstErr error
	for range running {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// pageURL is the demo page of a node with the token in the fragment (never
// sent to the server, so it stays out of logs).
func pageURL(base, token string) string {
	return base + "/#token=" + token + "&profile=me"
}
