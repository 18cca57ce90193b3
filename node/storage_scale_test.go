package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// BenchmarkStorageAtScale fills one node (Pebble on disk, the record cache,
// every write synced) with PLAYHEAD_BENCH_CURSORS resume positions
// (default 200 000; issue #5's target is stated at 10 000 000) through the
// coordinator's write path, in batches of one profile's videos, then
// compacts the store and reports:
//
//   - disk-B/cursor: sstable bytes per cursor after a full compaction;
//   - RSS-MiB and peak-RSS-MiB: the process's resident memory at the end
//     and at its highest, the benchmark's own small state included;
//   - heap-MiB: the Go heap in use.
//
// "history" writes what a device's updates write: the cursor and a
// history entry per (video, session); "history-paused" is a profile with
// history paused, so only cursors are stored (what the Redis baseline
// keeps). Keys look like production ones: 14-byte account ids, short
// profile ids, video ids from a 200 000-title catalogue, 16-hex sessions.
//
//	PLAYHEAD_BENCH_CURSORS=10000000 go test ./node -run '^$' -bench StorageAtScale -benchtime 1x -timeout 60m
func BenchmarkStorageAtScale(b *testing.B) {
	total := 200_000
	if s := os.Getenv("PLAYHEAD_BENCH_CURSORS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			b.Fatalf("PLAYHEAD_BENCH_CURSORS=%q: want an integer ≥ 100", s)
		}
		total = n
	}
	for _, paused := range []bool{false, true} {
		name := "history"
		if paused {
			name = "history-paused"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				fillAndMeasure(b, total, paused)
			}
		})
	}
}

func fillAndMeasure(b *testing.B, total int, paused bool) {
	dir := b.TempDir()
	n, err := New(Config{NodeID: "scale", DataDir: dir, AuthSecret: testSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DeviceRate: -1, AccountRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	const perProfile = 100 // videos in progress per profile
	profiles := (total + perProfile - 1) / perProfile
	nowMs := time.Now().UnixMilli()
	var next atomic.Int64
	var written atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			ups := make([]crdt.Update, 0, perProfile)
			for {
				p := int(next.Add(1)) - 1
				if p >= profiles {
					return
				}
				ref := gossip.Ref{Account: fmt.Sprintf("acct-%09x", uint64(p)*0x9e3779b9%(1<<36)), Profile: "p" + strconv.Itoa(p%5)}
				if paused {
					if _, err := n.svc.SetHistoryPaused(context.Background(), ref, true); err != nil {
						b.Error(err)
						return
					}
				}
				ups = ups[:0]
				for v := range min(perProfile, total-p*perProfile) {
					ups = append(ups, crdt.Update{
						Video:      "vid-" + strconv.Itoa(rng.IntN(200_000)) + "-" + strconv.Itoa(v),
						Device:     "tv-" + strconv.Itoa(p%7),
						Session:    fmt.Sprintf("%016x", rng.Uint64()),
						PositionMs: rng.Int64N(3_000_000),
						DurationMs: 3_600_000,
						State:      crdt.StatePaused,
						Epoch:      crdt.NewHLC(nowMs-rng.Int64N(86_400_000), 0),
					})
					ups[len(ups)-1].Seq = ups[len(ups)-1].Epoch
				}
				if _, err := n.svc.Put(context.Background(), ref, ups); err != nil {
					b.Error(err)
					return
				}
				if done := written.Add(int64(len(ups))); done/1_000_000 != (done-int64(len(ups)))/1_000_000 {
					fmt.Fprintf(os.Stderr, "  %s: %d cursors written in %v\n", b.Name(), done, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	fill := time.Since(start)
	p := innerPebble(b, n.store)
	if err := p.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, peak := procStatusKiB("VmRSS"), procStatusKiB("VmHWM")
	cursors := float64(written.Load())
	b.ReportMetric(float64(p.TablesSize())/cursors, "disk-B/cursor")
	b.ReportMetric(cursorsOnlySize(b, p)/cursors, "cursor-only-disk-B/cursor")
	b.ReportMetric(float64(rss)/1024, "RSS-MiB")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(cursors/fill.Seconds(), "cursors/s")
	b.ReportMetric(cursors, "cursors")
}

// cursorsOnlySize copies the cursor records of src into a fresh store,
// compacts it and returns its sstable bytes: what the resume positions alone
// take on disk, without the history entries (which also track each
// session's epoch for CheckSession, so a store holds one per video and
// session even with history paused).
func cursorsOnlySize(b *testing.B, src *storage.Pebble) float64 {
	dst, err := storage.Open(b.TempDir(), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	var batch []storage.Put
	flush := func() {
		if err := dst.Write(batch, nil); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for part := range ring.DefaultPartitions {
		err := src.ScanPartition(uint16(part), func(k storage.Key, r crdt.Record) error {
			if k.Kind == crdt.KindCursor {
				if batch = append(batch, storage.Put{Key: k, Record: r}); len(batch) == 10_000 {
					flush()
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	flush()
	if err := dst.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	return float64(dst.TablesSize())
}

// innerPebble finds the Pebble store under the node's record cache.
func innerPebble(b *testing.B, s storage.Store) *storage.Pebble {
	if c, ok := s.(*storage.Cached); ok {
		s = c.Inner()
	}
	p, ok := s.(*storage.Pebble)
	if !ok {
		b.Fatalf("the node's store is a %T, not Pebble", s)
	}
	return p
}

// procStatusKiB reads a "Vm…: N kB" line of /proc/self/status (0 if absent).
func procStatusKiB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return 0
}
