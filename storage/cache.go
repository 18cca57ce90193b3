package storage

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/playhead/playhead/crdt"
)

// DefaultCacheRecords is the default capacity of a Cached store, in records.
// A cached record costs about 700 bytes of heap (a crdt.Record holds the
// fields of every kind, plus the key and the strings), so the default holds
// the records of the devices playing right now on a busy node (a cursor, a
// history entry and a profile record each) in about 45 MB.
const DefaultCacheRecords = 1 << 16

// cacheShards is the number of independently locked parts of a Cached store.
const cacheShards = 64

// Cached is a Store that keeps the most recently used records (and the
// knowledge that a key is absent) in memory in front of another Store, so
// the read-merge-write of a hot cursor or profile record does not read
// Pebble's memtables and sstables every time: the read before every write
// was a fifth of a single node's CPU under the PUT benchmark.
//
// It is write-through: a Write goes to the inner store first and updates
// the cache only once the inner store accepted it. Consistency does not rely
// on callers serializing Writes of a key: while any Write of a key is in
// flight the key is served from the inner store and not filled, and when
// two Writes of a key overlapped (whose commit order the cache cannot know)
// the key is dropped rather than updated. A Get that missed fills the cache
// only if the key was neither written nor evicted meanwhile, so a fill never
// brings back a value older than one the cache already replaced.
//
// Eviction is CLOCK (second chance) per shard. Scans go to the inner store.
// Cached is safe for concurrent use.
type Cached struct {
	inner  Store
	seed   maphash.Seed
	shards [cacheShards]cacheShard

	hits, misses atomic.Uint64
	closed       atomic.Bool
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[Key]*cacheEntry
	clock   []*cacheEntry // CLOCK ring over the resident entries
	hand    int
	limit   int
	gen     uint64 // bumped by every eviction, write and drop in the shard
}

type cacheEntry struct {
	key     Key
	rec     crdt.Record
	found   bool // false: the key is known to be absent
	valid   bool // rec/found hold the committed state
	ref     bool // CLOCK's reference bit
	pending int  // Writes of this key in flight
	clashed bool // Writes of this key overlapped: drop it when they end
	slot    int  // index in clock, or -1 when not resident
}

var (
	_ Store       = (*Cached)(nil)
	_ AsyncWriter = (*Cached)(nil)
)

// NewCached returns a cache of up to records records in front of inner;
// records ≤ 0 means DefaultCacheRecords. Close closes inner.
func NewCached(inner Store, records int) *Cached {
	if records <= 0 {
		records = DefaultCacheRecords
	}
	c := &Cached{inner: inner, seed: maphash.MakeSeed()}
	per := (records + cacheShards - 1) / cacheShards
	for i := range c.shards {
		c.shards[i].entries = make(map[Key]*cacheEntry)
		c.shards[i].limit = per
	}
	return c
}

// Inner returns the store the cache is in front of.
func (c *Cached) Inner() Store { return c.inner }

// Stats returns the Gets served from memory and those that went to the
// inner store.
func (c *Cached) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

func (c *Cached) shard(k Key) *cacheShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.Account)
	h.WriteByte(0)
	h.WriteString(k.Profile)
	h.WriteByte(byte(k.Kind))
	h.WriteString(k.ID)
	return &c.shards[h.Sum64()%cacheShards]
}

// Get implements Store.
func (c *Cached) Get(k Key) (crdt.Record, bool, error) {
	if c.closed.Load() {
		return crdt.Record{}, false, ErrClosed
	}
	s := c.shard(k)
	s.mu.Lock()
	if e := s.entries[k]; e != nil && e.valid && e.pending == 0 {
		e.ref = true
		rec, found := e.rec, e.found
		s.mu.Unlock()
		c.hits.Add(1)
		return rec, found, nil
	}
	gen := s.gen
	s.mu.Unlock()
	c.misses.Add(1)

	rec, found, err := c.inner.Get(k)
	if err != nil {
		return rec, found, err
	}
	s.mu.Lock()
	// Fill only if nothing in the shard was written, dropped or evicted
	// since the read began: then the value read is still the latest.
	if s.gen == gen && s.entries[k] == nil {
		s.fill(k, rec, found)
	}
	s.mu.Unlock()
	return rec, found, nil
}

// Write implements Store.
func (c *Cached) Write(puts []Put, deletes []Key) error {
	// Announce the Writes: from now until they end, their keys are served
	// from the inner store.
	for i := range puts {
		c.begin(puts[i].Key)
	}
	for _, k := range deletes {
		c.begin(k)
	}
	err := c.inner.Write(puts, deletes)
	for i := range puts {
		c.end(puts[i].Key, puts[i].Record, true, err == nil)
	}
	for _, k := range deletes {
		c.end(k, crdt.Record{}, false, err == nil)
	}
	return err
}

// WriteNoWait implements AsyncWriter. The cache takes the new values as
// soon as the inner store shows them; if they then fail to become durable,
// the keys are dropped from the cache.
func (c *Cached) WriteNoWait(puts []Put, deletes []Key) (func() error, error) {
	for i := range puts {
		c.begin(puts[i].Key)
	}
	for _, k := range deletes {
		c.begin(k)
	}
	wait, err := WriteNoWait(c.inner, puts, deletes)
	for i := range puts {
		c.end(puts[i].Key, puts[i].Record, true, err == nil)
	}
	for _, k := range deletes {
		c.end(k, crdt.Record{}, false, err == nil)
	}
	if err != nil {
		return nil, err
	}
	return func() error {
		err := wait()
		if err != nil {
			for i := range puts {
				c.forget(puts[i].Key)
			}
			for _, k := range deletes {
				c.forget(k)
			}
		}
		return err
	}, nil
}

// forget drops k from the cache.
func (c *Cached) forget(k Key) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if e := s.entries[k]; e != nil {
		if e.pending > 0 {
			e.clashed = true // dropped when its writes end
			e.valid = false
			return
		}
		s.drop(e)
	}
}

func (c *Cached) begin(k Key) {
	s := c.shard(k)
	s.mu.Lock()
	e := s.entries[k]
	if e == nil {
		e = &cacheEntry{key: k, slot: -1}
		s.entries[k] = e
	}
	if e.pending > 0 {
		e.clashed = true
	}
	e.pending++
	s.gen++
	s.mu.Unlock()
}

func (c *Cached) end(k Key, rec crdt.Record, found, ok bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[k]
	e.pending--
	s.gen++
	if !ok || e.clashed {
		// A failed write may or may not have reached the inner store, and
		// overlapping writes' order is unknown: forget the key.
		e.valid = false
		if e.pending == 0 {
			s.drop(e)
		}
		return
	}
	if e.pending > 0 {
		return
	}
	e.rec, e.found, e.valid, e.ref = asStored(k, rec), found, true, true
	if e.slot < 0 {
		s.insert(e)
	}
}

// asStored returns rec as the inner store reads it back: only its kind's
// state, and a cursor's video from the key (DecodeValue).
func asStored(k Key, rec crdt.Record) crdt.Record {
	out := crdt.Record{Kind: rec.Kind}
	switch rec.Kind {
	case crdt.KindCursor:
		out.Cursor = rec.Cursor
		out.Cursor.Video = k.ID
	case crdt.KindEntry:
		out.Entry = rec.Entry
	case crdt.KindProfile:
		out.Profile = rec.Profile
	case crdt.KindHide:
		out.Hide = rec.Hide
	}
	return out
}

// fill caches a value read from the inner store. When the shard is full
// it reuses the evicted entry's memory: a key space larger than the cache
// turns every miss into a fill, and a fresh entry per fill was most of the
// read path's garbage.
func (s *cacheShard) fill(k Key, rec crdt.Record, found bool) {
	if len(s.clock) < s.limit {
		e := &cacheEntry{key: k, rec: rec, found: found, valid: true, slot: -1}
		s.entries[k] = e
		s.insert(e)
		return
	}
	e := s.evict()
	if e == nil {
		e = &cacheEntry{}
	}
	*e = cacheEntry{key: k, rec: rec, found: found, valid: true}
	s.entries[k] = e
	s.place(e)
}

// insert makes e resident, evicting another entry if the shard is full.
// Entries with writes in flight are never evicted (they are not resident
// until their writes end).
func (s *cacheShard) insert(e *cacheEntry) {
	if len(s.clock) < s.limit {
		e.slot = len(s.clock)
		s.clock = append(s.clock, e)
		return
	}
	s.evict()
	s.place(e)
}

// place puts e in the slot evict left the hand on.
func (s *cacheShard) place(e *cacheEntry) {
	e.slot = s.hand
	s.clock[s.hand] = e
	s.hand = (s.hand + 1) % len(s.clock)
}

// evict runs the CLOCK hand to an entry whose reference bit is clear and
// takes it out of the ring, leaving the hand on its slot for the caller to
// fill. It returns the entry when it also left the shard (its memory is the
// caller's to reuse), or nil when it has writes in flight: then it stays in
// the map and is re-inserted when they end.
func (s *cacheShard) evict() *cacheEntry {
	for {
		v := s.clock[s.hand]
		if v.ref {
			v.ref = false
			s.hand = (s.hand + 1) % len(s.clock)
			continue
		}
		s.gen++
		v.slot = -1
		if v.pending > 0 {
			return nil
		}
		delete(s.entries, v.key)
		return v
	}
}

// drop removes e from the shard.
func (s *cacheShard) drop(e *cacheEntry) {
	delete(s.entries, e.key)
	if e.slot >= 0 {
		last := len(s.clock) - 1
		moved := s.clock[last]
		s.clock[e.slot] = moved
		moved.slot = e.slot
		s.clock = s.clock[:last]
		if s.hand >= len(s.clock) {
			s.hand = 0
		}
		e.slot = -1
	}
}

// ScanProfile implements Store; it reads the inner store.
func (c *Cached) ScanProfile(partition uint16, account, profile string, kind crdt.Kind, fn func(Key, crdt.Record) error) error {
	return c.inner.ScanProfile(partition, account, profile, kind, fn)
}

// ScanPartition implements Store; it reads the inner store.
func (c *Cached) ScanPartition(p uint16, fn func(Key, crdt.Record) error) error {
	return c.inner.ScanPartition(p, fn)
}

// Close implements Store: it closes the inner store.
func (c *Cached) Close() error {
	c.closed.Store(true)
	return c.inner.Close()
}
