package storage

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walSyncFS wraps a vfs.FS to time the syncs of write-ahead-log files and
// report them to Options.OnSync. Every other call passes straight through.
type walSyncFS struct {
	vfs.FS
	// entered counts the Writes that entered the commit pipeline since the
	// last WAL sync began (Pebble.Write increments it; each sync swaps it
	// to 0).
	entered *atomic.Int64
	onSync  func(d time.Duration, batches int)
}

// isWAL reports whether name is a Pebble WAL file ("000123.log", or
// "000123-001.log" in failover mode).
func (fs *walSyncFS) isWAL(name string) bool {
	return strings.HasSuffix(fs.PathBase(name), ".log")
}

func (fs *walSyncFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !fs.isWAL(name) {
		return f, err
	}
	return &walSyncFile{File: f, fs: fs}, nil
}

func (fs *walSyncFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.wrap(name, f, err)
}

func (fs *walSyncFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(newname, f, err)
}

func (fs *walSyncFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.wrap(name, f, err)
}

// walSyncFile is a WAL file whose syncs are reported to OnSync.
type walSyncFile struct {
	vfs.File
	fs *walSyncFS
}

func (f *walSyncFile) observe(sync func() error) error {
	batches := f.fs.entered.Swap(0)
	start := time.Now()
	err := sync()
	f.fs.onSync(time.Since(start), int(batches))
	return err
}

func (f *walSyncFile) Sync() error     { return f.observe(f.File.Sync) }
func (f *walSyncFile) SyncData() error { return f.observe(f.File.SyncData) }

func (f *walSyncFile) SyncTo(length int64) (fullSync bool, err error) {
	err = f.observe(func() error {
		var err error
		fullSync, err = f.File.SyncTo(length)
		return err
	})
	return fullSync, err
}
