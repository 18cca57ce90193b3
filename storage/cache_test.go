package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/playhead/playhead/crdt"
)

func cacheKey(i int) Key {
	return Key{Partition: 1, Account: "a", Profile: "p", Kind: crdt.KindCursor, ID: fmt.Sprintf("v%d", i)}
}

func cacheRec(i int, pos int64) crdt.Record {
	return crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{Video: fmt.Sprintf("v%d", i), PositionMs: pos,
		DurationMs: 1 << 30, Version: crdt.Version{Epoch: 1, Seq: crdt.HLC(pos + 1), Session: "s"}}}
}

// TestCachedServesHitsAndWritesThrough: a second Get of a key is a hit, a
// Write updates the cached value, a delete caches the absence, and the hit
// counters say so.
func TestCachedServesHitsAndWritesThrough(t *testing.T) {
	inner := NewMem()
	c := NewCached(inner, 16)
	k := cacheKey(1)
	if _, ok, _ := c.Get(k); ok {
		t.Fatal("found a key never written")
	}
	if _, ok, _ := c.Get(k); ok {
		t.Fatal("found a key never written (cached absence)")
	}
	if h, m := c.Stats(); h != 1 || m != 1 {
		t.Fatalf("hits/misses = %d/%d, want 1/1", h, m)
	}
	if err := c.Write([]Put{{Key: k, Record: cacheRec(1, 5)}}, nil); err != nil {
		t.Fatal(err)
	}
	got, ok, _ := c.Get(k)
	if !ok || got.Cursor.PositionMs != 5 {
		t.Fatalf("after write: %+v %v", got.Cursor, ok)
	}
	if h, _ := c.Stats(); h != 2 {
		t.Fatalf("the read after a write was not a hit (hits %d)", h)
	}
	if err := c.Write(nil, []Key{k}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Get(k); ok {
		t.Fatal("found a deleted key")
	}
	if _, ok, _ := inner.Get(k); ok {
		t.Fatal("the delete did not reach the inner store")
	}
}

// TestCachedBounded: the cache never holds more than its capacity (plus
// shard rounding), and evicted keys read back from the inner store.
func TestCachedBounded(t *testing.T) {
	c := NewCached(NewMem(), 128)
	for i := 0; i < 5000; i++ {
		if err := c.Write([]Put{{Key: cacheKey(i), Record: cacheRec(i, int64(i))}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].entries)
		if len(c.shards[i].clock) > c.shards[i].limit {
			t.Fatalf("shard %d holds %d > %d", i, len(c.shards[i].clock), c.shards[i].limit)
		}
	}
	if n > 128+cacheShards {
		t.Fatalf("%d entries cached, capacity 128", n)
	}
	for i := 0; i < 5000; i++ {
		got, ok, err := c.Get(cacheKey(i))
		if err != nil || !ok || got.Cursor.PositionMs != int64(i) {
			t.Fatalf("key %d: %+v %v %v", i, got.Cursor, ok, err)
		}
	}
}

// failingStore fails every Write after writing it (as a store whose sync
// failed after the batch reached the memtable might).
type failingStore struct{ *Mem }

func (f failingStore) Write(puts []Put, deletes []Key) error {
	_ = f.Mem.Write(puts, deletes)
	return errors.New("sync failed")
}

// TestCachedForgetsFailedWrites: after a failed Write the key is read from
// the inner store again, whatever state the failure left there.
func TestCachedForgetsFailedWrites(t *testing.T) {
	inner := NewMem()
	c := NewCached(failingStore{inner}, 16)
	k := cacheKey(1)
	if _, ok, _ := c.Get(k); ok {
		t.Fatal("found")
	}
	if err := c.Write([]Put{{Key: k, Record: cacheRec(1, 7)}}, nil); err == nil {
		t.Fatal("no error")
	}
	got, ok, _ := c.Get(k)
	if !ok || got.Cursor.PositionMs != 7 {
		t.Fatalf("after a failed write the cache kept its stale absence: %+v %v", got.Cursor, ok)
	}
}

// TestCachedConcurrentWritersConverge: writers that do not serialize their
// Writes of a key, and readers filling the cache at the same time, never
// leave the cache holding anything but the inner store's value. Run it with
// -race.
func TestCachedConcurrentWritersConverge(t *testing.T) {
	for round := 0; round < 20; round++ {
		inner := NewMem()
		c := NewCached(inner, 8) // smaller than the key set: evictions race too
		const keys = 12
		var wg sync.WaitGroup
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for i := 0; i < 300; i++ {
					k := r.IntN(keys)
					switch r.IntN(4) {
					case 0:
						c.Write(nil, []Key{cacheKey(k)})
					case 1, 2:
						c.Write([]Put{{Key: cacheKey(k), Record: cacheRec(k, r.Int64N(1000))}}, nil)
					default:
						c.Get(cacheKey(k))
					}
				}
			}(w)
		}
		wg.Wait()
		for k := 0; k < keys; k++ {
			want, wok, _ := inner.Get(cacheKey(k))
			got, gok, _ := c.Get(cacheKey(k))
			if wok != gok || want.Cursor != got.Cursor {
				t.Fatalf("round %d key %d: cache %+v (%v), store %+v (%v)", round, k, got.Cursor, gok, want.Cursor, wok)
			}
		}
	}
}
