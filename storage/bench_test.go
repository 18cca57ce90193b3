package storage

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
)

// openBenchPebble opens a Pebble store on the real file system in a
// temporary directory, counting WAL syncs.
func openBenchPebble(b *testing.B, syncs *atomic.Int64) *Pebble {
	b.Helper()
	p, err := Open(b.TempDir(), Options{OnSync: func(time.Duration, int) { syncs.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// reportWrites reports Writes per second, Writes per WAL sync, and the
// sstable bytes per cursor once the b.N cursors are compacted.
func reportWrites(b *testing.B, p *Pebble, syncs int64, elapsed time.Duration) {
	b.Helper()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	if syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "writes/sync")
	}
	if err := p.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	p.mu.RLock()
	tables := p.db.Metrics().Total().TablesSize
	p.mu.RUnlock()
	b.ReportMetric(float64(tables)/float64(b.N), "disk-B/cursor")
}

// benchPut is the Write of cursor i: its own video and session (random-looking
// hex, so compression does not flatter disk-B/cursor), a title.
func benchPut(i int64) []Put {
	v := fmt.Sprintf("video-%08d", i)
	rec := cursorRec(v, i)
	rec.Cursor.Version.Session = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
	rec.Cursor.Title.Ver = rec.Cursor.Version
	return []Put{put(cursorKey(uint16(i%1024), "account-0001", "profile-1", v), rec)}
}

// BenchmarkPebbleWriteSerial: one writer, one synced cursor put per Write:
// every Write pays a full fsync.
func BenchmarkPebbleWriteSerial(b *testing.B) {
	var syncs atomic.Int64
	p := openBenchPebble(b, &syncs)
	b.ResetTimer()
	start, before := time.Now(), syncs.Load()
	for i := range b.N {
		if err := p.Write(benchPut(int64(i)), nil); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportWrites(b, p, syncs.Load()-before, elapsed)
}

// BenchmarkPebbleWriteParallel: 16 writers per CPU, one synced cursor put
// per Write: concurrent Writes share fsyncs (group commit).
func BenchmarkPebbleWriteParallel(b *testing.B) {
	var syncs atomic.Int64
	p := openBenchPebble(b, &syncs)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start, before := time.Now(), syncs.Load()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Write(benchPut(next.Add(1)), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	reportWrites(b, p, syncs.Load()-before, elapsed)
}

func BenchmarkEncodeCursor(b *testing.B) {
	rec := cursorRec("video-00000001", 1_234_567)
	buf := make([]byte, 0, 256)
	var n int
	b.ReportAllocs()
	for b.Loop() {
		out, err := AppendValue(buf[:0], rec)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "B/cursor")
}

func BenchmarkDecodeCursor(b *testing.B) {
	val, err := EncodeValue(cursorRec("video-00000001", 1_234_567))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeValue(crdt.KindCursor, "video-00000001", val); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(val)), "B/cursor")
}
