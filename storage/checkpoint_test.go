package storage

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// A checkpoint taken while the store serves holds every write made before
// it and opens as a store; writes after it are not in it.
func TestPebbleCheckpointWhileServing(t *testing.T) {
	dir := t.TempDir()
	p, err := Open(filepath.Join(dir, "db"), Options{CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var keys []Key
	for i := range 200 {
		k := cursorKey(uint16(i%7), "a", "p", fmt.Sprintf("v%d", i))
		keys = append(keys, k)
		mustWrite(t, p, []Put{put(k, cursorRec(fmt.Sprintf("v%d", i), int64(i+1)))}, nil)
	}
	cpDir := filepath.Join(dir, "backup")
	if err := p.Checkpoint(cpDir); err != nil {
		t.Fatal(err)
	}
	late := cursorKey(1, "a", "p", "late")
	mustWrite(t, p, []Put{put(late, cursorRec("late", 1))}, nil)
	if err := p.Checkpoint(cpDir); err == nil {
		t.Error("a checkpoint over an existing directory was accepted")
	}
	c, err := Open(cpDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, k := range keys {
		if got, ok := mustGet(t, c, k); !ok || got != cursorRec(fmt.Sprintf("v%d", i), int64(i+1)) {
			t.Fatalf("key %d in the checkpoint: %+v, %v", i, got, ok)
		}
	}
	if _, ok := mustGet(t, c, late); ok {
		t.Error("a write after the checkpoint is in it")
	}
}

// Zstd compresses the bottom levels in every build: with cgo (DataDog/zstd)
// and without (CGO_ENABLED=0, the container image: klauspost/compress).
// .ci/run runs this test with CGO_ENABLED=0 too.
func TestZstdCompressedTablesReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	p, err := Open(dir, Options{CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Close() }()
	var keys []Key
	for i := range 3000 {
		keys = append(keys, cursorKey(uint16(i%50), "acct", "prof", fmt.Sprintf("video-%05d", i)))
	}
	// Two overlapping flushes, so that the compaction rewrites the tables
	// into the bottom level (one table alone would just be moved there).
	for round := range 2 {
		for i, k := range keys {
			mustWrite(t, p, []Put{put(k, cursorRec(fmt.Sprintf("video-%05d", i), int64(i+1+round)))}, nil)
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	comp, err := p.tableCompressions()
	if err != nil {
		t.Fatal(err)
	}
	// "Balanced" is the bottom level's profile: zstd (level 1) data blocks.
	zstd := 0
	for k, n := range comp {
		if strings.HasPrefix(k, "L6:") && (strings.Contains(k, "Balanced") || strings.Contains(strings.ToLower(k), "zstd")) {
			zstd += n
		}
	}
	if zstd == 0 {
		t.Fatalf("no zstd sstable in the bottom level after a full compaction: %v", comp)
	}
	// Reopen (a cold block cache), so that every read decompresses.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p, err = Open(dir, Options{CacheSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if got, ok := mustGet(t, p, k); !ok || got != cursorRec(fmt.Sprintf("video-%05d", i), int64(i+2)) {
			t.Fatalf("key %d after compaction: %+v, %v", i, got, ok)
		}
	}
	t.Logf("sstables by level and compression: %v", comp)
}
