package gossip

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// getFailStore fails every Get while failing is set.
type getFailStore struct {
	*storage.Mem
	failing bool
}

func (s *getFailStore) Get(k storage.Key) (crdt.Record, bool, error) {
	if s.failing {
		return crdt.Record{}, false, errors.New("disk on fire")
	}
	return s.Mem.Get(k)
}

func (s *getFailStore) ScanPartition(p uint16, fn func(storage.Key, crdt.Record) error) error {
	if s.failing {
		return errors.New("disk on fire")
	}
	return s.Mem.ScanPartition(p, fn)
}

// TestCoreStoreErrorsAreNotDropped: a record from a peer that cannot be
// merged because the store failed is counted, not taken as merged; digests
// that a failed read left unknown are not sent to peers until they are
// rebuilt, and the rebuild matches the store.
func TestCoreStoreErrorsAreNotDropped(t *testing.T) {
	st := &getFailStore{Mem: storage.NewMem()}
	ids := []ring.NodeID{"n1", "n2"}
	c, err := NewCore(CoreConfig{Self: "n1", Local: LocalOptions{Partitions: 4}}, st, replT0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTable(ring.NewTable(4, 2, ids))
	k := storage.Key{Partition: c.Partition(replRef), Account: replRef.Account, Profile: replRef.Profile, Kind: crdt.KindCursor, ID: "v"}
	// A write of now: the retention sweep, which runs in the Ticks below,
	// keeps it.
	rec := crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{PositionMs: 5, DurationMs: 100,
		Version: crdt.Version{Epoch: crdt.NewHLC(replT0, 0), Seq: crdt.NewHLC(replT0, 7), Session: "s"}}}

	st.failing = true
	if c.mergeOne(storage.Put{Key: k, Record: rec}, false) {
		t.Fatal("mergeOne reported a merge although the store read failed")
	}
	if got := c.Stats().StoreErrors; got != 1 {
		t.Fatalf("StoreErrors = %d, want 1", got)
	}
	// A write whose old record cannot be read leaves the digests unknown.
	c.buf.Write([]storage.Put{{Key: k, Record: rec}}, nil)
	if !c.buf.Stale {
		t.Fatal("digests not marked stale after a failed read")
	}
	c.Tick(replT0 + time.Hour.Milliseconds())
	for _, e := range c.ready.Messages {
		if e.Msg.Type == MsgDigest {
			t.Fatalf("sent a digest while the digests were stale: %+v", e)
		}
	}
	st.failing = false
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Tick(replT0 + 2*time.Hour.Milliseconds())
	if c.buf.Stale {
		t.Fatal("digests still stale after the store recovered")
	}
	want := *c.buf.Digest(k.Partition)
	if err := c.buf.RebuildDigests(4); err != nil {
		t.Fatal(err)
	}
	if *c.buf.Digest(k.Partition) != want || want == ([DigestBuckets]uint64{}) {
		t.Fatal("digest after recovery does not match the store")
	}
}

func TestFrameRoundTrip(t *testing.T) {
	cur := crdt.Cursor{Video: "film", PositionMs: 5, DurationMs: 10, Version: crdt.Version{Epoch: 1, Seq: 2, Session: "s"}}
	kv := encodeRecords([]storage.Put{{Key: storage.Key{Partition: 3, Account: "a", Profile: "p", Kind: crdt.KindCursor, ID: "film"},
		Record: crdt.Record{Kind: crdt.KindCursor, Cursor: cur}}})
	msgs := []Msg{
		{Type: MsgForward, ReqID: 7, Origin: "n1", Op: &Op{Kind: OpPut, Ref: Ref{"a", "p"}, Ups: []crdt.Update{{Video: "film", PositionMs: 5, DurationMs: 10}}}},
		{Type: MsgResult, ReqID: 7, Result: &Result{Cursors: []crdt.Cursor{cur}, Videos: []string{"film"}}},
		{Type: MsgReplicate, ReqID: 9, Records: kv},
		{Type: MsgDigest, P: 3, Digest: make([]uint64, DigestBuckets)},
		{Type: MsgEvents, Events: []Event{{Ref: Ref{"a", "p"}, Type: EventCursor, Cursor: cur, Video: "film"}}},
		{Type: MsgResult, ReqID: 8, ErrCode: "not_found"},
		{Type: MsgInterest, Refs: []Ref{{"a", "p"}}, LeaseMs: 10_000, Marks: []InterestMark{{Since: 5, Sum: 1 << 63}}},
	}
	b, err := EncodeFrame(msgs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, msgs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, msgs)
	}
	put, err := decodeRecord(got[2].Records[0])
	if err != nil || put.Record.Cursor != cur {
		t.Fatalf("record: %+v %v", put.Record.Cursor, err)
	}
	if !errors.Is(codeToErr(got[5].ErrCode, ""), ErrNotFound) {
		t.Fatal("error code lost")
	}
	for _, bad := range [][]byte{nil, []byte("xx"), append([]byte{'p', 'h', 'f', 9}, b[4:]...), b[:len(b)-1], append(b, 0)} {
		if _, err := DecodeFrame(bad); !errors.Is(err, ErrBadFrame) {
			t.Errorf("DecodeFrame(%x…) = %v, want ErrBadFrame", bad[:min(len(bad), 8)], err)
		}
	}
}

// FuzzDecodeFrame: peer bytes never panic the decoder; what decodes
// re-encodes and decodes to the same messages.
func FuzzDecodeFrame(f *testing.F) {
	b, _ := EncodeFrame([]Msg{{Type: MsgDigest, P: 1, Digest: make([]uint64, DigestBuckets)}})
	f.Add(b)
	b, _ = EncodeFrame([]Msg{{Type: MsgForward, ReqID: 1, Origin: "n", Op: &Op{Kind: OpCursor, Ref: Ref{"a", "p"}, Video: "v"}}})
	f.Add(b)
	f.Add([]byte{'p', 'h', 'f', 1, 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := DecodeFrame(b)
		if err != nil {
			return
		}
		enc, err := EncodeFrame(msgs)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		again, err := DecodeFrame(enc)
		if err != nil || len(again) != len(msgs) {
			t.Fatalf("re-decoding: %d messages, %v", len(again), err)
		}
	})
}

// A one-node Core acknowledges alone and answers only after its flush.
func TestCoreAnswersAfterFlush(t *testing.T) {
	mem := storage.NewMem(storage.WithDeferredSync())
	c, err := NewCore(CoreConfig{Self: "n1", Local: LocalOptions{Partitions: 8}}, mem, 1_800_000_000_000)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTable(ring.NewTable(8, 3, []ring.NodeID{"n1"}))
	c.Submit(1, Op{Kind: OpPut, Ref: Ref{"a", "p"}, Ups: []crdt.Update{{Video: "v", Device: "d", Session: "s", PositionMs: 1, DurationMs: 100_000, State: crdt.StatePlaying}}})
	if rd := c.Ready(); len(rd.Completions) != 0 {
		t.Fatalf("answered before the flush: %+v", rd.Completions)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if len(rd.Completions) != 1 || rd.Completions[0].Err != nil || !rd.Completions[0].Res.Writes[0].Applied {
		t.Fatalf("after flush: %+v", rd.Completions)
	}
	if len(rd.Events) != 1 || rd.Events[0].Type != EventCursor {
		t.Fatalf("events: %+v", rd.Events)
	}
	if c.Stats().Flushes != 1 {
		t.Fatalf("flushes: %d", c.Stats().Flushes)
	}
}

// Many requests in one cycle share one durable write (group commit).
func TestCoreGroupsACycleIntoOneWrite(t *testing.T) {
	mem := storage.NewMem()
	c, _ := NewCore(CoreConfig{Self: "n1", Local: LocalOptions{Partitions: 8}}, mem, 1_800_000_000_000)
	c.SetTable(ring.NewTable(8, 3, []ring.NodeID{"n1"}))
	for i := range 50 {
		c.Submit(uint64(i+1), Op{Kind: OpPut, Ref: Ref{"a", fmt.Sprint("p", i)}, Ups: []crdt.Update{{Video: "v", Device: "d", Session: "s", PositionMs: 1, DurationMs: 100_000, State: crdt.StatePlaying}}})
	}
	c.Flush()
	if n := len(c.Ready().Completions); n != 50 {
		t.Fatalf("%d answers", n)
	}
	if f := c.Stats().Flushes; f != 1 {
		t.Fatalf("%d durable writes for one cycle, want 1", f)
	}
}
