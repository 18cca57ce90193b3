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
	"syscall"
	"time"

	"github.com/playhead/playhead/node"
)

func cmdDev(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "keep storage here instead of a temporary directory removed at exit")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "host:port the device API listens on")
	account := fs.String("account", "dev", "account of the printed token")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = usage(stderr, fs, "playhead dev [--data-dir DIR] [--http-addr HOST:PORT]",
		"Runs a ready-to-use local playhead with embedded storage and a fresh secret, and prints\nthe URL, an admin token valid for 24 h and curl lines to try. Ctrl-C stops it.")
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
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (%v): pass a free address with --http-addr 127.0.0.1:0", *httpAddr, err)
	}
	cfg := node.Config{NodeID: "dev-1", DataDir: filepath.Join(dir, "data"), HTTPAddr: ln.Addr().String(), AuthSecret: secretHex, Logger: logger}
	n, err := node.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	tok, err := node.IssueToken(secretHex, *account, nil, true, 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, `playhead dev is running at %s
  storage: %s
  secret:  %s (for: playhead token --secret-file %s --account A)

token (account %q, every profile, admin, 24 h):
%s

try, in a second terminal (the first shows pushes as they happen):
  export TOKEN=%s
  curl -N -H "Authorization: Bearer $TOKEN" -H "Accept: text/event-stream" %s/v1/profiles/me/events
  curl -X PUT -H "Authorization: Bearer $TOKEN" %s/v1/profiles/me/positions/ep-1 -d '{"position_ms": 754000, "duration_ms": 2580000, "device": "tv", "session": "s-tv-1", "state": "paused"}'
  curl -H "Authorization: Bearer $TOKEN" %s/v1/profiles/me/positions/ep-1

Ctrl-C stops it.
`, url, cfg.DataDir, secretFile, secretFile, *account, tok, tok, url, url, url)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return n.Serve(ctx, ln)
}
