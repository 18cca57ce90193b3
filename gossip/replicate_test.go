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

// Unit tests of the Core's replication rules, driven by hand: every
// message is delivered (or dropped) explicitly and every Flush — the
// durable write — is called explicitly, so each test states exactly which
// owner has what durable when.

const replT0 = 1_800_000_000_000

// replNet is three Cores and the messages they sent, not yet delivered.
type replNet struct {
	t      *testing.T
	now    int64
	cores  map[ring.NodeID]*Core
	mems   map[ring.NodeID]*storage.Mem
	owners []ring.NodeID // owners of the test profile's partition, in order
	inbox  []replEnv
	done   map[ring.NodeID][]Completion
}

type replEnv struct {
	from, to ring.NodeID
	msg      Msg
}

var replRef = Ref{Account: "acct", Profile: "prof"}

func newReplNet(t *testing.T, cfg CoreConfig) *replNet {
	t.Helper()
	n := &replNet{t: t, now: replT0, cores: map[ring.NodeID]*Core{}, mems: map[ring.NodeID]*storage.Mem{}, done: map[ring.NodeID][]Completion{}}
	ids := []ring.NodeID{"n1", "n2", "n3"}
	table := ring.NewTable(8, 3, ids)
	for _, id := range ids {
		c := cfg
		c.Self = id
		c.Local.Partitions = 8
		mem := storage.NewMem()
		core, err := NewCore(c, mem, n.now)
		if err != nil {
			t.Fatal(err)
		}
		core.SetTable(table)
		n.cores[id], n.mems[id] = core, mem
	}
	n.owners = table.OwnersOf(n.cores["n1"].Partition(replRef))
	return n
}

// cycle is one driver cycle of node id: the durable write, then Ready.
func (n *replNet) cycle(id ring.NodeID) {
	n.t.Helper()
	c := n.cores[id]
	if err := c.Flush(); err != nil {
		n.t.Fatal(err)
	}
	rd := c.Ready()
	for _, e := range rd.Messages {
		n.inbox = append(n.inbox, replEnv{from: id, to: e.To, msg: e.Msg})
	}
	n.done[id] = append(n.done[id], rd.Completions...)
}

// take removes and returns the undelivered messages matching keep.
func (n *replNet) take(keep func(replEnv) bool) []replEnv {
	var got, rest []replEnv
	for _, e := range n.inbox {
		if keep(e) {
			got = append(got, e)
		} else {
			rest = append(rest, e)
		}
	}
	n.inbox = rest
	return got
}

func (n *replNet) deliver(es []replEnv) {
	for _, e := range es {
		n.cores[e.to].Step(e.from, e.msg)
	}
}

func is(t MsgType, from, to ring.NodeID) func(replEnv) bool {
	return func(e replEnv) bool { return e.msg.Type == t && e.from == from && e.to == to }
}

func (n *replNet) tick(ms int64) {
	n.now += ms
	for _, id := range []ring.NodeID{"n1", "n2", "n3"} {
		n.cores[id].Tick(n.now)
		n.cycle(id)
	}
}

func replPut(pos int64) Op {
	return Op{Kind: OpPut, Ref: replRef, Ups: []crdt.Update{{Video: "film", Device: "tv", Session: "s1",
		PositionMs: pos, DurationMs: 3_600_000, State: crdt.StatePlaying}}}
}

func (n *replNet) stored(id ring.NodeID) (crdt.Record, bool) {
	n.t.Helper()
	k := storage.Key{Partition: n.cores[id].Partition(replRef), Account: replRef.Account, Profile: replRef.Profile,
		Kind: crdt.KindCursor, ID: "film"}
	rec, ok, err := n.mems[id].Get(k)
	if err != nil {
		n.t.Fatal(err)
	}
	return rec, ok
}

// Quorum counting: a write is answered only when WriteQuorum distinct
// owners have it durable — the coordinator's own copy counts only after
// its Flush, a replica's only after the replica's Flush, and a duplicated
// ack or an ack from a non-owner counts nothing.
func TestCoreQuorumAnswersAfterTwoDurableCopies(t *testing.T) {
	n := newReplNet(t, CoreConfig{})
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.cores[co].Submit(1, replPut(60_000))
	// Take the replicate messages without the coordinator's Flush: its own
	// copy is not durable yet.
	rd := n.cores[co].Ready()
	for _, e := range rd.Messages {
		n.inbox = append(n.inbox, replEnv{from: co, to: e.To, msg: e.Msg})
	}
	if len(rd.Completions) != 0 {
		t.Fatalf("answered at once: %+v", rd.Completions)
	}
	reps := n.take(func(e replEnv) bool { return e.msg.Type == MsgReplicate })
	if len(reps) != 2 {
		t.Fatalf("%d replicate messages, want one per other owner", len(reps))
	}
	n.deliver(reps)
	// o2 merged but has not flushed: no ack may leave it.
	if rd := n.cores[o2].Ready(); len(rd.Messages) != 0 {
		t.Fatalf("replica acked before its flush: %+v", rd.Messages)
	}
	if _, ok := n.stored(o2); ok {
		t.Fatal("replica wrote to its store before Flush")
	}
	n.cycle(o2)
	if _, ok := n.stored(o2); !ok {
		t.Fatal("replica's Flush did not persist the record")
	}
	acks := n.take(is(MsgAck, o2, co))
	if len(acks) != 1 {
		t.Fatalf("%d acks from %s after its flush, want 1", len(acks), o2)
	}
	// The same ack twice, plus a forged ack from a non-owner id: still
	// one owner of two.
	n.deliver(acks)
	n.deliver(acks)
	n.cores[co].Step("intruder", acks[0].msg)
	if rd := n.cores[co].Ready(); len(rd.Completions) != 0 {
		t.Fatalf("answered with one durable owner: %+v", rd.Completions)
	}
	// The coordinator's Flush makes its own copy durable: two of three.
	n.cycle(co)
	got := n.done[co]
	if len(got) != 1 || got[0].ID != 1 || got[0].Err != nil {
		t.Fatalf("completions after the quorum: %+v", got)
	}
	if w := got[0].Res.Writes; len(w) != 1 || !w[0].Applied || w[0].Cursor.PositionMs != 60_000 {
		t.Fatalf("write result: %+v", w)
	}
	// o3 acks late: nothing more is answered, and the write is forgotten.
	n.cycle(o3)
	n.deliver(n.take(is(MsgAck, o3, co)))
	n.cycle(co)
	if len(n.done[co]) != 1 {
		t.Fatalf("answered twice: %+v", n.done[co])
	}
	if len(n.cores[co].writes) != 0 {
		t.Fatalf("write still tracked after every owner acked: %d", len(n.cores[co].writes))
	}
	if n.cores[co].HintsFor(o3) != 0 {
		t.Fatal("hint stored for an owner that acked")
	}
}

// Timeouts: without a second durable owner the write is answered
// ErrUnavailable exactly at RequestTimeout, not before; the owners that
// did not ack get hints.
func TestCoreWriteTimesOutWithoutQuorum(t *testing.T) {
	n := newReplNet(t, CoreConfig{RequestTimeout: 500 * time.Millisecond, HintInterval: time.Hour, AEInterval: time.Hour})
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.cores[co].Submit(1, replPut(60_000))
	n.cycle(co)
	lost := n.take(func(replEnv) bool { return true }) // both replicas unreachable
	if len(lost) != 2 || len(lost[0].msg.Records) == 0 {
		t.Fatalf("replicate messages: %+v", lost)
	}
	nrec := len(lost[0].msg.Records) // the cursor and the history entry
	n.now += 499
	n.cores[co].Tick(n.now)
	n.cycle(co)
	if len(n.done[co]) != 0 {
		t.Fatalf("answered before the timeout: %+v", n.done[co])
	}
	n.now++
	n.cores[co].Tick(n.now)
	n.cycle(co)
	got := n.done[co]
	if len(got) != 1 || !errors.Is(got[0].Err, ErrUnavailable) {
		t.Fatalf("after the timeout: %+v", got)
	}
	if s := n.cores[co].Stats(); s.QuorumFailures != 1 {
		t.Fatalf("QuorumFailures = %d", s.QuorumFailures)
	}
	if n.cores[co].HintsFor(o2) != nrec || n.cores[co].HintsFor(o3) != nrec {
		t.Fatalf("hints: %s=%d %s=%d, want %d each", o2, n.cores[co].HintsFor(o2), o3, n.cores[co].HintsFor(o3), nrec)
	}
	// A late ack after the answer changes nothing.
	n.cores[co].Step(o2, Msg{Type: MsgAck, ReqID: 1})
	n.cycle(co)
	if len(n.done[co]) != 1 {
		t.Fatalf("answered again after the timeout: %+v", n.done[co])
	}
}

// A forwarded request whose coordinator never answers times out at the
// origin after RequestTimeout.
func TestCoreForwardTimesOut(t *testing.T) {
	n := newReplNet(t, CoreConfig{RequestTimeout: 300 * time.Millisecond, HintInterval: time.Hour, AEInterval: time.Hour})
	var other ring.NodeID
	for _, id := range []ring.NodeID{"n1", "n2", "n3"} {
		if id != n.owners[0] {
			other = id
			break
		}
	}
	n.cores[other].Submit(9, replPut(1_000_000))
	n.cycle(other)
	if fw := n.take(is(MsgForward, other, n.owners[0])); len(fw) != 1 {
		t.Fatalf("%d forwards to the coordinator, want 1", len(fw))
	}
	n.now += 299
	n.cores[other].Tick(n.now)
	n.cycle(other)
	if len(n.done[other]) != 0 {
		t.Fatal("forward answered before its timeout")
	}
	n.now++
	n.cores[other].Tick(n.now)
	n.cycle(other)
	if got := n.done[other]; len(got) != 1 || got[0].ID != 9 || !errors.Is(got[0].Err, ErrUnavailable) {
		t.Fatalf("forward after timeout: %+v", got)
	}
	// The coordinator's answer arriving late is ignored.
	n.cores[other].Step(n.owners[0], Msg{Type: MsgResult, ReqID: 9, Result: &Result{}})
	n.cycle(other)
	if len(n.done[other]) != 1 {
		t.Fatalf("late answer completed the request again: %+v", n.done[other])
	}
}

// Hint replay: an owner that missed a write gets it replayed every
// HintInterval until it acks; a replay whose ack is lost is sent again;
// once acked the hint is gone and the owner's stored record equals the
// others' byte for byte.
func TestCoreHintReplaysUntilAcked(t *testing.T) {
	n := newReplNet(t, CoreConfig{RequestTimeout: 200 * time.Millisecond, HintInterval: 100 * time.Millisecond, AEInterval: time.Hour})
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.cores[co].Submit(1, replPut(60_000))
	n.cycle(co)
	cut := n.take(is(MsgReplicate, co, o3)) // o3 is cut off
	if len(cut) != 1 {
		t.Fatalf("%d replicate messages to %s", len(cut), o3)
	}
	nrec := len(cut[0].msg.Records)
	n.deliver(n.take(is(MsgReplicate, co, o2)))
	n.cycle(o2)
	n.deliver(n.take(is(MsgAck, o2, co)))
	n.cycle(co)
	if got := n.done[co]; len(got) != 1 || got[0].Err != nil {
		t.Fatalf("W=2 write with one owner cut off: %+v", got)
	}
	// The timeout turns the missing ack into a hint.
	n.tick(200)
	if n.cores[co].HintsFor(o3) != nrec {
		t.Fatalf("hints for %s = %d, want %d", o3, n.cores[co].HintsFor(o3), nrec)
	}
	if _, ok := n.stored(o3); ok {
		t.Fatal("cut-off owner has the record")
	}
	// Replays while o3 is still cut off are lost; the hint stays.
	replays := 0
	for range 10 {
		n.tick(100)
		replays += len(n.take(is(MsgReplicate, co, o3)))
		n.inbox = nil
	}
	if replays < 2 {
		t.Fatalf("%d replays in 1 s with HintInterval 100 ms and RequestTimeout 200 ms", replays)
	}
	if n.cores[co].HintsFor(o3) != nrec {
		t.Fatal("hint dropped while its owner was unreachable")
	}
	// Heal, but lose the ack: the replay reaches o3, the hint stays and is
	// sent again.
	var rep []replEnv
	for i := 0; len(rep) == 0 && i < 10; i++ {
		n.tick(100)
		rep = n.take(is(MsgReplicate, co, o3))
		n.inbox = nil
	}
	if len(rep) != 1 {
		t.Fatal("no replay after heal")
	}
	n.deliver(rep)
	n.cycle(o3)
	n.take(is(MsgAck, o3, co)) // lost
	if n.cores[co].HintsFor(o3) != nrec {
		t.Fatal("hint cleared without an ack")
	}
	rep = nil
	for i := 0; len(rep) == 0 && i < 10; i++ {
		n.tick(100)
		rep = n.take(is(MsgReplicate, co, o3))
		n.inbox = nil
	}
	if len(rep) != 1 {
		t.Fatal("hint not replayed again after its ack was lost")
	}
	n.deliver(rep) // duplicate delivery of the same record: harmless
	n.cycle(o3)
	n.deliver(n.take(is(MsgAck, o3, co)))
	n.cycle(co)
	if n.cores[co].HintsFor(o3) != 0 {
		t.Fatal("hint kept after its ack")
	}
	a, _ := n.stored(co)
	b, _ := n.stored(o2)
	c, ok := n.stored(o3)
	if !ok {
		t.Fatal("hinted owner lacks the record")
	}
	ea, _ := storage.EncodeValue(a)
	eb, _ := storage.EncodeValue(b)
	ec, _ := storage.EncodeValue(c)
	if !slices.Equal(ea, eb) || !slices.Equal(ea, ec) {
		t.Fatalf("stored records differ:\n%x\n%x\n%x", ea, eb, ec)
	}
	// No more replays once acked.
	for range 5 {
		n.tick(100)
	}
	if r := n.take(is(MsgReplicate, co, o3)); len(r) != 0 {
		t.Fatalf("%d replays after the ack", len(r))
	}
}
