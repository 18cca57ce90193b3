package gossip

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// noRepairCfg turns off every other repair (hints, anti-entropy), so what
// a test sees repaired was repaired by the read.
var noRepairCfg = CoreConfig{MaxHints: -1, AEInterval: time.Hour, HintInterval: time.Hour, RequestTimeout: 500 * time.Millisecond}

// writeMissing writes pos through the coordinator with owner miss cut off;
// it returns once the write is acknowledged by the other two.
func (n *replNet) writeMissing(miss ring.NodeID, pos int64) {
	n.t.Helper()
	co := n.owners[0]
	n.cores[co].Submit(100, replPut(pos))
	n.cycle(co)
	n.take(is(MsgReplicate, co, miss))
	for _, o := range n.owners[1:] {
		if o == miss {
			continue
		}
		n.deliver(n.take(is(MsgReplicate, co, o)))
		n.cycle(o)
		n.deliver(n.take(is(MsgAck, o, co)))
	}
	n.cycle(co)
	if got := n.done[co]; len(got) != 1 || got[0].Err != nil {
		n.t.Fatalf("write with %s cut off: %+v", miss, got)
	}
	n.done[co] = nil
	n.inbox = nil
}

// replRead reads on the node it is submitted to (Local), as an owner-side
// read: reads without Local go to the partition coordinator.
func replRead(q int) Op {
	return Op{Kind: OpCursor, Ref: replRef, Video: "film", ReadQuorum: q, Local: true}
}

func (n *replNet) encoded(id ring.NodeID) []byte {
	n.t.Helper()
	rec, ok := n.stored(id)
	if !ok {
		return nil
	}
	b, err := storage.EncodeValue(rec)
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// A stale owner asked for a quorum-2 read fetches the other owner's copy,
// answers from the merge, and keeps the merge (it is repaired); the read
// with quorum 1 before it shows the owner really was stale.
func TestQuorumReadRepairsTheReader(t *testing.T) {
	n := newReplNet(t, noRepairCfg)
	co, o3 := n.owners[0], n.owners[2]
	n.writeMissing(o3, 60_000)
	n.cores[o3].Submit(1, replRead(1))
	n.cycle(o3)
	if got := n.done[o3]; len(got) != 1 || got[0].Err != nil || got[0].Res.Found {
		t.Fatalf("quorum-1 read on the stale owner: %+v", got)
	}
	n.done[o3] = nil

	n.cores[o3].Submit(2, replRead(2))
	n.cycle(o3)
	if len(n.done[o3]) != 0 {
		t.Fatalf("quorum-2 read answered from one copy: %+v", n.done[o3])
	}
	asks := n.take(func(e replEnv) bool { return e.msg.Type == MsgProfileRecords })
	if len(asks) != 1 || asks[0].to != co {
		t.Fatalf("asks: %+v, want one to %s", asks, co)
	}
	n.deliver(asks)
	n.cycle(co)
	replies := n.take(is(MsgProfileRecordsReply, co, o3))
	if len(replies) != 1 || len(replies[0].msg.Records) == 0 {
		t.Fatalf("replies: %+v", replies)
	}
	n.deliver(replies)
	n.deliver(replies) // a duplicate changes nothing
	// The answer waits for the Flush that makes the repair durable.
	if rd := n.cores[o3].Ready(); len(rd.Completions) != 0 {
		t.Fatalf("answered before the repair was durable: %+v", rd.Completions)
	}
	n.cycle(o3)
	got := n.done[o3]
	if len(got) != 1 || got[0].ID != 2 || got[0].Err != nil || !got[0].Res.Found || got[0].Res.Cursor.PositionMs != 60_000 {
		t.Fatalf("quorum-2 read: %+v", got)
	}
	if !slices.Equal(n.encoded(o3), n.encoded(co)) {
		t.Fatal("reader not repaired: its stored record differs from the coordinator's")
	}
	if r := n.take(is(MsgReplicate, o3, co)); len(r) != 0 {
		t.Fatalf("repair sent to a peer that was not stale: %+v", r)
	}
	if n.cores[o3].ReadRepairs() == 0 {
		t.Fatal("no repair counted")
	}
}

// A quorum-2 read whose peer is the stale owner sends the peer the
// records it lacks; once merged there, the copies are equal byte for byte.
func TestQuorumReadRepairsThePeer(t *testing.T) {
	n := newReplNet(t, noRepairCfg)
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.writeMissing(o3, 60_000)
	n.cores[co].SetAlive(o2, false) // so co asks o3
	n.cores[co].Submit(1, replRead(2))
	n.cycle(co)
	asks := n.take(func(e replEnv) bool { return e.msg.Type == MsgProfileRecords })
	if len(asks) != 1 || asks[0].to != o3 {
		t.Fatalf("asks: %+v, want one to %s", asks, o3)
	}
	n.deliver(asks)
	n.cycle(o3)
	n.deliver(n.take(is(MsgProfileRecordsReply, o3, co)))
	n.cycle(co)
	got := n.done[co]
	if len(got) != 1 || got[0].Err != nil || got[0].Res.Cursor.PositionMs != 60_000 {
		t.Fatalf("quorum-2 read: %+v", got)
	}
	fix := n.take(is(MsgReplicate, co, o3))
	if len(fix) != 1 {
		t.Fatalf("%d repairs to the stale peer, want 1", len(fix))
	}
	n.deliver(fix)
	n.cycle(o3)
	if b := n.encoded(o3); b == nil || !slices.Equal(b, n.encoded(co)) {
		t.Fatal("peer not repaired")
	}
}

// Without the peer's answer a quorum-2 read is ErrUnavailable at
// RequestTimeout, not before; with no other owner alive, at once.
func TestQuorumReadTimesOut(t *testing.T) {
	n := newReplNet(t, noRepairCfg)
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.cores[co].Submit(1, replRead(2))
	n.cycle(co)
	n.inbox = nil
	n.now += 499
	n.cores[co].Tick(n.now)
	n.cycle(co)
	if len(n.done[co]) != 0 {
		t.Fatal("answered before the timeout")
	}
	n.now++
	n.cores[co].Tick(n.now)
	n.cycle(co)
	if got := n.done[co]; len(got) != 1 || !errors.Is(got[0].Err, ErrUnavailable) {
		t.Fatalf("after the timeout: %+v", got)
	}
	// A late reply is ignored.
	n.cores[co].Step(o2, Msg{Type: MsgProfileRecordsReply, ReqID: 1, Refs: []Ref{replRef}})
	n.cycle(co)
	if len(n.done[co]) != 1 {
		t.Fatalf("late reply answered again: %+v", n.done[co])
	}
	n.done[co] = nil
	n.cores[co].SetAlive(o2, false)
	n.cores[co].SetAlive(o3, false)
	n.cores[co].Submit(2, replRead(2))
	n.cycle(co)
	if got := n.done[co]; len(got) != 1 || !errors.Is(got[0].Err, ErrUnavailable) {
		t.Fatalf("quorum 2 with one live owner: %+v", got)
	}
}

// Isolation: a reply carrying another profile's record merges nothing of
// it.
func TestQuorumReadRefusesForeignRecords(t *testing.T) {
	n := newReplNet(t, noRepairCfg)
	co, o2 := n.owners[0], n.owners[1]
	n.cores[co].Submit(1, replRead(2))
	n.cycle(co)
	asks := n.take(is(MsgProfileRecords, co, o2))
	if len(asks) != 1 {
		t.Fatalf("asks: %+v", asks)
	}
	other := storage.Key{Partition: n.cores[co].Partition(replRef), Account: "acct", Profile: "someone-else", Kind: crdt.KindCursor, ID: "film"}
	cur := crdt.Cursor{PositionMs: 5, DurationMs: 3_600_000, State: crdt.StatePlaying,
		Version: crdt.Version{Epoch: 1, Seq: 1, Session: "x"}}
	kvs := encodeRecords([]storage.Put{{Key: other, Record: crdt.Record{Kind: crdt.KindCursor, Cursor: cur}}})
	n.cores[co].Step(o2, Msg{Type: MsgProfileRecordsReply, ReqID: asks[0].msg.ReqID, Refs: []Ref{replRef}, Records: kvs})
	n.cycle(co)
	if _, ok, _ := n.mems[co].Get(other); ok {
		t.Fatal("another profile's record merged by a read reply")
	}
	if n.cores[co].Stats().BadMessages == 0 {
		t.Fatal("foreign record not counted as bad")
	}
	if got := n.done[co]; len(got) != 1 || got[0].Err != nil || got[0].Res.Found {
		t.Fatalf("read: %+v", got)
	}
}

// An owner still pulling its partition (it just gained it: added, or back
// after the ring dropped it) is not a replica yet: a read there asks every
// live owner, even at quorum 1, and answers from the merge (found by the
// rejoin process test: two restarted seeds, both pulling, answered a read
// with their old copies).
func TestReadOnAPullingOwnerAsksEveryOwner(t *testing.T) {
	n := newReplNet(t, noRepairCfg)
	o3 := n.owners[2]
	n.writeMissing(o3, 60_000)
	c3 := n.cores[o3]
	c3.handoff[c3.Partition(replRef)] = []ring.NodeID{"gone"}
	c3.Submit(1, replRead(1))
	n.cycle(o3)
	if len(n.done[o3]) != 0 {
		t.Fatalf("a pulling owner answered from its own copy: %+v", n.done[o3])
	}
	asks := n.take(func(e replEnv) bool { return e.msg.Type == MsgProfileRecords })
	if len(asks) != 2 {
		t.Fatalf("asks: %+v, want one to each other owner", asks)
	}
	n.deliver(asks)
	for _, o := range n.owners[:2] {
		n.cycle(o)
		n.deliver(n.take(is(MsgProfileRecordsReply, o, o3)))
	}
	n.cycle(o3)
	got := n.done[o3]
	if len(got) != 1 || got[0].Err != nil || got[0].Res.Cursor.PositionMs != 60_000 {
		t.Fatalf("read on a pulling owner: %+v", got)
	}
}

// A quorum-2 read whose peer answers that it is still pulling the
// partition asks the remaining owners before it answers.
func TestQuorumReadPastAPullingPeer(t *testing.T) {
	n := newReplNet(t, noRepairCfg)
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	c2 := n.cores[o2]
	c2.handoff[c2.Partition(replRef)] = []ring.NodeID{"gone"}
	n.cores[co].Submit(1, replRead(2))
	n.cycle(co)
	n.deliver(n.take(is(MsgProfileRecords, co, o2)))
	n.cycle(o2)
	reply := n.take(is(MsgProfileRecordsReply, o2, co))
	if len(reply) != 1 || !reply[0].msg.Handoff {
		t.Fatalf("a pulling owner's reply does not say so: %+v", reply)
	}
	n.deliver(reply)
	n.cycle(co)
	if len(n.done[co]) != 0 {
		t.Fatalf("answered with a pulling copy counted as the second: %+v", n.done[co])
	}
	asks := n.take(is(MsgProfileRecords, co, o3))
	if len(asks) != 1 {
		t.Fatalf("the third owner was not asked: %+v", asks)
	}
	n.deliver(asks)
	n.cycle(o3)
	n.deliver(n.take(is(MsgProfileRecordsReply, o3, co)))
	n.cycle(co)
	if got := n.done[co]; len(got) != 1 || got[0].Err != nil {
		t.Fatalf("read: %+v", got)
	}
}
