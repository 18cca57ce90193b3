package storage

import (
	"bytes"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/playhead/playhead/crdt"
)

// Mem is an in-memory Store for tests and the deterministic simulator, with
// the crash semantics of a disk. It holds encoded keys and values, so the
// codec is exercised as in production, and it starts no goroutines, reads no
// clock and draws no random numbers: scans run in key order, and Crash
// takes its choices from the caller.
//
// By default every Write is durable when it returns, as with Pebble. With
// WithDeferredSync, Writes are visible at once but only durable after the
// next Sync: the simulator calls Sync when its virtual disk would have
// synced, and Crash decides the fate of the Writes in between. (In that mode
// Write returns before its batch is durable, unlike the Store contract says;
// the simulator must acknowledge a write only after Sync.)
//
// Mem is safe for concurrent use.
type Mem struct {
	deferred bool // set once by NewMem

	mu sync.Mutex
	// live is what readers see: every Write applied.
	// Invariant: keys is sorted and holds exactly the keys of live.
	live map[string][]byte
	keys []string
	// durable is the state a crash keeps for certain, in deferred mode (in
	// the default mode it is nil: live is durable).
	durable map[string][]byte
	// pending holds the Writes applied to live but not to durable, oldest
	// first (deferred mode only).
	pending [][]op
	closed  bool
	// dec caches the decoded key and record of live values (the simulator
	// reads far more than it writes); a write of a key drops its entry.
	dec map[string]memDecoded
}

type memDecoded struct {
	key Key
	rec crdt.Record
}

// decodedLocked returns the decoded key and record of live[key]. m.mu must
// be held.
func (m *Mem) decodedLocked(key string, val []byte) (memDecoded, error) {
	if d, ok := m.dec[key]; ok {
		return d, nil
	}
	k, err := DecodeKey([]byte(key))
	if err != nil {
		return memDecoded{}, err
	}
	rec, err := DecodeValue(k.Kind, k.ID, val)
	if err != nil {
		return memDecoded{}, err
	}
	if m.dec == nil {
		m.dec = map[string]memDecoded{}
	}
	d := memDecoded{k, rec}
	m.dec[key] = d
	return d, nil
}

var _ Store = (*Mem)(nil)

// MemOption configures NewMem.
type MemOption func(*Mem)

// WithDeferredSync makes Writes durable only at the next Sync (see Mem).
func WithDeferredSync() MemOption { return func(m *Mem) { m.deferred = true } }

// NewMem returns an empty in-memory store.
func NewMem(opts ...MemOption) *Mem {
	m := &Mem{live: map[string][]byte{}}
	for _, o := range opts {
		o(m)
	}
	if m.deferred {
		m.durable = map[string][]byte{}
	}
	return m
}

// Get implements Store.
func (m *Mem) Get(k Key) (crdt.Record, bool, error) {
	key, err := EncodeKey(k)
	if err != nil {
		return crdt.Record{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return crdt.Record{}, false, ErrClosed
	}
	val, ok := m.live[string(key)]
	if !ok {
		return crdt.Record{}, false, nil
	}
	d, err := m.decodedLocked(string(key), val)
	return d.rec, err == nil, err
}

// ScanProfile implements Store. fn runs without the store's lock held and
// sees the records as they were when the scan began.
func (m *Mem) ScanProfile(partition uint16, account, profile string, kind crdt.Kind, fn func(Key, crdt.Record) error) error {
	lower, upper, err := ProfileBounds(partition, account, profile, kind)
	if err != nil {
		return err
	}
	return m.scan(lower, upper, fn)
}

// ScanPartition implements Store. fn runs without the store's lock held and
// sees the records as they were when the scan began.
func (m *Mem) ScanPartition(partition uint16, fn func(Key, crdt.Record) error) error {
	lower, upper := PartitionBounds(partition)
	return m.scan(lower, upper, fn)
}

// scan calls fn for every record in [lower, upper); nil upper is unbounded.
func (m *Mem) scan(lower, upper []byte, fn func(Key, crdt.Record) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	i := sort.SearchStrings(m.keys, string(lower))
	var recs []memDecoded
	for ; i < len(m.keys); i++ {
		key := m.keys[i]
		if upper != nil && key >= string(upper) {
			break
		}
		d, err := m.decodedLocked(key, m.live[key])
		if err != nil {
			m.mu.Unlock()
			return err
		}
		recs = append(recs, d)
	}
	m.mu.Unlock()

	for _, d := range recs { // fn runs without the lock: it may call m
		if err := fn(d.key, d.rec); err != nil {
			return err
		}
	}
	return nil
}

// Write implements Store. Nothing is written if any key or record is
// invalid. In deferred mode the batch is durable only after the next Sync.
func (m *Mem) Write(puts []Put, deletes []Key) error {
	ops, err := encodeOps(puts, deletes)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if len(ops) == 0 {
		return nil
	}
	m.applyLocked(ops)
	if m.deferred {
		m.pending = append(m.pending, ops)
	}
	return nil
}

// applyLocked applies ops to live, keeping keys sorted. m.mu must be held.
func (m *Mem) applyLocked(ops []op) {
	for _, o := range ops {
		key := string(o.key)
		delete(m.dec, key)
		i, found := slices.BinarySearch(m.keys, key)
		switch {
		case o.value == nil && found:
			delete(m.live, key)
			m.keys = slices.Delete(m.keys, i, i+1)
		case o.value != nil:
			if !found {
				m.keys = slices.Insert(m.keys, i, key)
			}
			// A copy: encodeOps's values share one buffer per batch,
			// which the store must not keep alive.
			m.live[key] = bytes.Clone(o.value)
		}
	}
}

// Sync makes every Write so far durable. It is a no-op unless the store was
// made WithDeferredSync, and on a closed store.
func (m *Mem) Sync() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || !m.deferred {
		return
	}
	for _, ops := range m.pending {
		applyTo(m.durable, ops)
	}
	m.pending = nil
}

// Crash returns a new, open store holding what m's disk would hold after a
// power loss at this moment: every durable Write, and each Write that is not
// yet durable (deferred mode) either whole or not at all. keep is called
// once per such Write, oldest first, and decides: true keeps it. To model a
// log that keeps a prefix of the Writes, make keep return false from its
// first false on.
//
// The new store has m's mode and everything in it is durable. m itself is
// unchanged (open or closed); callers usually drop it. keep runs with m's
// lock held and must not call m.
func (m *Mem) Crash(keep func() bool) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &Mem{deferred: m.deferred}
	if !m.deferred {
		c.live = maps.Clone(m.live)
		c.keys = slices.Clone(m.keys)
		return c
	}
	c.live = maps.Clone(m.durable)
	for _, ops := range m.pending {
		if keep() {
			applyTo(c.live, ops)
		}
	}
	c.keys = slices.Sorted(maps.Keys(c.live))
	c.durable = maps.Clone(c.live)
	return c
}

// Close implements Store. Closing a closed store returns ErrClosed. In
// deferred mode, Close does not sync.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	return nil
}

// applyTo applies ops to a map of encoded keys to values.
func applyTo(kv map[string][]byte, ops []op) {
	for _, o := range ops {
		if o.value == nil {
			delete(kv, string(o.key))
		} else {
			kv[string(o.key)] = o.value
		}
	}
}
