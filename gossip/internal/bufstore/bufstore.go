// Package bufstore is the cluster Core's view of its store: an overlay of
// the writes of one cycle, flushed in one durable batch, and the
// anti-entropy digests kept up to date write by write. It starts no
// goroutines and reads no clock (DESIGN.md, "sans-I/O").
package bufstore

import (
	"hash/fnv"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/storage"
)

// Buckets is the number of anti-entropy buckets per partition.
const Buckets = 64

// Store is the Core's view of its store: writes collect in an overlay
// until the Core flushes them in one durable batch (one WAL sync for every
// request of a cycle: the cluster's group commit), reads see the overlay,
// and every write keeps the partition digests up to date.
//
// The request rules (rules.go) read through it as they read a store, so
// the cluster executes the single-node rules, it does not copy them. Scans
// first flush the overlay (through FlushHook), so they read the base store
// only.
type Store struct {
	base    storage.Store
	overlay map[storage.Key]overlayOp
	order   []storage.Key
	digests map[uint16]*[Buckets]uint64
	// stale: a store read failed while a digest was being updated, so the
	// digests may not match the records. Anti-entropy neither sends nor
	// answers digests until RebuildDigests succeeds (they would lie).
	Stale bool
	// flushHook persists the overlay (the Core's flush).
	FlushHook func() error
	// observe, when set, is given the largest timestamp of every record
	// written, and of every record found by RebuildDigests (recordHLC).
	Observe func(crdt.HLC)
}

type overlayOp struct {
	rec     crdt.Record
	deleted bool
}

// New is a Store over base with empty digests (RebuildDigests fills them).
func New(base storage.Store) *Store {
	return &Store{base: base, overlay: map[storage.Key]overlayOp{}, digests: map[uint16]*[Buckets]uint64{}}
}

func (s *Store) Get(k storage.Key) (crdt.Record, bool, error) {
	if op, ok := s.overlay[k]; ok {
		if op.deleted {
			return crdt.Record{}, false, nil
		}
		return op.rec, true, nil
	}
	return s.base.Get(k)
}

func (s *Store) ScanProfile(p uint16, account, profile string, kind crdt.Kind, fn func(storage.Key, crdt.Record) error) error {
	if err := s.flushFirst(); err != nil {
		return err
	}
	return s.base.ScanProfile(p, account, profile, kind, fn)
}

func (s *Store) ScanPartition(p uint16, fn func(storage.Key, crdt.Record) error) error {
	if err := s.flushFirst(); err != nil {
		return err
	}
	return s.base.ScanPartition(p, fn)
}

func (s *Store) flushFirst() error {
	if len(s.overlay) == 0 || s.FlushHook == nil {
		return nil
	}
	return s.FlushHook()
}

// Write records puts and deletes in the overlay; nothing is durable until
// the Core flushes.
func (s *Store) Write(puts []storage.Put, deletes []storage.Key) error {
	for _, p := range puts {
		if p.Record.Kind == crdt.KindCursor {
			p.Record.Cursor.Video = ""
		}
		s.set(p.Key, overlayOp{rec: p.Record})
	}
	for _, k := range deletes {
		s.set(k, overlayOp{deleted: true})
	}
	return nil
}

func (s *Store) set(k storage.Key, op overlayOp) {
	old, had, err := s.Get(k)
	if err != nil {
		s.Stale = true // the old record's share of the digest is unknown
	} else {
		s.account(k, old, had, op.rec, !op.deleted)
	}
	if !op.deleted && s.Observe != nil {
		s.Observe(recordHLC(op.rec))
	}
	if _, ok := s.overlay[k]; !ok {
		s.order = append(s.order, k)
	}
	s.overlay[k] = op
}

// account moves the key's contribution to its partition digest from the
// old state to the new one.
func (s *Store) account(k storage.Key, old crdt.Record, had bool, rec crdt.Record, has bool) {
	d := s.Digest(k.Partition)
	b := BucketOf(k)
	if had {
		d[b] ^= ItemHash(k, old)
	}
	if has {
		d[b] ^= ItemHash(k, rec)
	}
}

// Digest is partition p's bucket digests (zero for a partition with no
// records).
func (s *Store) Digest(p uint16) *[Buckets]uint64 {
	d := s.digests[p]
	if d == nil {
		d = new([Buckets]uint64)
		s.digests[p] = d
	}
	return d
}

// Pending returns the overlay as one batch and clears it.
func (s *Store) Pending() (puts []storage.Put, deletes []storage.Key) {
	for _, k := range s.order {
		op := s.overlay[k]
		if op.deleted {
			deletes = append(deletes, k)
		} else {
			puts = append(puts, storage.Put{Key: k, Record: op.rec})
		}
	}
	s.overlay = map[storage.Key]overlayOp{}
	s.order = s.order[:0]
	return puts, deletes
}

func (s *Store) Close() error { return s.base.Close() }

// RebuildDigests recomputes every digest from the base store and the
// overlay: when the Core starts, and after a store error left them stale.
// On an error the digests stay stale.
func (s *Store) RebuildDigests(partitions int) error {
	s.digests = map[uint16]*[Buckets]uint64{}
	s.Stale = true
	for p := 0; p < partitions; p++ {
		err := s.base.ScanPartition(uint16(p), func(k storage.Key, r crdt.Record) error {
			s.Digest(k.Partition)[BucketOf(k)] ^= ItemHash(k, r)
			if s.Observe != nil {
				s.Observe(recordHLC(r))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, k := range s.order {
		op := s.overlay[k]
		old, had, err := s.base.Get(k)
		if err != nil {
			return err
		}
		s.account(k, old, had, op.rec, !op.deleted)
	}
	s.Stale = false
	return nil
}

// BucketOf is the key's anti-entropy bucket in its partition. FORMAT:
// peers compare BucketOf, ItemHash and gossip's pushHash; see
// gossip/digest_golden_test.go.
//
// The encode errors here and in ItemHash are safe to drop: only keys and
// records that reached a store (validated, encodable) are hashed.
func BucketOf(k storage.Key) int {
	h := fnv.New64a()
	kb, _ := storage.EncodeKey(k)
	h.Write(kb)
	return int(Mix64(h.Sum64()) % Buckets)
}

// ItemHash is a key's contribution to its bucket digest: a hash of its
// encoded key and value. Digests XOR these, so a write updates a digest in
// O(1) and two replicas with equal digests hold (with overwhelming
// probability) equal records.
func ItemHash(k storage.Key, r crdt.Record) uint64 {
	h := fnv.New64a()
	kb, _ := storage.EncodeKey(k)
	h.Write(kb)
	h.Write([]byte{0xff})
	if r.Kind == crdt.KindCursor {
		r.Cursor.Video = ""
	}
	vb, _ := storage.EncodeValue(r)
	h.Write(vb)
	return Mix64(h.Sum64())
}

// Mix64 is the splitmix64 finalizer: it spreads FNV's weak low bits (also
// used for the push interest marks, gossip/push.go).
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// A node's HLC is past every version it stores. Local's rules advance the
// clock over what devices send (the HLC receive rule), but records also
// arrive by replication, hints, anti-entropy and handoff, and a deletion
// register may be set above the clock ("deletes cover what is stored": a
// device clock running ahead wrote a larger seq). Answers carry the
// coordinator's HLC and devices open new epochs above it; were the clock
// below a stored cleared_at, a device's next new session could start below
// it and be deleted on arrival (found by the simulator, seed 163 of the CI
// sweep: a fresh session's first write answered stale after a DeleteAll).
// So every record written to the Core's store — by a request, a merge, or
// found at start — is observed by the clock (Store.Observe).

// recordHLC is the largest timestamp a record holds.
func recordHLC(r crdt.Record) crdt.HLC {
	switch r.Kind {
	case crdt.KindCursor:
		c := r.Cursor
		return max(c.Version.Epoch, c.Version.Seq, c.UpdatedHLC, c.ClearedAt)
	case crdt.KindEntry:
		e := r.Entry
		return max(e.Session.Seq, e.Rec.Seq, e.Deleted.Seq, e.LastAt, e.StartedAt)
	case crdt.KindProfile:
		return max(r.Profile.ClearedAt, r.Profile.PausedAt)
	case crdt.KindHide:
		return r.Hide.At
	}
	return 0
}
