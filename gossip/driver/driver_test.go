package driver

import (
	"strings"
	"testing"

	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/storage"
)

// TestConfigValidate: a driver without a store or a clock is refused.
func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{Core: gossip.CoreConfig{Self: "a"}, Clock: fixedClock(1)}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Fatalf("no store: err = %v", err)
	}
	if _, err := New(Config{Core: gossip.CoreConfig{Self: "a"}, Store: storage.NewMem()}); err == nil || !strings.Contains(err.Error(), "Clock") {
		t.Fatalf("no clock: err = %v", err)
	}
}

type fixedClock int64

func (c fixedClock) NowMs() int64 { return int64(c) }
