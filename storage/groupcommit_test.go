package storage

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// slowSyncFS counts the syncs of WAL files and makes each take delay, as a
// disk's fsync does. It is independent of walSyncFS on purpose.
type slowSyncFS struct {
	vfs.FS
	delay time.Duration
	syncs atomic.Int64
}

func (fs *slowSyncFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &slowSyncFile{File: f, fs: fs}, nil
}

func (fs *slowSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *slowSyncFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

type slowSyncFile struct {
	vfs.File
	fs *slowSyncFS
}

func (f *slowSyncFile) sync() {
	f.fs.syncs.Add(1)
	time.Sleep(f.fs.delay)
}

func (f *slowSyncFile) Sync() error     { f.sync(); return f.File.Sync() }
func (f *slowSyncFile) SyncData() error { f.sync(); return f.File.SyncData() }
func (f *slowSyncFile) SyncTo(n int64) (bool, error) {
	f.sync()
	return f.File.SyncTo(n)
}

// TestPebbleGroupCommit checks that concurrent synced Writes share WAL
// syncs: with 32 writers and a WAL sync that takes a millisecond, Writes
// queue behind the sync in flight and the next sync covers them all. If each
// Write synced on its own there would be at least one sync per Write.
func TestPebbleGroupCommit(t *testing.T) {
	fs := &slowSyncFS{FS: vfs.NewCrashableMem(), delay: time.Millisecond}
	p, err := Open("db", Options{FS: fs, CacheSize: 1 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const writers, writes = 32, 20
	before := fs.syncs.Load()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range writes {
				v := fmt.Sprintf("v%02d-%03d", g, i)
				if err := p.Write([]Put{put(cursorKey(uint16(g), "a", "p", v), cursorRec(v, int64(i)))}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	syncs := fs.syncs.Load() - before
	t.Logf("%d synced Writes, %d WAL syncs (%.1f Writes per sync)", writers*writes, syncs, float64(writers*writes)/float64(syncs))
	if syncs == 0 || syncs >= writers*writes {
		t.Errorf("%d WAL syncs for %d Writes: Writes did not share syncs", syncs, writers*writes)
	}
	for g := range writers {
		if got := len(scanPartition(t, p, uint16(g))); got != writes {
			t.Errorf("writer %d: %d records, want %d", g, got, writes)
		}
	}
}
