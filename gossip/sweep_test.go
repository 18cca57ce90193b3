package gossip

import (
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// The cluster's retention (sweep.go), driven by hand over three Cores: the
// sweep of each replica, retention on arrival, and anti-entropy between a
// replica that swept and one that was cut off meanwhile.

// sweepCfg sweeps every partition of the 8-partition test ring each 100 ms.
func sweepCfg() CoreConfig {
	return CoreConfig{SweepInterval: 100 * time.Millisecond, SweepBudget: 8, AEInterval: 200 * time.Millisecond,
		HintInterval: 100 * time.Millisecond, RequestTimeout: 200 * time.Millisecond}
}

// run ticks every node every 100 ms for ms, delivering every message
// except those cut drops, and those to or from a node in down (crashed:
// not ticked either).
func (n *replNet) run(ms int64, cut func(replEnv) bool, down ...ring.NodeID) {
	isDown := func(id ring.NodeID) bool {
		for _, d := range down {
			if d == id {
				return true
			}
		}
		return false
	}
	for end := n.now + ms; n.now < end; {
		n.now += 100
		for _, id := range []ring.NodeID{"n1", "n2", "n3"} {
			if !isDown(id) {
				n.cores[id].Tick(n.now)
				n.cycle(id)
			}
		}
		for len(n.inbox) > 0 {
			es := n.inbox
			n.inbox = nil
			for _, e := range es {
				if isDown(e.to) || isDown(e.from) || cut != nil && cut(e) {
					continue
				}
				n.cores[e.to].Step(e.from, e.msg)
				n.cycle(e.to)
			}
		}
	}
}

func (n *replNet) profileRecords(id ring.NodeID) []storage.Put {
	n.t.Helper()
	var out []storage.Put
	err := n.mems[id].ScanProfile(n.cores[id].Partition(replRef), replRef.Account, replRef.Profile, 0, func(k storage.Key, r crdt.Record) error {
		out = append(out, storage.Put{Key: k, Record: r})
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// holdsContent reports whether a stored record of the test profile still
// carries what a device wrote: a position, a device, a title.
func holdsContent(recs []storage.Put) (storage.Put, bool) {
	for _, p := range recs {
		switch r := p.Record; r.Kind {
		case crdt.KindCursor:
			if c := r.Cursor; c.PositionMs != 0 || c.Device != "" || c.Title.Value != "" {
				return p, true
			}
		case crdt.KindEntry:
			if e := r.Entry; e.PositionMs != 0 || e.Device != "" || e.Title.Value != "" {
				return p, true
			}
		}
	}
	return storage.Put{}, false
}

func titled(pos int64) Op {
	op := replPut(pos)
	op.Ups[0].Title = "Secret Film"
	return op
}

// "Delete all my history" while one owner is cut off: the two owners that
// took the delete scrub the position, device and title from their stores
// (and from the hint kept for the third) within a sweep pass; the third
// holds them until it is reachable again, then anti-entropy brings it the
// profile's cleared_at and its own sweep erases them. Nothing comes back
// from it to the others.
func TestCoreSweepScrubsDeletedContentOnEveryReplica(t *testing.T) {
	n := newReplNet(t, sweepCfg())
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.cores[co].Submit(1, titled(60_000))
	n.run(500, nil)
	for _, id := range n.owners {
		if _, ok := holdsContent(n.profileRecords(id)); !ok {
			t.Fatalf("%s did not get the write", id)
		}
	}
	cutO3 := func(e replEnv) bool { return e.to == o3 || e.from == o3 }
	// A second write o3 misses (kept as a hint for it), then the delete.
	n.cores[co].Submit(2, titled(120_000))
	n.run(500, cutO3)
	if n.cores[co].HintsFor(o3) == 0 {
		t.Fatal("no hint kept for the cut-off owner")
	}
	n.cores[co].Submit(3, Op{Kind: OpDeleteAll, Ref: replRef})
	n.run(1_000, cutO3)
	for _, d := range n.done[co] {
		if d.Err != nil {
			t.Fatalf("request %d: %v", d.ID, d.Err)
		}
	}
	for _, id := range []ring.NodeID{co, o2} {
		if p, bad := holdsContent(n.profileRecords(id)); bad {
			t.Fatalf("%s still stores deleted content a sweep pass after the delete: %+v", id, p)
		}
	}
	for k, h := range n.cores[co].hints {
		if _, bad := holdsContent([]storage.Put{{Key: k, Record: h.rec}}); bad {
			t.Fatalf("the hint for %s still carries deleted content: %+v", o3, h.rec)
		}
	}
	if _, bad := holdsContent(n.profileRecords(o3)); !bad {
		t.Fatal("the cut-off owner lost its copy without hearing of the delete (the test no longer tests anything)")
	}
	before := n.cores[co].Stats().RecordsMerged + n.cores[o2].Stats().RecordsMerged
	n.run(3_000, nil)
	for _, id := range n.owners {
		if p, bad := holdsContent(n.profileRecords(id)); bad {
			t.Fatalf("%s stores deleted content after the heal: %+v", id, p)
		}
	}
	p := n.cores[co].Partition(replRef)
	if d := n.cores[co].Digest(p); d != n.cores[o2].Digest(p) || d != n.cores[o3].Digest(p) {
		t.Fatal("replicas did not converge after the heal")
	}
	// The others took nothing from o3 but what the delete left (its
	// scrubbed copies equal theirs): no content went back and forth.
	if after := n.cores[co].Stats().RecordsMerged + n.cores[o2].Stats().RecordsMerged; after-before > 2 {
		t.Fatalf("the owners that swept merged %d records from the healed one", after-before)
	}
}

// Expiry: records past their TTL are purged by every replica's sweep; a
// replica that was down across the expiry still holds them when it comes
// back, and anti-entropy neither stores them again on the others (refused
// on arrival) nor keeps shipping them: the returning replica's scan purges
// its own copies before it sends them, and the digests agree again.
func TestCoreSweepPurgesExpiredAndAntiEntropyDoesNotResurrect(t *testing.T) {
	cfg := sweepCfg()
	cfg.Local.Policy = crdt.Policy{CursorTTL: time.Minute, HistoryTTL: 2 * time.Minute}
	n := newReplNet(t, cfg)
	co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
	n.cores[co].Submit(1, titled(60_000))
	n.run(500, nil)
	if len(n.profileRecords(o3)) == 0 {
		t.Fatal("o3 did not get the write")
	}
	// o3 crashes; the others run past history_ttl.
	n.run(3*time.Minute.Milliseconds(), nil, o3)
	for _, id := range []ring.NodeID{co, o2} {
		if recs := n.profileRecords(id); len(recs) != 0 {
			t.Fatalf("%s still stores %d records past their TTL: %+v", id, len(recs), recs)
		}
		if n.cores[id].Stats().SweptRecords == 0 {
			t.Fatalf("%s counted no swept records", id)
		}
	}
	if len(n.profileRecords(o3)) == 0 {
		t.Fatal("the crashed owner lost its records while down")
	}
	// o3 comes back (a new Core over its store, time has moved on).
	c3, err := NewCore(func() CoreConfig { c := cfg; c.Self = o3; c.Local.Partitions = 8; return c }(), n.mems[o3], n.now)
	if err != nil {
		t.Fatal(err)
	}
	c3.SetTable(n.cores[co].table)
	n.cores[o3] = c3
	// Exchange anti-entropy before o3's own sweep reaches the partition:
	// its scan sends nothing purgeable, and the others store nothing.
	n.cores[o3].sweep.last = n.now + time.Hour.Milliseconds() // hold o3's sweep back
	n.run(2_000, nil)
	for _, id := range n.owners {
		if recs := n.profileRecords(id); len(recs) != 0 {
			t.Fatalf("%s stores %d expired records after the crashed owner returned: %+v", id, len(recs), recs)
		}
	}
	p := n.cores[co].Partition(replRef)
	if d := n.cores[co].Digest(p); d != n.cores[o3].Digest(p) {
		t.Fatal("digests differ after the returning owner's records expired")
	}
	sent := n.cores[co].Stats().AERecordsSent + n.cores[o3].Stats().AERecordsSent
	n.run(2_000, nil)
	if again := n.cores[co].Stats().AERecordsSent + n.cores[o3].Stats().AERecordsSent; again != sent {
		t.Fatalf("anti-entropy still ships records once the replicas agree: %d more", again-sent)
	}
}

// A record that is purgeable when it arrives (an old copy from a replica
// that was down, a late hint) is not stored, and the stored copy it would
// merge with goes too; deleted content arriving is stored scrubbed.
func TestCoreRetainsOnArrival(t *testing.T) {
	n := newReplNet(t, CoreConfig{SweepInterval: -1})
	c := n.cores["n1"]
	p := c.Partition(replRef)
	key := func(kind crdt.Kind, id string) storage.Key {
		return storage.Key{Partition: p, Account: replRef.Account, Profile: replRef.Profile, Kind: kind, ID: id}
	}
	old := crdt.NewHLC(replT0-40*24*time.Hour.Milliseconds(), 0) // past the 30-day cursor TTL
	expired := crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{PositionMs: 5, DurationMs: 100, Device: "tv",
		Version: crdt.Version{Epoch: old, Seq: old, Session: "s"}}}
	c.Step("n2", Msg{Type: MsgReplicate, Records: encodeRecords([]storage.Put{{Key: key(crdt.KindCursor, "old"), Record: expired}})})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := n.mems["n1"].Get(key(crdt.KindCursor, "old")); ok {
		t.Fatal("stored a cursor that was past its TTL on arrival")
	}
	if c.Stats().PurgedOnArrival != 1 {
		t.Fatalf("PurgedOnArrival = %d, want 1", c.Stats().PurgedOnArrival)
	}
	// Deleted by the profile's cleared_at this node holds: stored scrubbed.
	now := crdt.NewHLC(replT0, 0)
	c.Step("n2", Msg{Type: MsgReplicate, Records: encodeRecords([]storage.Put{
		{Key: key(crdt.KindProfile, ""), Record: crdt.Record{Kind: crdt.KindProfile, Profile: crdt.Profile{ClearedAt: now + 10}}},
		{Key: key(crdt.KindCursor, "v"), Record: crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{PositionMs: 5, DurationMs: 100, Device: "tv",
			Title: crdt.Meta{Value: "Secret", Ver: crdt.Version{Epoch: now, Seq: now, Session: "s"}}, Version: crdt.Version{Epoch: now, Seq: now, Session: "s"}}}},
	})})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got, ok, _ := n.mems["n1"].Get(key(crdt.KindCursor, "v"))
	if !ok || got.Cursor.Version.Seq != now {
		t.Fatalf("the deleted cursor's version register was not kept: %+v", got)
	}
	if _, bad := holdsContent([]storage.Put{{Record: got}}); bad {
		t.Fatalf("stored deleted content that arrived from a peer: %+v", got.Cursor)
	}
}
