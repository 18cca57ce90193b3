package gossip

import (
	"hash/fnv"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/storage"
)

// DigestBuckets is the number of anti-entropy buckets per partition.
const DigestBuckets = 64

// bufStore is the Core's view of its store: writes collect in an overlay
// until the Core flushes them in one durable batch (one WAL sync for every
// request of a cycle: the cluster's group commit), reads see the overlay,
// and every write keeps the partition digests up to date.
//
// The request rules (rules.go) read through it as they read a store, so
// the cluster executes the single-node rules, it does not copy them. Scans
// first flush the overlay (through flushHook), so they read the base store
// only.
type bufStore struct {
	base    storage.Store
	overlay map[storage.Key]overlayOp
	order   []storage.Key
	digests map[uint16]*[DigestBuckets]uint64
	// stale: a store read failed while a digest was being updated, so the
	// digests may not match the records. Anti-entropy neither sends nor
	// answers digests until rebuildDigests succeeds (they would lie).
	stale bool
	// flushHook persists the overlay (the Core's flush).
	flushHook func() error
	// observe, when set, is given the largest timestamp of every record
	// written, and of every record found by rebuildDigests (clock.go).
	observe func(crdt.HLC)
}

type overlayOp struct {
	rec     crdt.Record
	deleted bool
}

func newBufStore(base storage.Store) *bufStore {
	return &bufStore{base: base, overlay: map[storage.Key]overlayOp{}, digests: map[uint16]*[DigestBuckets]uint64{}}
}

func (s *bufStore) Get(k storage.Key) (crdt.Record, bool, error) {
	if op, ok := s.overlay[k]; ok {
		if op.deleted {
			return crdt.Record{}, false, nil
		}
		return op.rec, true, nil
	}
	return s.base.Get(k)
}

func (s *bufStore) ScanProfile(p uint16, account, profile string, kind crdt.Kind, fn func(storage.Key, crdt.Record) error) error {
	if err := s.flushFirst(); err != nil {
		return err
	}
	return s.base.ScanProfile(p, account, profile, kind, fn)
}

func (s *bufStore) ScanPartition(p uint16, fn func(storage.Key, crdt.Record) error) error {
	if err := s.flushFirst(); err != nil {
		return err
	}
	return s.base.ScanPartition(p, fn)
}

func (s *bufStore) flushFirst() error {
	if len(s.overlay) == 0 || s.flushHook == nil {
		return nil
	}
	return s.flushHook()
}

// Write records puts and deletes in the overlay; nothing is durable until
// the Core flushes.
func (s *bufStore) Write(puts []storage.Put, deletes []storage.Key) error {
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

func (s *bufStore) set(k storage.Key, op overlayOp) {
	old, had, err := s.Get(k)
	if err != nil {
		s.stale = true // the old record's share of the digest is unknown
	} else {
		s.account(k, old, had, op.rec, !op.deleted)
	}
	if !op.deleted && s.observe != nil {
		s.observe(recordHLC(op.rec))
	}
	if _, ok := s.overlay[k]; !ok {
		s.order = append(s.order, k)
	}
	s.overlay[k] = op
}

// account moves the key's contribution to its partition digest from the
// old state to the new one.
func (s *bufStore) account(k storage.Key, old crdt.Record, had bool, rec crdt.Record, has bool) {
	d := s.digest(k.Partition)
	b := bucketOf(k)
	if had {
		d[b] ^= itemHash(k, old)
	}
	if has {
		d[b] ^= itemHash(k, rec)
	}
}

func (s *bufStore) digest(p uint16) *[DigestBuckets]uint64 {
	d := s.digests[p]
	if d == nil {
		d = new([DigestBuckets]uint64)
		s.digests[p] = d
	}
	return d
}

// pending returns the overlay as one batch and clears it.
func (s *bufStore) pending() (puts []storage.Put, deletes []storage.Key) {
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

func (s *bufStore) Close() error { return s.base.Close() }

// rebuildDigests recomputes every digest from the base store and the
// overlay: when the Core starts, and after a store error left them stale.
// On an error the digests stay stale.
func (s *bufStore) rebuildDigests(partitions int) error {
	s.digests = map[uint16]*[DigestBuckets]uint64{}
	s.stale = true
	for p := 0; p < partitions; p++ {
		err := s.base.ScanPartition(uint16(p), func(k storage.Key, r crdt.Record) error {
			s.digest(k.Partition)[bucketOf(k)] ^= itemHash(k, r)
			if s.observe != nil {
				s.observe(recordHLC(r))
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
	s.stale = false
	return nil
}

// bucketOf is the key's anti-entropy bucket in its partition. FORMAT:
// peers compare bucketOf, itemHash and pushHash; see digest_golden_test.go.
func bucketOf(k storage.Key) int {
	h := fnv.New64a()
	kb, _ := storage.EncodeKey(k)
	h.Write(kb)
	return int(mix64(h.Sum64()) % DigestBuckets)
}

// itemHash is a key's contribution to its bucket digest: a hash of its
// encoded key and value. Digests XOR these, so a write updates a digest in
// O(1) and replicas with equal digests (almost surely) hold equal records.
func itemHash(k storage.Key, r crdt.Record) uint64 {
	h := fnv.New64a()
	kb, _ := storage.EncodeKey(k)
	h.Write(kb)
	h.Write([]byte{0xff})
	if r.Kind == crdt.KindCursor {
		r.Cursor.Video = ""
	}
	vb, _ := storage.EncodeValue(r)
	h.Write(vb)
	return mix64(h.Sum64())
}

// mix64 is the splitmix64 finalizer: it spreads FNV's weak low bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
