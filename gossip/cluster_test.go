package gossip

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// A copy of a forwarded write that arrives after a newer write of the same
// session must not be executed again: the coordinator would stamp it anew
// (a larger version) and the cursor would move back to the old position.
func TestCoreDuplicateForwardRunsOnce(t *testing.T) {
	n := newReplNet(t, CoreConfig{HintInterval: time.Hour, AEInterval: time.Hour})
	co := n.owners[0]
	origin := n.owners[1]
	write := func(id uint64, pos int64) replEnv {
		t.Helper()
		n.cores[origin].Submit(id, replPut(pos))
		n.cycle(origin)
		fw := n.take(is(MsgForward, origin, co))
		if len(fw) != 1 {
			t.Fatalf("%d forwards", len(fw))
		}
		n.deliver(fw)
		for range 3 {
			n.tick(1)
			n.deliver(n.take(func(replEnv) bool { return true }))
		}
		return fw[0]
	}
	first := write(1, 720_000)
	write(2, 780_000)
	n.now += 1_000
	n.deliver([]replEnv{first}) // the transport delivers the first one again
	for range 3 {
		n.tick(1)
		n.deliver(n.take(func(replEnv) bool { return true }))
	}
	for _, id := range n.owners {
		rec, ok := n.stored(id)
		if !ok || rec.Cursor.PositionMs != 780_000 {
			t.Fatalf("%s holds %+v after a duplicate of the first write, want position 780000", id, rec.Cursor)
		}
	}
	if d := n.cores[co].Stats().DuplicateForwards; d != 1 {
		t.Fatalf("DuplicateForwards = %d, want 1", d)
	}
	if got := n.done[origin]; len(got) != 2 {
		t.Fatalf("origin got %d answers, want 2: %+v", len(got), got)
	}
	// The memory of taken requests expires (it is bounded).
	n.tick(n.cores[co].dedupWindow() + 1)
	if len(n.cores[co].dedup.taken) != 0 || len(n.cores[co].dedup.queue) != 0 {
		t.Fatalf("dedup still holds %d requests past its window", len(n.cores[co].dedup.taken))
	}
}

// Hints are durable: they are written in the Flush batch that follows the
// write's deadline — synced with it, on a disk that keeps nothing unsynced
// — and a new Core over the crashed store replays them. They live outside
// every partition the ring uses, so they never enter a digest.
func TestCoreHintsSurviveACrash(t *testing.T) {
	n := newReplNet(t, CoreConfig{RequestTimeout: 200 * time.Millisecond, HintInterval: 100 * time.Millisecond, AEInterval: time.Hour})
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	disk := storage.NewMem(storage.WithDeferredSync())
	cfg := n.cores[co].cfg
	core, err := NewCore(cfg, disk, n.now)
	if err != nil {
		t.Fatal(err)
	}
	core.SetTable(n.cores[o2].table)
	n.cores[co], n.mems[co] = core, disk
	syncCycle := func() {
		n.cycle(co)
		disk.Sync() // the driver's Flush is the durable write
	}

	n.cores[co].Submit(1, replPut(60_000))
	syncCycle()
	n.take(is(MsgReplicate, co, o3)) // lost
	n.deliver(n.take(is(MsgReplicate, co, o2)))
	n.cycle(o2)
	n.deliver(n.take(is(MsgAck, o2, co)))
	syncCycle()
	n.now += 200
	n.cores[co].Tick(n.now)
	syncCycle()
	nrec := n.cores[co].HintsFor(o3)
	if nrec == 0 {
		t.Fatal("no hint after the deadline")
	}
	n.inbox = nil

	crashed := disk.Crash(func() bool { return false }) // keeps only what was synced
	restarted, err := NewCore(cfg, crashed, n.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := restarted.Stats().HintsLoaded; got != uint64(nrec) {
		t.Fatalf("loaded %d hints, want %d", got, nrec)
	}
	if d := restarted.Digest(n.cores[co].Partition(replRef)); d != n.cores[o2].Digest(n.cores[co].Partition(replRef)) {
		t.Fatal("the restarted coordinator's digest differs from an owner with the same records: hints leaked into it")
	}
	restarted.SetTable(n.cores[o2].table)
	n.cores[co], n.mems[co] = restarted, crashed
	if got := restarted.HintsFor(o3); got != nrec {
		t.Fatalf("after restart HintsFor(%s) = %d, want %d", o3, got, nrec)
	}
	for i := 0; i < 20 && restarted.Hints() > 0; i++ {
		n.tick(100)
		n.deliver(n.take(func(replEnv) bool { return true }))
	}
	n.cycle(co)
	if restarted.Hints() != 0 {
		t.Fatalf("%d hints left after replay", restarted.Hints())
	}
	if !slices.Equal(n.encoded(o3), n.encoded(co)) {
		t.Fatal("the owner that missed the write does not hold it after the replay")
	}
	stored := 0
	crashed.ScanPartition(storage.HintPartition, func(storage.Key, crdt.Record) error { stored++; return nil })
	if stored != 0 {
		t.Fatalf("%d acknowledged hints still stored", stored)
	}
}

// An owner that leaves the partition (a ring change) needs its hints no
// more: the new owners get the partition by handoff. The hints go, from
// memory and store.
func TestCoreHintsForAnOwnerThatLeftAreDropped(t *testing.T) {
	n := newReplNet(t, CoreConfig{RequestTimeout: 200 * time.Millisecond, HintInterval: 100 * time.Millisecond, AEInterval: time.Hour})
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.cores[co].Submit(1, replPut(60_000))
	n.cycle(co)
	n.take(is(MsgReplicate, co, o3)) // lost
	n.deliver(n.take(is(MsgReplicate, co, o2)))
	n.cycle(o2)
	n.deliver(n.take(is(MsgAck, o2, co)))
	n.tick(200)
	if n.cores[co].HintsFor(o3) == 0 {
		t.Fatal("no hint")
	}
	// o3 leaves the ring; n4 takes its place.
	t2 := ring.Rebalance(n.cores[co].table, []ring.NodeID{co, o2, "n4"})
	n.cores[co].SetTable(t2)
	n.tick(100)
	if h := n.cores[co].Hints(); h != 0 {
		t.Fatalf("%d hints kept for an owner that left", h)
	}
	stored := 0
	n.mems[co].ScanPartition(storage.HintPartition, func(storage.Key, crdt.Record) error { stored++; return nil })
	if stored != 0 {
		t.Fatalf("%d hints still stored", stored)
	}
}

// Push interest is a lease: renewed by the subscriber's ticks while it
// wants the profile, gone a lease after it stops.
func TestCoreInterestLeaseRenewsAndExpires(t *testing.T) {
	n := newReplNet(t, CoreConfig{InterestLease: time.Second, HintInterval: time.Hour, AEInterval: time.Hour})
	co, sub := n.owners[0], n.owners[2]
	pushes := func(pos int64) int {
		n.cores[co].Submit(uint64(pos), replPut(pos))
		got := 0
		for range 4 {
			n.tick(1)
			for _, e := range n.take(func(replEnv) bool { return true }) {
				if e.msg.Type == MsgEvents && e.to == sub {
					for _, ev := range e.msg.Events {
						if ev.Cursor.PositionMs == pos {
							got++
						}
					}
				}
				n.deliver([]replEnv{e})
			}
		}
		return got
	}
	deliverAll := func(ms int64) {
		for end := n.now + ms; n.now < end; {
			n.tick(50)
			n.deliver(n.take(func(replEnv) bool { return true }))
		}
	}
	if got := pushes(10_000); got != 0 {
		t.Fatalf("%d pushes before any interest", got)
	}
	n.cores[sub].SetInterest([]Ref{replRef})
	n.cycle(sub)
	n.deliver(n.take(is(MsgInterest, sub, co)))
	// The registration's catch-up (push.go) brings the earlier write.
	n.cycle(co)
	n.deliver(n.take(is(MsgEvents, co, sub)))
	if got := pushes(20_000); got != 1 {
		t.Fatalf("%d pushes with live interest, want 1", got)
	}
	deliverAll(3_000) // three leases: renewals keep it
	if got := pushes(30_000); got != 1 {
		t.Fatalf("%d pushes after 3 renewed leases, want 1", got)
	}
	n.cores[sub].SetInterest(nil)
	deliverAll(1_100)
	if got := pushes(40_000); got != 0 {
		t.Fatalf("%d pushes a lease after the interest ended", got)
	}
}

// Replication is state-based: whatever order, duplication or loss the
// copies of a set of records have, a replica that ends up receiving each
// at least once holds the same bytes — and the same digest — as one that
// received them once, in order.
func TestReplicaStateIndependentOfDelivery(t *testing.T) {
	// The records: what a coordinator wrote for a mix of writes.
	n := newReplNet(t, CoreConfig{HintInterval: time.Hour, AEInterval: time.Hour})
	co := n.owners[0]
	var msgs []Msg
	for i := range 12 {
		op := replPut(int64(1+i%5) * 60_000)
		op.Ups[0].Video = fmt.Sprint("v", i%3)
		op.Ups[0].Session = fmt.Sprint("s", i%4)
		n.cores[co].Submit(uint64(i+1), op)
		n.cycle(co)
		for _, e := range n.take(is(MsgReplicate, co, n.owners[1])) {
			msgs = append(msgs, e.msg)
		}
		n.inbox = nil
		n.tick(3)
	}
	replica := func(order []Msg) (*storage.Mem, *Core) {
		mem := storage.NewMem()
		c, err := NewCore(CoreConfig{Self: "r", Local: LocalOptions{Partitions: 8}, HintInterval: time.Hour, AEInterval: time.Hour}, mem, replT0)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range order {
			c.Step(co, m)
			if i%3 == 2 {
				c.Flush()
			}
		}
		c.Flush()
		return mem, c
	}
	wantMem, wantCore := replica(msgs)
	p := n.cores[co].Partition(replRef)
	want := dumpPartition(t, wantMem, p)
	if len(want) == 0 {
		t.Fatal("nothing replicated")
	}
	rapid.Check(t, func(rt *rapid.T) {
		var order []Msg
		for i := range msgs {
			for range rapid.IntRange(1, 3).Draw(rt, fmt.Sprint("copies", i)) {
				order = append(order, msgs[i])
			}
		}
		perm := rapid.Permutation(order).Draw(rt, "order")
		mem, c := replica(perm)
		if got := dumpPartition(t, mem, p); !slices.Equal(got, want) {
			rt.Fatalf("stored partition differs:\n got %q\nwant %q", got, want)
		}
		if c.Digest(p) != wantCore.Digest(p) {
			rt.Fatal("digest differs")
		}
	})
}

func dumpPartition(t *testing.T, mem *storage.Mem, p uint16) []string {
	var out []string
	err := mem.ScanPartition(p, func(k storage.Key, r crdt.Record) error {
		kb, _ := storage.EncodeKey(k)
		vb, _ := storage.EncodeValue(r)
		out = append(out, fmt.Sprintf("%x=%x", kb, vb))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A node's HLC is past every version it stores, also one that reached it
// by replication or was found in its store at start: answers carry this
// clock, and a device that opens a session above it must not land below a
// deletion the node holds.
func TestCoreClockCoversStoredVersions(t *testing.T) {
	mem := storage.NewMem()
	cfg := CoreConfig{Self: "n1", Local: LocalOptions{Partitions: 8}, HintInterval: time.Hour, AEInterval: time.Hour}
	c, err := NewCore(cfg, mem, replT0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTable(ring.NewTable(8, 3, []ring.NodeID{"n1", "n2", "n3"}))
	ahead := crdt.NewHLC(replT0+30_000, 7) // written by a clock 30 s ahead
	k := storage.Key{Partition: c.Partition(replRef), Account: replRef.Account, Profile: replRef.Profile, Kind: crdt.KindProfile}
	c.Step("n2", Msg{Type: MsgReplicate, ReqID: 1, Records: encodeRecords([]storage.Put{{Key: k,
		Record: crdt.Record{Kind: crdt.KindProfile, Profile: crdt.Profile{ClearedAt: ahead}}}})})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if now := c.Now(); now <= ahead {
		t.Fatalf("HLC %d after merging cleared_at %d", now, ahead)
	}
	restarted, err := NewCore(cfg, mem, replT0)
	if err != nil {
		t.Fatal(err)
	}
	if now := restarted.Now(); now <= ahead {
		t.Fatalf("HLC %d after a restart over a stored cleared_at %d", now, ahead)
	}
}
