package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// QueueStorage keeps the offline queue's bytes. FileStorage is the
// production one; MemStorage stands in for it in tests and the simulator.
//
// Contract: Save replaces the stored bytes atomically and durably — after a
// crash at any point, Load returns either the old bytes or the new ones,
// never a mix — and Load returns (nil, nil) when nothing was ever saved.
// The Queue calls one method at a time; implementations need not be safe
// for concurrent use.
type QueueStorage interface {
	Load() ([]byte, error)
	Save(data []byte) error
}

// FileStorage keeps the queue in one file. Save writes a temporary file in
// the same directory, fsyncs it, renames it over Path and fsyncs the
// directory, so the file is always a complete old or new queue.
type FileStorage struct {
	// Path is the queue file. Its directory must exist.
	Path string

	// beforeRename, when set (tests), runs after the temporary file is
	// durable and before the rename; an error aborts the save there, as a
	// crash would.
	beforeRename func(tmp string) error
}

// Load implements QueueStorage.
func (f *FileStorage) Load() ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Save implements QueueStorage.
func (f *FileStorage) Save(data []byte) (err error) {
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if f.beforeRename != nil {
		if err = f.beforeRename(name); err != nil {
			return err
		}
	}
	if err = os.Rename(name, f.Path); err != nil {
		return err
	}
	// Make the rename itself durable. Some platforms cannot fsync a
	// directory; the file is complete either way, so that is not an error.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// MemStorage is a QueueStorage in memory, safe for concurrent use. Its
// Saves count lets tests see how often the queue was written; FailSaves
// makes Save fail (a full disk).
type MemStorage struct {
	mu        sync.Mutex
	data      []byte
	saves     int
	failSaves bool
}

// Load implements QueueStorage.
func (m *MemStorage) Load() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil, nil
	}
	return append([]byte(nil), m.data...), nil
}

// Save implements QueueStorage.
func (m *MemStorage) Save(data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSaves {
		return fmt.Errorf("client: memory storage: save refused")
	}
	m.data = append([]byte(nil), data...)
	m.saves++
	return nil
}

// Saves returns how many saves succeeded.
func (m *MemStorage) Saves() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

// FailSaves makes every later Save fail (fail true) or succeed again.
func (m *MemStorage) FailSaves(fail bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failSaves = fail
}

// Set replaces the stored bytes (tests: a corrupt file).
func (m *MemStorage) Set(data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = append([]byte(nil), data...)
}
