package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealth asks a node's /readyz (or /healthz) and exits 0 when it answers
// 200: the container health check (a FROM scratch image has no curl).
func cmdHealth(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "127.0.0.1:8080", "the node's device API address (the same variable as serve's, so a container's PLAYHEAD_HTTP_ADDR serves both); a wildcard host (0.0.0.0, ::) asks loopback")
	live := fs.Bool("live", false, "ask /healthz (the process serves) instead of /readyz (storage open and the ring known)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = usage(stderr, fs, "playhead health [--http-addr HOST:PORT] [--live]",
		"Exits 0 when the node at --http-addr answers /readyz (or /healthz with --live) with 200, 1\notherwise, printing why: the health check of the container image, which has no curl.")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	u, err := healthURL(*addr, *live)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %v (is the node running, and --http-addr right?)", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s: %s\n", u, strings.TrimSpace(string(body)))
	return nil
}

// healthURL is the URL of the node's health endpoint at addr, with a
// wildcard or empty host asked on loopback.
func healthURL(addr string, live bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--http-addr %q: %v (want host:port)", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	path := "/readyz"
	if live {
		path = "/healthz"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
