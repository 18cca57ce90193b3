package gossip

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Quorum reads with read repair (DESIGN.md §5 "Reads": read_quorum 1 by
// default, 2 on request, with read repair when replicas disagree).
//
// A read with quorum q > 1 reaches an owner (the coordinator, as any read
// does). That owner asks q−1 other live owners for their records of the
// profile (MsgProfileRecords), merges what they hold into its own state —
// the repair of this node, made durable by the next Flush — and sends each
// of them, with MsgReplicate (ReqID 0: no ack wanted), the merged records
// whose bytes differ from theirs — the repair of the peer. Once all q−1
// answered it runs the read on the merged state; the answer is held until
// the Flush that makes the repair durable here. Without q−1 answers within
// RequestTimeout the read is answered ErrUnavailable.

// readRepair is a Core's state for quorum reads.
type readRepair struct {
	next  uint64
	reads map[uint64]*quorumRead
	due   dueBound // bounds the deadlines of reads
	// Repairs counts records repaired (here or at a peer) by quorum reads.
	repairs uint64
}

type quorumRead struct {
	origin   ring.NodeID
	reqID    uint64
	op       Op
	peers    []ring.NodeID
	got      map[ring.NodeID]bool
	deadline int64
}

// profileKinds are the record kinds of a profile, in key order.
var profileKinds = []crdt.Kind{crdt.KindProfile, crdt.KindCursor, crdt.KindEntry, crdt.KindHide}

// readQuorum is the quorum op asks for, capped at the partition's owners.
func (c *Core) readQuorum(op Op, owners int) int {
	q := op.ReadQuorum
	if q == 0 {
		q = c.cfg.ReadQuorum
	}
	return max(1, min(q, owners))
}

// ReadRepairs returns how many records quorum reads have repaired, here or
// at a peer.
func (c *Core) ReadRepairs() uint64 { return c.rr.repairs }

// startQuorumRead begins a read needing more than this owner's copy; it
// reports false when op needs no quorum (the caller reads locally).
func (c *Core) startQuorumRead(origin ring.NodeID, reqID uint64, op Op) bool {
	if !op.Kind.isRead() {
		return false
	}
	p := c.Partition(op.Ref)
	owners := c.table.OwnersOf(p)
	q := c.readQuorum(op, len(owners))
	_, pulling := c.handoff[p]
	if q <= 1 && !pulling {
		return false
	}
	// A copy still pulling its partition from the old owners (a node that
	// just gained it: added, or back after the ring dropped it) is not a
	// replica yet: it may lack everything written while it was away. It
	// counts for nothing, so it reads every live owner (found by the
	// rejoin process test: both restarted seeds, each pulling, answered a
	// quorum-2 read with their old copies).
	want := q - 1
	if pulling {
		want = len(owners)
	}
	var peers []ring.NodeID
	for _, o := range owners {
		if o != c.cfg.Self && c.isAlive(o) && len(peers) < want {
			peers = append(peers, o)
		}
	}
	if pulling && len(peers) == 0 && q <= 1 {
		return false // no other owner reachable: what this node has is all there is
	}
	if len(peers) < q-1 {
		c.answer(origin, reqID, op, Result{}, fmt.Errorf("%w: read quorum %d, %d owners reachable", ErrUnavailable, q, len(peers)+1), false)
		return true
	}
	if c.rr.reads == nil {
		c.rr.reads = map[uint64]*quorumRead{}
	}
	c.rr.next++
	id := c.rr.next
	c.rr.reads[id] = &quorumRead{origin: origin, reqID: reqID, op: op, peers: peers, got: map[ring.NodeID]bool{},
		deadline: c.nowMs + c.cfg.RequestTimeout.Milliseconds()}
	c.rr.due.add(c.rr.reads[id].deadline)
	for _, p := range peers {
		c.send(p, Msg{Type: MsgProfileRecords, ReqID: id, Refs: []Ref{op.Ref}})
	}
	return true
}

// profileRecords returns this node's records of ref, in key order.
func (c *Core) profileRecords(ref Ref) ([]storage.Put, error) {
	p := c.Partition(ref)
	var out []storage.Put
	for _, k := range profileKinds {
		err := c.buf.ScanProfile(p, ref.Account, ref.Profile, k, func(key storage.Key, r crdt.Record) error {
			out = append(out, storage.Put{Key: key, Record: r})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// onProfileRecords answers a quorum read's request for a profile's records
// (Refs holds exactly one profile), if this node owns it.
func (c *Core) onProfileRecords(from ring.NodeID, m Msg) {
	if len(m.Refs) != 1 || m.ReqID == 0 {
		c.stats.BadMessages++
		return
	}
	ref := m.Refs[0]
	if !c.haveTable || !c.table.Owns(c.cfg.Self, c.Partition(ref)) {
		return // not an owner: the read times out or is retried
	}
	puts, err := c.profileRecords(ref)
	if err != nil {
		// No reply: the reader's quorum read times out and answers 503,
		// never an answer built without this owner's copy.
		c.stats.StoreErrors++
		return
	}
	// Handoff: this copy is still pulling the partition (see
	// startQuorumRead); the reader then asks the other owners too.
	_, pulling := c.handoff[c.Partition(ref)]
	c.send(from, Msg{Type: MsgProfileRecordsReply, ReqID: m.ReqID, Refs: m.Refs, Records: encodeRecords(puts), Handoff: pulling})
}

// onProfileRecordsReply merges a peer's records of the profile, repairs
// the peer, and answers the read once every peer asked has answered.
func (c *Core) onProfileRecordsReply(from ring.NodeID, m Msg) {
	r, ok := c.rr.reads[m.ReqID]
	if !ok || !slices.Contains(r.peers, from) || r.got[from] {
		return // answered already, timed out, or duplicated
	}
	if len(m.Refs) != 1 || m.Refs[0] != r.op.Ref {
		c.stats.BadMessages++
		return
	}
	theirs := map[string][]byte{}
	var valid []KeyValue
	for _, kv := range m.Records {
		put, err := decodeRecord(kv)
		if err != nil || put.Key.Partition != c.Partition(r.op.Ref) || put.Key.Account != r.op.Ref.Account || put.Key.Profile != r.op.Ref.Profile {
			c.stats.BadMessages++
			continue // isolation: another profile's record never merges here
		}
		theirs[string(kv.Key)] = kv.Value
		valid = append(valid, kv)
	}
	c.rr.repairs += uint64(c.mergeRecords(valid, false))
	mine, err := c.profileRecords(r.op.Ref)
	if err != nil {
		c.stats.StoreErrors++ // the peer is not repaired now; anti-entropy will
	}
	if err == nil {
		var fix []storage.Put
		for _, kv := range encodeRecords(mine) {
			if v, ok := theirs[string(kv.Key)]; !ok || !bytes.Equal(v, kv.Value) {
				put, err := decodeRecord(kv)
				if err == nil {
					fix = append(fix, put)
				}
			}
		}
		if len(fix) > 0 {
			c.rr.repairs += uint64(len(fix))
			c.send(from, Msg{Type: MsgReplicate, Records: encodeRecords(fix)})
		}
	}
	r.got[from] = true
	if m.Handoff {
		// That copy is incomplete: the read also asks every other live
		// owner, so the answer never rests on pulling copies alone.
		for _, o := range c.table.OwnersOf(c.Partition(r.op.Ref)) {
			if o != c.cfg.Self && c.isAlive(o) && !slices.Contains(r.peers, o) {
				r.peers = append(r.peers, o)
				c.send(o, Msg{Type: MsgProfileRecords, ReqID: m.ReqID, Refs: []Ref{r.op.Ref}})
			}
		}
	}
	if len(r.got) < len(r.peers) {
		return
	}
	delete(c.rr.reads, m.ReqID)
	res, _, err := c.run(r.op) // a read: no change
	if err == nil && !c.covers(r.op) {
		res, err = Result{}, errNotSeen(r.op)
	}
	// Held: the answer may reflect records merged just now, not durable
	// here until the next Flush.
	c.answer(r.origin, r.reqID, r.op, res, err, true)
}

// tickQuorumReads answers ErrUnavailable for quorum reads past their
// deadline.
func (c *Core) tickQuorumReads() {
	for _, id := range due(c.rr.reads, func(r *quorumRead) int64 { return r.deadline }, c.nowMs, &c.rr.due) {
		r := c.rr.reads[id]
		delete(c.rr.reads, id)
		c.answer(r.origin, r.reqID, r.op, Result{}, fmt.Errorf("%w: read quorum: %d of %d peers answered in %v", ErrUnavailable, len(r.got), len(r.peers), c.cfg.RequestTimeout), false)
	}
}
