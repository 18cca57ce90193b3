package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/playhead/playhead/crdt"
)

// Pebble is the production Store: a Pebble LSM on a vfs.FS.
//
// Durability and group commit: every Write is one pebble.Batch committed
// with pebble.Sync, so it returns only after the write-ahead log holding it
// is synced. Pebble's commit pipeline already coalesces the WAL syncs of
// concurrent committers: while one sync is in flight, the batches of other
// Writes queue up behind it and the next sync covers all of them. Many
// concurrent writers therefore cost few fsyncs (TestPebbleGroupCommit
// checks it), and a single writer pays one fsync per Write. Nothing in this
// package batches on top of that.
//
// Pebble is safe for concurrent use.
type Pebble struct {
	// mu guards db's lifetime, not its use: every method holds mu.RLock for
	// as long as it uses db (Writes, Gets and scans run concurrently), and
	// Close takes mu.Lock, so Close waits for them and nothing touches a
	// closed db (which would panic).
	mu sync.RWMutex
	db *pebble.DB // nil once closed

	// entered counts Writes that entered the commit pipeline since the last
	// WAL sync began; see Options.OnSync.
	entered atomic.Int64
}

var (
	_ Store       = (*Pebble)(nil)
	_ AsyncWriter = (*Pebble)(nil)
)

// Open opens the store in dir, creating it if needed. opts is copied; zero
// fields take their defaults.
func Open(dir string, opts Options) (*Pebble, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Pebble{}
	fs := opts.FS
	if opts.OnSync != nil {
		fs = &walSyncFS{FS: fs, entered: &p.entered, onSync: opts.OnSync}
	}
	popts := &pebble.Options{
		FS:                 fs,
		CacheSize:          opts.CacheSize,
		MemTableSize:       opts.MemTableSize,
		FormatMajorVersion: pebble.FormatNewest, // for new stores; existing ones keep theirs
		Logger:             quietLogger{},
	}
	if d := opts.WALMinSyncInterval; d > 0 {
		popts.WALMinSyncInterval = func() time.Duration { return d }
	}
	// Zstd on the two bottom levels, where nearly all the data of a settled
	// store lives, and the fastest codec above, where data is rewritten
	// soon (Pebble's "balanced" settings, as CockroachDB uses).
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionBalanced })
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("storage: opening %s: %w", dir, err)
	}
	p.db = db
	return p, nil
}

// Get implements Store.
func (p *Pebble) Get(k Key) (crdt.Record, bool, error) {
	key, err := EncodeKey(k)
	if err != nil {
		return crdt.Record{}, false, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return crdt.Record{}, false, ErrClosed
	}
	val, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return crdt.Record{}, false, nil
	}
	if err != nil {
		return crdt.Record{}, false, fmt.Errorf("storage: get: %w", err)
	}
	defer closer.Close()
	rec, err := DecodeValue(k.Kind, k.ID, val) // copies what it keeps
	if err != nil {
		return crdt.Record{}, false, fmt.Errorf("%w (key %x)", err, key)
	}
	return rec, true, nil
}

// ScanProfile implements Store. fn runs with the store's lifetime lock held
// for reading: it must not call Close.
func (p *Pebble) ScanProfile(partition uint16, account, profile string, kind crdt.Kind, fn func(Key, crdt.Record) error) error {
	lower, upper, err := ProfileBounds(partition, account, profile, kind)
	if err != nil {
		return err
	}
	return p.scan(lower, upper, fn)
}

// ScanPartition implements Store. fn runs with the store's lifetime lock
// held for reading: it must not call Close.
func (p *Pebble) ScanPartition(partition uint16, fn func(Key, crdt.Record) error) error {
	lower, upper := PartitionBounds(partition)
	return p.scan(lower, upper, fn)
}

// scan calls fn for every record in [lower, upper); nil upper is unbounded.
func (p *Pebble) scan(lower, upper []byte, fn func(Key, crdt.Record) error) (err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return ErrClosed
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("storage: scan: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("storage: scan: %w", cerr)
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		k, err := DecodeKey(it.Key())
		if err != nil {
			return err
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("storage: scan: %w", err)
		}
		rec, err := DecodeValue(k.Kind, k.ID, val)
		if err != nil {
			return fmt.Errorf("%w (key %x)", err, it.Key())
		}
		if err := fn(k, rec); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("storage: scan: %w", err)
	}
	return nil
}

// Write implements Store: one batch, committed with pebble.Sync. Concurrent
// Writes share WAL syncs (see Pebble). Nothing is written if any key or
// record is invalid.
func (p *Pebble) Write(puts []Put, deletes []Key) error {
	if len(puts) == 0 && len(deletes) == 0 {
		return p.checkOpen()
	}
	// Encode before taking the lock: a bad key or record fails the whole
	// Write before anything reaches the batch.
	ops, err := encodeOps(puts, deletes)
	if err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return ErrClosed
	}
	b, err := p.newBatch(ops)
	if err != nil {
		return err
	}
	defer b.Close()
	p.entered.Add(1)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: write: %w", err)
	}
	return nil
}

// WriteNoWait implements AsyncWriter: the batch is applied to the memtable
// (visible) with pebble.Sync requested, and wait blocks until the WAL sync
// that carries it (pebble.DB.ApplyNoSyncWait and Batch.SyncWait). Pebble's
// WAL is one sequential log, so a sync covers every batch applied before.
// Close waits for outstanding waits.
func (p *Pebble) WriteNoWait(puts []Put, deletes []Key) (func() error, error) {
	if len(puts) == 0 && len(deletes) == 0 {
		return noWait, p.checkOpen()
	}
	ops, err := encodeOps(puts, deletes)
	if err != nil {
		return nil, err
	}
	p.mu.RLock()
	if p.db == nil {
		p.mu.RUnlock()
		return nil, ErrClosed
	}
	b, err := p.newBatch(ops)
	if err != nil {
		p.mu.RUnlock()
		return nil, err
	}
	p.entered.Add(1)
	if err := p.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		p.mu.RUnlock()
		return nil, fmt.Errorf("storage: write: %w", err)
	}
	return func() error {
		defer p.mu.RUnlock()
		err := b.SyncWait()
		b.Close()
		if err != nil {
			return fmt.Errorf("storage: write: %w", err)
		}
		return nil
	}, nil
}

// newBatch returns a batch holding ops. p.mu must be held for reading, with
// the store open.
func (p *Pebble) newBatch(ops []op) (*pebble.Batch, error) {
	b := p.db.NewBatch()
	for _, op := range ops {
		var err error
		if op.value == nil {
			err = b.Delete(op.key, nil)
		} else {
			err = b.Set(op.key, op.value, nil)
		}
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("storage: write: %w", err)
		}
	}
	return b, nil
}

// Close implements Store. It waits for the Writes and scans in progress.
// Closing a closed store returns ErrClosed.
func (p *Pebble) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return ErrClosed
	}
	err := p.db.Close()
	p.db = nil
	if err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	return nil
}

// Flush writes the memtable out to an sstable and waits for it.
func (p *Pebble) Flush() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return ErrClosed
	}
	if err := p.db.Flush(); err != nil {
		return fmt.Errorf("storage: flush: %w", err)
	}
	return nil
}

// Compact flushes the memtable and compacts the whole key space, so that
// the sstables' size reflects the live data (tests measure bytes on disk
// with it). It can take long on a large store.
func (p *Pebble) Compact(ctx context.Context) error {
	if err := p.Flush(); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return ErrClosed
	}
	// Every key starts with a 2-byte partition, so [0x00, 0xffffffff)
	// overlaps every sstable.
	if err := p.db.Compact(ctx, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	return nil
}

// TablesSize returns the bytes of the store's live sstables (0 once
// closed); after Compact it is the size of the data on disk, the WAL aside.
func (p *Pebble) TablesSize() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return 0
	}
	return int64(p.db.Metrics().Total().TablesSize)
}

// Metrics returns Pebble's metrics as a human-readable table (levels,
// compactions, WAL, caches), or "" once closed.
func (p *Pebble) Metrics() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return ""
	}
	return p.db.Metrics().String()
}

func (p *Pebble) checkOpen() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return ErrClosed
	}
	return nil
}

// quietLogger drops Pebble's informational messages and passes errors and
// fatal errors to Pebble's default logger (standard error).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }
