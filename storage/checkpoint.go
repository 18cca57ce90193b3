package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checkpoint writes a consistent copy of the store to dir, which must not
// exist, while the store keeps serving: sstables are hard-linked when dir is
// on the same filesystem (copied otherwise) and the WAL is flushed and
// copied, so every write acknowledged before the call is in the copy.
// Open(dir) opens it as a store.
func (p *Pebble) Checkpoint(dir string) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return ErrClosed
	}
	if err := p.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("storage: checkpoint to %s: %w", dir, err)
	}
	return nil
}

// Checkpointer is a store that can write a checkpoint of itself.
type Checkpointer interface {
	Checkpoint(dir string) error
}

// Checkpoint implements Checkpointer over the inner store.
func (c *Cached) Checkpoint(dir string) error {
	if cp, ok := c.inner.(Checkpointer); ok {
		return cp.Checkpoint(dir)
	}
	return errors.New("storage: this store cannot checkpoint (only Pebble can)")
}

// tableCompressions returns how many sstables of each level use each
// compression (tests: zstd must work in every build, cgo or not).
func (p *Pebble) tableCompressions() (map[string]int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.db == nil {
		return nil, ErrClosed
	}
	levels, err := p.db.SSTables(pebble.WithProperties())
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for l, tables := range levels {
		for _, t := range tables {
			if t.Properties != nil {
				out[fmt.Sprintf("L%d:%s", l, t.Properties.CompressionName)]++
			}
		}
	}
	return out, nil
}
