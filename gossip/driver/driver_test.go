package driver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
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

// TestPutRefusesClockSkewThroughTheCore: the driver no longer checks a
// write's timestamps itself; the Core admits it (Core.Submit) and the
// refusal reaches the caller as the UpdateError of crdt.ErrClockSkew that
// node/ turns into its max_clock_skew 400.
func TestPutRefusesClockSkewThroughTheCore(t *testing.T) {
	const now = 1_800_000_000_000
	d, err := New(Config{Core: gossip.CoreConfig{Self: "n1", Local: gossip.LocalOptions{Partitions: 8}},
		Store: storage.NewMem(), Clock: fixedClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	d.Start(nil)
	defer d.Close()
	d.SetTable(ring.NewTable(8, 1, []ring.NodeID{"n1"}))
	ref := gossip.Ref{Account: "a", Profile: "p"}
	up := func(ahead time.Duration) []crdt.Update {
		h := crdt.NewHLC(now+ahead.Milliseconds(), 0)
		return []crdt.Update{{Video: "v", Device: "tv", Session: "s", Epoch: h, Seq: h, PositionMs: 1, DurationMs: 100_000, State: crdt.StatePlaying}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = d.Put(ctx, ref, up(time.Hour))
	var ue *gossip.UpdateError
	if !errors.As(err, &ue) || !errors.Is(err, crdt.ErrClockSkew) {
		t.Fatalf("a write an hour ahead: %v, want an UpdateError of crdt.ErrClockSkew", err)
	}
	ws, err := d.Put(ctx, ref, up(10*time.Second))
	if err != nil || len(ws) != 1 || !ws[0].Applied {
		t.Fatalf("a write 10 s ahead: %+v, %v", ws, err)
	}
	if got := d.Now().Physical(); got < now+10_000 {
		t.Fatalf("the node's HLC (%d) did not observe the admitted write", got)
	}
}
