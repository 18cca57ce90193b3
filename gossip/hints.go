package gossip

import (
	"cmp"
	"maps"
	"slices"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Hinted handoff (DESIGN.md §5 "Writes": an unreachable owner gets a hint
// that is replayed when it returns).
//
// When a coordinated write reaches its deadline, every owner that has not
// acknowledged it gets a hint: the coordinator keeps the records the write
// produced, merged per key with any earlier hint of the same key, and the
// set of owners that still need them. Hints are durable: they are written
// to the store under storage.HintKey (a partition no ring uses) in the
// same batch as the cycle's records, at the next Flush, and loaded again by
// NewCore, so a coordinator that crashes and restarts still replays them.
// The set of owners is not stored: after a restart a hint goes to every
// other owner of its partition under the current ring (merges are
// idempotent, so an owner that had it already loses nothing but the bytes).
//
// Every HintInterval the coordinator sends each live owner with hints, and
// no batch in flight, up to hintBatchSize records (MsgReplicate with a hint
// id); the owner merges them, persists and acknowledges. The ack removes
// the owner from each sent record's set unless the record changed since it
// was sent (a newer write missed too: it is sent again); a record no owner
// needs any more is deleted, from memory and, at the next Flush, from the
// store. A batch without an ack for RequestTimeout is sent again. Owners
// that left the partition (a ring change) are dropped from the sets: the
// new owners get the partition by handoff from the old ones.
//
// Hints are a fast path. Anti-entropy repairs whatever they miss: records
// past MaxHints, a write whose coordinator crashed before its deadline, a
// ring of 65536 partitions (no partition is free for hints, so they are
// kept in memory only).

// hint is one record that some owners of its partition have not
// acknowledged.
type hint struct {
	rec crdt.Record
	// to is the set of owners that still need rec; nil for a hint loaded
	// from the store, until the ring is known (then: every other owner of
	// the record's partition).
	to map[ring.NodeID]bool
}

// hintBatch is a replay awaiting its ack.
type hintBatch struct {
	to      ring.NodeID
	sentAt  int64
	records map[storage.Key]crdt.Record
}

// hintBatchSize is the most records a replay to one owner carries.
const hintBatchSize = 256

// hintID marks the ids of hint replays: they never collide with write ids.
const hintID = 1 << 63

// loadHints reads the hints a previous run of this node stored. Called
// once, by NewCore.
func (c *Core) loadHints() error {
	c.durableHints = c.cfg.Local.Partitions <= int(storage.HintPartition) && c.cfg.MaxHints >= 0
	if !c.durableHints {
		return nil
	}
	return c.store.ScanPartition(storage.HintPartition, func(k storage.Key, r crdt.Record) error {
		k.Partition = ring.PartitionOf(k.Account, k.Profile, c.cfg.Local.Partitions)
		c.hints[k] = &hint{rec: normalRecord(r)}
		c.stats.HintsLoaded++
		return nil
	})
}

// normalRecord clears what the store fills in from the key (a cursor's
// video), so that records compare equal whatever their origin.
func normalRecord(r crdt.Record) crdt.Record {
	if r.Kind == crdt.KindCursor {
		r.Cursor.Video = ""
	}
	return r
}

// storeHints keeps puts for owner o, which did not acknowledge them.
func (c *Core) storeHints(o ring.NodeID, puts []storage.Put) {
	if c.cfg.MaxHints < 0 {
		return
	}
	for _, p := range puts {
		rec := normalRecord(p.Record)
		h := c.hints[p.Key]
		switch {
		case h == nil && len(c.hints) >= c.cfg.MaxHints:
			c.stats.HintsDropped++
			continue
		case h == nil:
			h = &hint{rec: rec, to: map[ring.NodeID]bool{}}
			c.hints[p.Key] = h
		default:
			merged := crdt.MergeRecord(h.rec, rec)
			if merged == h.rec && (h.to == nil || h.to[o]) {
				continue // nothing new for anyone
			}
			h.rec = merged
		}
		if h.to != nil {
			h.to[o] = true
		}
		c.markHint(p.Key)
		c.stats.HintsStored++
	}
}

// markHint records that hint k changed (or went) since the last Flush.
func (c *Core) markHint(k storage.Key) {
	if c.durableHints {
		c.hintDirty[k] = struct{}{}
	}
}

func (c *Core) dropHint(k storage.Key) {
	delete(c.hints, k)
	c.markHint(k)
}

// appendHintWrites adds the hints changed since the last Flush to a store
// batch: a put of each live one, a delete of each one gone.
func (c *Core) appendHintWrites(puts []storage.Put, deletes []storage.Key) ([]storage.Put, []storage.Key) {
	if len(c.hintDirty) == 0 {
		return puts, deletes
	}
	for _, k := range slices.SortedFunc(maps.Keys(c.hintDirty), keyOrder) {
		if h, ok := c.hints[k]; ok {
			puts = append(puts, storage.Put{Key: storage.HintKey(k), Record: h.rec})
		} else {
			deletes = append(deletes, storage.HintKey(k))
		}
	}
	return puts, deletes
}

// keyOrder is a total order on keys, cheaper than their encoding's (it
// only has to make iteration deterministic).
func keyOrder(a, b storage.Key) int {
	return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Account, b.Account),
		cmp.Compare(a.Profile, b.Profile), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
}

// resolveHint brings h's owner set up to date with the ring: a loaded
// hint goes to every other owner of its partition, and owners that left
// the partition are dropped. It reports whether any owner still needs it.
func (c *Core) resolveHint(k storage.Key, h *hint) bool {
	owners := c.table.OwnersOf(k.Partition)
	if h.to == nil {
		h.to = map[ring.NodeID]bool{}
		for _, o := range owners {
			if o != c.cfg.Self {
				h.to[o] = true
			}
		}
	}
	for o := range h.to {
		if !slices.Contains(owners, o) || o == c.cfg.Self {
			delete(h.to, o)
		}
	}
	return len(h.to) > 0
}

// replayHints sends each live owner with hints, and no replay in flight,
// its next batch.
func (c *Core) replayHints() {
	if len(c.hints) == 0 || !c.haveTable {
		return
	}
	batches := map[ring.NodeID][]storage.Key{}
	for _, k := range slices.SortedFunc(maps.Keys(c.hints), keyOrder) {
		h := c.hints[k]
		if !c.resolveHint(k, h) {
			c.dropHint(k)
			continue
		}
		for o := range h.to {
			if len(batches[o]) < hintBatchSize {
				batches[o] = append(batches[o], k)
			}
		}
	}
	for _, o := range slices.Sorted(maps.Keys(batches)) {
		if !c.isAlive(o) || c.hintInFlight(o) {
			continue
		}
		hb := hintBatch{to: o, sentAt: c.nowMs, records: map[storage.Key]crdt.Record{}}
		puts := make([]storage.Put, 0, len(batches[o]))
		for _, k := range batches[o] {
			rec := c.hints[k].rec
			hb.records[k] = rec
			puts = append(puts, storage.Put{Key: k, Record: rec})
		}
		c.hintSeq++
		id := hintID | c.hintSeq
		c.hintsSent[id] = hb
		c.stats.HintsReplayed += uint64(len(puts))
		c.send(o, Msg{Type: MsgReplicate, ReqID: id, Records: encodeRecords(puts)})
	}
}

// hintInFlight reports whether a hint batch to o awaits its ack; a batch
// unanswered for a request timeout is forgotten and its hints sent again.
func (c *Core) hintInFlight(o ring.NodeID) bool {
	for _, id := range slices.Sorted(maps.Keys(c.hintsSent)) {
		hb := c.hintsSent[id]
		if hb.to != o {
			continue
		}
		if c.nowMs-hb.sentAt < c.cfg.RequestTimeout.Milliseconds() {
			return true
		}
		delete(c.hintsSent, id)
	}
	return false
}

// clearHints takes the ack of a replay: the owner has every record of the
// batch durable.
func (c *Core) clearHints(hb hintBatch) {
	for _, k := range slices.SortedFunc(maps.Keys(hb.records), keyOrder) {
		h, ok := c.hints[k]
		if !ok || h.rec != hb.records[k] || h.to == nil {
			continue // changed since it was sent: it goes again
		}
		delete(h.to, hb.to)
		if len(h.to) == 0 {
			c.dropHint(k)
		}
	}
}

// HintsFor returns how many records are hinted for o.
func (c *Core) HintsFor(o ring.NodeID) int {
	n := 0
	for k, h := range c.hints {
		switch {
		case h.to != nil:
			if h.to[o] {
				n++
			}
		case c.haveTable && o != c.cfg.Self && c.table.Owns(o, k.Partition):
			n++
		}
	}
	return n
}

// Hints returns how many records this node keeps hinted, for any owner.
func (c *Core) Hints() int { return len(c.hints) }
