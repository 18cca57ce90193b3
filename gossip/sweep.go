package gossip

import (
	"maps"
	"slices"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/storage"
)

// Retention on every replica (DESIGN.md §4 "Retention in a cluster").
//
// Both coordinators sweep: Local from the node's goroutine (local.go), the
// cluster's Core as a step of its Tick (below). Each visits a budget of
// partitions per interval and applies crdt.Retain to every record: purge
// what expiry and deletion made invisible for good, scrub the content of
// deleted and expired writes. The rule is a function of the record, its
// profile's registers, its video's deletion register and the time, so
// replicas agree on it without talking.
//
// A Core also applies it to every record that reaches it from a peer —
// replication, hints, anti-entropy, handoff, the copies of a quorum read —
// after merging it with its own copy: a record that is purgeable on arrival
// is not stored (and the stored copy it merged with is dropped), and
// deleted content is scrubbed before it is stored. Anti-entropy sweeps what
// it scans before it sends it, so a replica neither sends what it would
// purge nor takes back what it purged. Because expiry only grows with time,
// a record a replica purged is purgeable in every copy that can still
// arrive: no peer, hint or replica that was down for a year brings it back.

// sweepWalk applies the retention rule to the records of a key-ordered
// scan (of a partition or of one profile). In key order a profile's
// registers come first, then its cursors (each holding its video's deletion
// register), then its entries and hides, so every record is judged with the
// registers that apply to it.
type sweepWalk struct {
	pol          crdt.Policy
	nowMs        int64
	cur          Ref
	prof         crdt.Profile
	videoCleared map[string]crdt.HLC
}

func newSweepWalk(pol crdt.Policy, nowMs int64) *sweepWalk {
	return &sweepWalk{pol: pol, nowMs: nowMs, videoCleared: map[string]crdt.HLC{}}
}

// next judges the next record of the scan: drop it (keep false), or store
// out; changed reports whether either differs from what is stored.
func (w *sweepWalk) next(k storage.Key, r crdt.Record) (out crdt.Record, keep, changed bool) {
	if ref := (Ref{k.Account, k.Profile}); ref != w.cur {
		w.cur, w.prof = ref, crdt.Profile{}
		clear(w.videoCleared)
	}
	switch r.Kind {
	case crdt.KindProfile:
		w.prof = r.Profile
		return r, true, false // profile registers are never purged
	case crdt.KindCursor:
		w.videoCleared[k.ID] = r.Cursor.ClearedAt
	}
	vc := crdt.HLC(0)
	if r.Kind == crdt.KindEntry {
		vc = w.videoCleared[r.Entry.Video]
	}
	out, keep = crdt.Retain(r, w.prof, vc, w.pol, w.nowMs)
	return out, keep, !keep || out != r
}

// sweepState is a Core's progress through its partitions.
type sweepState struct {
	next int   // the next partition to visit
	last int64 // when the sweep last ran (ms)
}

// sweepTick is the Core's sweep step, run by Tick: every SweepInterval it
// visits the next SweepBudget partitions that hold records (owned or left
// over from a ring change: both are purged by the same rule), and once per
// full pass it sweeps the hints this node keeps.
func (c *Core) sweepTick() {
	if c.cfg.SweepInterval < 0 || c.nowMs-c.sweep.last < c.cfg.SweepInterval.Milliseconds() {
		return
	}
	c.sweep.last = c.nowMs
	n := c.cfg.Local.Partitions
	for i, visited := 0, 0; i < n && visited < c.cfg.SweepBudget; i++ {
		p := uint16(c.sweep.next)
		c.sweep.next++
		if c.sweep.next >= n {
			c.sweep.next = 0
			c.stats.SweepPasses++
			c.sweepHints()
		}
		if !c.buf.Stale && *c.buf.Digest(p) == ([DigestBuckets]uint64{}) {
			continue // holds nothing (a stale digest may lie: then scan)
		}
		visited++
		c.sweepPartition(p)
	}
}

// sweepPartition applies the retention rule to every record of p.
func (c *Core) sweepPartition(p uint16) {
	var puts []storage.Put
	var dels []storage.Key
	w := newSweepWalk(c.Policy(), c.nowMs)
	err := c.buf.ScanPartition(p, func(k storage.Key, r crdt.Record) error {
		out, keep, changed := w.next(k, r)
		switch {
		case !changed:
		case !keep:
			dels = append(dels, k)
		default:
			puts = append(puts, storage.Put{Key: k, Record: out})
		}
		return nil
	})
	if err != nil {
		c.stats.StoreErrors++ // the next pass visits it again
		return
	}
	if len(puts)+len(dels) > 0 {
		c.buf.Write(puts, dels) // the overlay; the next Flush makes it durable
		c.stats.SweptRecords += uint64(len(puts) + len(dels))
	}
}

// retainOnArrival applies the retention rule to rec, a record from a peer
// merged with this node's copy of key k, with the registers this node
// holds: ok false means it is purgeable and must not be stored.
func (c *Core) retainOnArrival(k storage.Key, rec crdt.Record) (out crdt.Record, ok bool, err error) {
	if rec.Kind == crdt.KindProfile || plantNoRetain {
		return rec, true, nil
	}
	prof, vc, err := c.registersOf(k, rec)
	if err != nil {
		return crdt.Record{}, false, err
	}
	out, ok = crdt.Retain(rec, prof, vc, c.Policy(), c.nowMs)
	return out, ok, nil
}

// registersOf reads the deletion registers that apply to rec (of key k):
// its profile's, and for an entry its video's. Within one batch of records
// from a peer (mergeRecords) it remembers what it read and what the batch
// stored (arrivalRegs): a batch is in key order, so a profile's registers
// and cursors come before its entries, and a replicated write costs one
// store read more than the merge itself, not three.
func (c *Core) registersOf(k storage.Key, rec crdt.Record) (crdt.Profile, crdt.HLC, error) {
	m := &c.arrivalRegs
	ref := Ref{Account: k.Account, Profile: k.Profile}
	if !m.haveProf || m.ref != ref {
		pk := storage.Key{Partition: k.Partition, Account: k.Account, Profile: k.Profile, Kind: crdt.KindProfile}
		p, _, err := c.buf.Get(pk)
		if err != nil {
			return crdt.Profile{}, 0, err
		}
		m.reset()
		m.ref, m.prof, m.haveProf = ref, p.Profile, true
	}
	if rec.Kind != crdt.KindEntry {
		return m.prof, 0, nil
	}
	if vc, ok := m.videos[rec.Entry.Video]; ok {
		return m.prof, vc, nil
	}
	ck := storage.Key{Partition: k.Partition, Account: k.Account, Profile: k.Profile, Kind: crdt.KindCursor, ID: rec.Entry.Video}
	cur, _, err := c.buf.Get(ck)
	if err != nil {
		return crdt.Profile{}, 0, err
	}
	m.video(rec.Entry.Video, cur.Cursor.ClearedAt)
	return m.prof, cur.Cursor.ClearedAt, nil
}

// arrivalRegs remembers, during one mergeRecords call, the registers of
// the profile whose records it is merging: the profile's (as stored after
// the batch's own profile record, if any) and each video's cleared_at read
// or stored so far. mergeRecords resets it before and after the batch, so
// it never outlives the records it describes.
type arrivalRegs struct {
	ref      Ref
	haveProf bool
	prof     crdt.Profile
	videos   map[string]crdt.HLC
}

func (m *arrivalRegs) reset() {
	m.ref, m.haveProf, m.prof = Ref{}, false, crdt.Profile{}
	clear(m.videos)
}

func (m *arrivalRegs) video(v string, cleared crdt.HLC) {
	if m.videos == nil {
		m.videos = map[string]crdt.HLC{}
	}
	m.videos[v] = cleared
}

// stored notes a record mergeOne stored (or dropped: ok false) for key k.
func (m *arrivalRegs) stored(k storage.Key, rec crdt.Record, ok bool) {
	ref := Ref{Account: k.Account, Profile: k.Profile}
	switch {
	case rec.Kind == crdt.KindProfile:
		m.reset()
		m.ref, m.prof, m.haveProf = ref, rec.Profile, true
	case rec.Kind == crdt.KindCursor && m.haveProf && m.ref == ref:
		if !ok {
			rec.Cursor.ClearedAt = 0
		}
		m.video(k.ID, rec.Cursor.ClearedAt)
	}
}

// sweepHints applies the retention rule to the hints this node keeps for
// owners it could not reach (stored in its store too, hints.go), with the
// registers this node holds and those hinted beside them: a hint that
// became purgeable is dropped, deleted content is scrubbed from it.
func (c *Core) sweepHints() {
	for _, k := range slices.SortedFunc(maps.Keys(c.hints), keyOrder) {
		h := c.hints[k]
		if h.rec.Kind == crdt.KindProfile {
			continue
		}
		prof, vc, err := c.registersOf(k, h.rec)
		if err != nil {
			c.stats.StoreErrors++
			continue
		}
		if ph := c.hints[storage.Key{Partition: k.Partition, Account: k.Account, Profile: k.Profile, Kind: crdt.KindProfile}]; ph != nil {
			prof = crdt.MergeProfile(prof, ph.rec.Profile)
		}
		if h.rec.Kind == crdt.KindEntry {
			if ch := c.hints[storage.Key{Partition: k.Partition, Account: k.Account, Profile: k.Profile, Kind: crdt.KindCursor, ID: h.rec.Entry.Video}]; ch != nil {
				vc = max(vc, ch.rec.Cursor.ClearedAt)
			}
		}
		out, ok := crdt.Retain(h.rec, prof, vc, c.Policy(), c.nowMs)
		switch {
		case !ok:
			c.dropHint(k)
			c.stats.SweptRecords++
		case out != h.rec:
			h.rec = out
			c.markHint(k)
			c.stats.SweptRecords++
		}
	}
}
