package gossip

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
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
	rec := crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{PositionMs: 5, DurationMs: 100,
		Version: crdt.Version{Epoch: 1, Seq: 7, Session: "s"}}}

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

// TestSubmitAdmitsOnTheOriginClock: the node a device talks to refuses a
// write stamped beyond max_clock_skew of its own clock before routing it
// (the coordinator here is another node, whose clock may be behind), and
// an admitted write's timestamps move its HLC; the HLC of an answered
// cursor moves it too. (These were the production driver's, and never ran
// under the simulator.)
func TestSubmitAdmitsOnTheOriginClock(t *testing.T) {
	ids := []ring.NodeID{"n1", "n2"}
	c, err := NewCore(CoreConfig{Self: "n1", Local: LocalOptions{Partitions: 8}}, storage.NewMem(), replT0)
	if err != nil {
		t.Fatal(err)
	}
	table := ring.NewTable(8, 1, ids)
	c.SetTable(table)
	var ref Ref
	for i := 0; ; i++ {
		ref = Ref{Account: "acct", Profile: fmt.Sprintf("p%d", i)}
		if table.OwnersOf(c.Partition(ref))[0] == "n2" {
			break
		}
	}
	c.Tick(replT0)
	up := func(ahead time.Duration) Op {
		h := crdt.NewHLC(replT0+ahead.Milliseconds(), 0)
		return Op{Kind: OpPut, Ref: ref, Ups: []crdt.Update{{Video: "film", Device: "tv", Session: "s1",
			Epoch: h, Seq: h, PositionMs: 10, DurationMs: 100, State: crdt.StatePlaying}}}
	}
	c.Submit(1, up(time.Hour))
	rd := c.Ready()
	if len(rd.Completions) != 1 || !errors.Is(rd.Completions[0].Err, crdt.ErrClockSkew) {
		t.Fatalf("a write an hour ahead: %+v, want a clock-skew refusal", rd.Completions)
	}
	if len(rd.Messages) != 0 {
		t.Fatalf("a refused write was forwarded: %+v", rd.Messages)
	}
	if got := c.Clock().Last(); got.Physical() >= replT0+time.Minute.Milliseconds() {
		t.Fatalf("a refused write moved the HLC to %v", got.Time())
	}
	c.Submit(2, up(30*time.Second))
	rd = c.Ready()
	if len(rd.Completions) != 0 || len(rd.Messages) != 1 || rd.Messages[0].Msg.Type != MsgForward {
		t.Fatalf("a write 30 s ahead: %+v, want it forwarded to its coordinator", rd)
	}
	if got := c.Clock().Last(); got.Physical() < replT0+30_000 {
		t.Fatalf("the admitted write's timestamps were not observed: HLC at %v", got.Time())
	}
	// The answer's cursor carries the coordinator's HLC: observed.
	later := crdt.NewHLC(replT0+50_000, 3)
	c.Step("n2", Msg{Type: MsgResult, ReqID: 2, Result: &Result{Writes: []WriteResult{{Applied: true,
		Cursor: crdt.Cursor{UpdatedHLC: later}}}}})
	if rd = c.Ready(); len(rd.Completions) != 1 || rd.Completions[0].Err != nil {
		t.Fatalf("answer: %+v", rd.Completions)
	}
	if got := c.Clock().Last(); got < later {
		t.Fatalf("the answered cursor's HLC %v was not observed (HLC %v)", later, got)
	}
}

// writeFailStore fails the next fail Writes, writing nothing.
type writeFailStore struct {
	*storage.Mem
	fail int
}

func (s *writeFailStore) Write(puts []storage.Put, deletes []storage.Key) error {
	if s.fail > 0 {
		s.fail--
		return errors.New("disk full")
	}
	return s.Mem.Write(puts, deletes)
}

// TestNoAckAfterAMidCycleWriteFailed: a scan in the middle of a cycle
// flushes the overlay first; when that write fails, the records merged
// before it are lost, so the acknowledgements and answers the cycle held
// for them must not go out with the cycle's Flush, even if the Flush itself
// has nothing left to write (found by the simulator's store-errors fault:
// a replica acknowledged a replicated write it never stored).
func TestNoAckAfterAMidCycleWriteFailed(t *testing.T) {
	st := &writeFailStore{Mem: storage.NewMem()}
	c, err := NewCore(CoreConfig{Self: "n2", Local: LocalOptions{Partitions: 4}}, st, replT0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTable(ring.NewTable(4, 2, []ring.NodeID{"n1", "n2"}))
	k := storage.Key{Partition: c.Partition(replRef), Account: replRef.Account, Profile: replRef.Profile, Kind: crdt.KindCursor, ID: "v"}
	rec := crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{PositionMs: 5, DurationMs: 100,
		Version: crdt.Version{Epoch: 1, Seq: 7, Session: "s"}}}
	c.Tick(replT0)
	c.Ready()
	// One cycle: a replicated write, then a pull of its partition (a scan).
	c.Step("n1", Msg{Type: MsgReplicate, ReqID: 42, Records: encodeRecords([]storage.Put{{Key: k, Record: rec}})})
	st.fail = 1
	c.Step("n1", Msg{Type: MsgPull, P: k.Partition})
	if err := c.Flush(); err == nil {
		t.Error("Flush reported success for a cycle whose records were lost")
	}
	for _, e := range c.Ready().Messages {
		if e.Msg.Type == MsgAck && e.Msg.ReqID == 42 {
			t.Fatalf("acknowledged a replicated write that is not stored")
		}
	}
	if _, ok, _ := st.Mem.Get(k); ok {
		t.Fatal("the record is in the store after all; the test proves nothing")
	}
	// The next cycle is clean again.
	c.Step("n1", Msg{Type: MsgReplicate, ReqID: 43, Records: encodeRecords([]storage.Put{{Key: k, Record: rec}})})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	acked := false
	for _, e := range c.Ready().Messages {
		acked = acked || e.Msg.Type == MsgAck && e.Msg.ReqID == 43
	}
	if _, ok, _ := st.Mem.Get(k); !ok || !acked {
		t.Fatalf("after the store recovered: stored %v, acknowledged %v", ok, acked)
	}
}

// TestBucketReplySkipsWhatThePeerSent: the reply of an anti-entropy
// exchange carries this node's records of the buckets except those that
// are here exactly as the peer sent them: a record the peer lacks, and
// one newer here than the peer's copy, go back; an equal one does not.
func TestBucketReplySkipsWhatThePeerSent(t *testing.T) {
	mem := storage.NewMem()
	c, err := NewCore(CoreConfig{Self: "n1", Local: LocalOptions{Partitions: 4}}, mem, replT0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTable(ring.NewTable(4, 2, []ring.NodeID{"n1", "n2"}))
	p := c.Partition(replRef)
	cur := func(video string, seq crdt.HLC) storage.Put {
		return storage.Put{Key: storage.Key{Partition: p, Account: replRef.Account, Profile: replRef.Profile, Kind: crdt.KindCursor, ID: video},
			Record: crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{PositionMs: int64(seq), DurationMs: 100,
				Version: crdt.Version{Epoch: 1, Seq: seq, Session: "s"}}}}
	}
	same, mine, newer := cur("same", 5), cur("mine", 6), cur("newer", 9)
	if err := mem.Write([]storage.Put{same, mine, newer}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.buf.RebuildDigests(4); err != nil {
		t.Fatal(err)
	}
	c.Step("n2", Msg{Type: MsgBuckets, P: p, Buckets: ^uint64(0), Reply: true,
		Records: encodeRecords([]storage.Put{same, cur("newer", 7)})})
	c.Flush()
	var got []string
	for _, e := range c.Ready().Messages {
		if e.Msg.Type == MsgBuckets {
			for _, kv := range e.Msg.Records {
				put, err := decodeRecord(kv)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, put.Key.ID)
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"mine", "newer"}) {
		t.Fatalf("the reply carried %v, want [mine newer]", got)
	}
}

// TestDueFindsEveryExpiredEntry: Tick's scan of requests in flight skips
// the map while the bound says nothing is due, yet never misses an entry:
// each expires at the first tick at or after its deadline, in id order.
func TestDueFindsEveryExpiredEntry(t *testing.T) {
	m := map[uint64]int64{}
	var b dueBound
	add := func(id uint64, d int64) { m[id] = d; b.add(d) }
	dl := func(d int64) int64 { return d }
	add(5, 100)
	add(3, 120)
	add(9, 100)
	if got := due(m, dl, 99, &b); len(got) != 0 {
		t.Fatalf("at 99: %v due", got)
	}
	if got := due(m, dl, 100, &b); !slices.Equal(got, []uint64{5, 9}) {
		t.Fatalf("at 100: %v, want [5 9]", got)
	}
	delete(m, 5)
	delete(m, 9)
	add(1, 110) // earlier than what the scan left (120)
	if got := due(m, dl, 110, &b); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("at 110: %v, want [1]", got)
	}
	delete(m, 1)
	if got := due(m, dl, 130, &b); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("at 130: %v, want [3]", got)
	}
	delete(m, 3)
	if got := due(m, dl, 1_000, &b); len(got) != 0 || b != 0 {
		t.Fatalf("empty map: %v due, bound %d", got, b)
	}
}
