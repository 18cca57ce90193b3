package gossip

import (
	"testing"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// No message from a peer may crash a node, whatever the node's ring
// state. FuzzCoreStep decodes a frame as a peer would send it and steps
// every message into a Core in one of these states, then runs a cycle.
const (
	stepNoRing       = iota // just restarted: no ring known yet
	stepOwner               // in the ring, owning partitions
	stepNotInRing           // the ring does not include this node
	stepAllPeersDown        // in the ring, every peer believed dead
	stepHandoff             // just joined: pulling partitions from old owners
	stepStates
)

func stepCore(t *testing.T, state uint8) *Core {
	c, err := NewCore(CoreConfig{Self: "n1", Local: LocalOptions{Partitions: 16}}, storage.NewMem(), replT0)
	if err != nil {
		t.Fatal(err)
	}
	switch state % stepStates {
	case stepOwner:
		c.SetTable(ring.NewTable(16, 3, []ring.NodeID{"n1", "n2", "n3"}))
	case stepNotInRing:
		c.SetTable(ring.NewTable(16, 3, []ring.NodeID{"n2", "n3", "n4"}))
	case stepAllPeersDown:
		c.SetTable(ring.NewTable(16, 3, []ring.NodeID{"n1", "n2", "n3"}))
		c.SetAlive("n2", false)
		c.SetAlive("n3", false)
	case stepHandoff:
		old := ring.NewTable(16, 2, []ring.NodeID{"n2", "n3"})
		c.SetTable(old)
		c.SetTable(ring.Rebalance(old, []ring.NodeID{"n1", "n2", "n3"}))
	}
	return c
}

func stepSeeds() [][]byte {
	cur := crdt.Cursor{PositionMs: 5, DurationMs: 10, Version: crdt.Version{Epoch: 1, Seq: 2, Session: "s"}}
	kv := encodeRecords([]storage.Put{{Key: storage.Key{Partition: 3, Account: "a", Profile: "p", Kind: crdt.KindCursor, ID: "film"},
		Record: crdt.Record{Kind: crdt.KindCursor, Cursor: cur}}})
	ref := Ref{"a", "p"}
	up := []crdt.Update{{Video: "film", Session: "s", PositionMs: 5, DurationMs: 10}}
	var out [][]byte
	for _, msgs := range [][]Msg{
		{{Type: MsgForward, ReqID: 1, Origin: "n2", Op: &Op{Kind: OpPut, Ref: ref, Ups: up}}},
		{{Type: MsgForward, ReqID: 2, Origin: "n2", Exec: true, Op: &Op{Kind: OpPut, Ref: ref, Ups: up}}},
		{{Type: MsgForward, ReqID: 3, Origin: "n9", Exec: true, Op: &Op{Kind: OpCursors, Ref: ref, ReadQuorum: 3}}},
		{{Type: MsgForward, ReqID: 4, Origin: "n2", Exec: true, Op: &Op{Kind: OpDeleteAll, Ref: ref}}},
		{{Type: MsgResult, ReqID: 7, Result: &Result{Cursors: []crdt.Cursor{cur}, Videos: []string{"film"}}}},
		{{Type: MsgReplicate, ReqID: 9, Records: kv}, {Type: MsgAck, ReqID: 9}},
		{{Type: MsgDigest, P: 3, Digest: make([]uint64, DigestBuckets)}, {Type: MsgDigest, P: 999, Digest: []uint64{1}}},
		{{Type: MsgBuckets, P: 3, Buckets: 1, Reply: true, Records: kv}, {Type: MsgPull, P: 40000}},
		{{Type: MsgInterest, Refs: []Ref{ref}, LeaseMs: 10_000, Marks: []InterestMark{{Since: 5, Sum: 1}}}},
		{{Type: MsgEvents, Refs: []Ref{ref}, Marks: []InterestMark{{}}, Events: []Event{{Ref: ref, Type: EventCursor, Cursor: cur, Video: "film"}}}},
		{{Type: MsgProfileRecords, ReqID: 5, Refs: []Ref{ref}}, {Type: MsgProfileRecords, ReqID: 6}},
		{{Type: MsgProfileRecordsReply, ReqID: 5, Refs: []Ref{ref}, Records: kv}, {Type: MsgProfileRecordsReply, ReqID: 5}},
		{{Type: 200}},
	} {
		b, err := EncodeFrame(msgs)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzCoreStep(f *testing.F) {
	for _, b := range stepSeeds() {
		for s := range uint8(stepStates) {
			f.Add(s, uint8(0), b)
		}
	}
	f.Fuzz(func(t *testing.T, state, from uint8, frame []byte) {
		msgs, err := DecodeFrame(frame)
		if err != nil {
			return
		}
		c := stepCore(t, state)
		peers := []ring.NodeID{"n2", "n3", "n4", "unknown", "", "n1"}
		now := int64(replT0)
		for i, m := range msgs {
			c.Step(peers[(int(from)+i)%len(peers)], m)
			if i%2 == 1 {
				now += 700
				c.Tick(now)
			}
		}
		c.Submit(1, Op{Kind: OpCursor, Ref: Ref{"a", "p"}, Video: "film"})
		for range 5 {
			now += 1000
			c.Tick(now)
			c.Flush()
			c.Ready()
		}
	})
}

// TestForwardedBeforeTheRingIsKnown: a request a peer forwards to a node
// that has no ring yet (it just restarted) is answered unavailable; it
// used to panic in OwnersOf.
func TestForwardedBeforeTheRingIsKnown(t *testing.T) {
	c := stepCore(t, stepNoRing)
	up := []crdt.Update{{Video: "film", Session: "s", PositionMs: 5, DurationMs: 10}}
	for i, exec := range []bool{false, true} {
		c.Step("n2", Msg{Type: MsgForward, ReqID: uint64(7 + i), Origin: "n2", Exec: exec, Op: &Op{Kind: OpPut, Ref: Ref{"a", "p"}, Ups: up}})
		c.Flush()
		rd := c.Ready()
		if len(rd.Messages) != 1 || rd.Messages[0].Msg.Type != MsgResult || rd.Messages[0].Msg.ErrCode == "" {
			t.Fatalf("exec=%v: want one error result to n2, got %+v", exec, rd.Messages)
		}
	}
}
