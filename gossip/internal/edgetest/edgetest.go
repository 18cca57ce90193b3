// Package edgetest holds helpers for the tests of the I/O edges.
package edgetest

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/clusterkey"
)

// waitUntil polls cond every 10 ms until it returns "" (done) or timeout
// passes; then it fails the test with cond's last explanation.
func Eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// edgeTestLogger returns a logger for the adapters under test: discarded,
// unless PLAYHEAD_TEST_LOG=1 sends it to stderr (not t.Log: raft and
// memberlist log from goroutines that outlive a failing test).
func Logger() *slog.Logger {
	if os.Getenv("PLAYHEAD_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Key returns a cluster key of clusterkey.Size bytes, all b.
func Key(b byte) []byte { return bytes.Repeat([]byte{b}, clusterkey.Size) }
