package storage

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults for Options.
const (
	DefaultCacheSize    = 64 << 20
	DefaultMemTableSize = 32 << 20
)

// Options configures a Pebble store. Zero fields take their defaults in
// EnsureDefaults.
type Options struct {
	// FS is the file system the store lives on. Tests inject
	// vfs.NewCrashableMem() to simulate power loss with CrashClone. The
	// default value is vfs.Default (the operating system's).
	FS vfs.FS

	// CacheSize is the size in bytes of the block cache, which holds
	// decompressed blocks of sstables. Larger keeps more of the working set
	// (recent profiles) in memory at the cost of RAM. The default value is
	// 64 MB.
	CacheSize int64

	// MemTableSize is the size in bytes of the largest memtable, the
	// in-memory write buffer that is flushed to an sstable when full. Larger
	// means fewer, larger flushes and less write amplification, at the cost
	// of RAM and of a longer WAL replay on restart. Must be below 4 GB. The
	// default value is 32 MB.
	MemTableSize uint64

	// WALMinSyncInterval is the shortest time between two syncs of the
	// write-ahead log (Pebble's option of the same name). When commits ask
	// for syncs faster than that, the next sync waits for the interval to
	// pass and then covers every commit that arrived meanwhile: group
	// commit sized by load. Under light load syncs are rarer than the
	// interval and nothing waits. The default value is 0 (sync as soon as
	// the previous sync ends).
	WALMinSyncInterval time.Duration

	// OnSync, if set, is called after every sync of a write-ahead-log file,
	// with the time the sync took and the number of Writes whose group
	// commit it was (the node feeds a histogram with them). batches counts
	// the Writes that entered the commit pipeline since the previous WAL
	// sync began; it is exact in total over time but only approximate per
	// sync (a Write entering just as a sync begins is counted with that sync
	// rather than the one that carries it), and 0 for syncs Pebble makes on
	// its own (on opening or rotating a WAL).
	//
	// OnSync runs on Pebble's WAL flush goroutine, in the commit path of
	// every Write: it must be safe for concurrent use, fast, and must not
	// block or call into the store. The default value is nil (not called).
	OnSync func(d time.Duration, batches int)
}

// EnsureDefaults fills zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	return o
}

// Validate reports options that cannot work. It expects defaults filled in.
func (o *Options) Validate() error {
	if o.FS == nil {
		return fmt.Errorf("storage: Options.FS is nil (call EnsureDefaults)")
	}
	if o.CacheSize <= 0 {
		return fmt.Errorf("storage: Options.CacheSize is %d bytes; it must be positive", o.CacheSize)
	}
	if o.WALMinSyncInterval < 0 || o.WALMinSyncInterval > time.Second {
		return fmt.Errorf("storage: Options.WALMinSyncInterval is %v; it must be between 0 and 1s", o.WALMinSyncInterval)
	}
	if o.MemTableSize == 0 || o.MemTableSize >= 4<<30 {
		return fmt.Errorf("storage: Options.MemTableSize is %d bytes; it must be between 1 and 4 GB (exclusive)", o.MemTableSize)
	}
	return nil
}
