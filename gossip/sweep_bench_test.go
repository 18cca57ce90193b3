package gossip

import (
	"fmt"
	"testing"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// BenchmarkReplicaMerge is a replica's side of a replicated write: the
// cursor and history entry of one position report (a copy it already
// holds: the merge changes nothing), merged into a Pebble store that holds
// the profile, with retention on arrival reading the profile's registers. Compare with
//
//	go test -tags plant_no_retain -run - -bench ReplicaMerge ./gossip
//
// for the cost of retention on arrival.
func BenchmarkReplicaMerge(b *testing.B) {
	db, err := storage.Open(b.TempDir(), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c, err := NewCore(CoreConfig{Self: "n2", SweepInterval: -1}, db, replT0)
	if err != nil {
		b.Fatal(err)
	}
	c.SetTable(ring.NewTable(c.cfg.Local.Partitions, 3, []ring.NodeID{"n1", "n2", "n3"}))
	coord, err := NewCore(CoreConfig{Self: "n1", SweepInterval: -1}, storage.NewMem(), replT0)
	if err != nil {
		b.Fatal(err)
	}
	coord.SetTable(ring.NewTable(c.cfg.Local.Partitions, 3, []ring.NodeID{"n1", "n2", "n3"}))
	// The frames a coordinator sends: one write each, 1,000 profiles.
	var frames, first []Msg
	for i := range 1000 {
		ref := Ref{Account: "acct", Profile: fmt.Sprintf("p%d", i)}
		op := Op{Kind: OpPut, Ref: ref, Ups: []crdt.Update{{Video: "film", Device: "tv", Session: "s1",
			PositionMs: int64(i) * 1000, DurationMs: 3_600_000, State: crdt.StatePlaying, Title: "A Film"}}}
		_, ch, err := coord.run(op)
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, Msg{Type: MsgReplicate, Records: encodeRecords(ch.puts)})
		first = append(first, Msg{Type: MsgReplicate, Records: encodeRecords(append(ch.puts,
			storage.Put{Key: storage.Key{Partition: c.Partition(ref), Account: ref.Account, Profile: ref.Profile, Kind: crdt.KindProfile},
				Record: crdt.Record{Kind: crdt.KindProfile, Profile: crdt.Profile{ClearedAt: 1}}}))})
	}
	for _, m := range first { // every profile stored once, with a deletion in its past
		c.Step("n1", m)
	}
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := frames[i%len(frames)]
		c.Step("n1", m)
		if err := c.Flush(); err != nil {
			b.Fatal(err)
		}
		c.Ready()
	}
}
