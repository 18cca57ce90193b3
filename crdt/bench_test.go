package crdt_test

import (
	"testing"

	"github.com/playhead/playhead/crdt"
)

// Merges sit on every write and every replicated delta: they must not
// allocate. TestMergeDoesNotAllocate enforces it in the normal test run; the
// benchmarks report it (-benchmem is implied by b.ReportAllocs).

var (
	sinkCursor crdt.Cursor
	sinkEntry  crdt.Entry
	sinkRecord crdt.Record
	sinkHLC    crdt.HLC
)

// benchCursors are realistic cursor states of one video: two sessions, a
// metadata-carrying first write, heartbeats, a deletion register.
func benchCursors() []crdt.Cursor {
	tv := crdt.Update{Video: "video-123", Device: "tv-livingroom", Session: "sess-tv", PositionMs: 600_000, DurationMs: 3_600_000,
		State: crdt.StatePlaying, Title: "Pilot", SeriesID: "show-9", NextVideo: "video-124"}
	phone := tv
	phone.Device, phone.Session, phone.Title, phone.SeriesID, phone.NextVideo = "phone", "sess-phone", "", "", ""
	out := []crdt.Cursor{
		tv.CursorDelta(crdt.Version{Epoch: 100, Seq: 100, Session: "sess-tv"}, 100),
		tv.CursorDelta(crdt.Version{Epoch: 100, Seq: 150, Session: "sess-tv"}, 150),
		phone.CursorDelta(crdt.Version{Epoch: 120, Seq: 120, Session: "sess-phone"}, 121),
		phone.CursorDelta(crdt.Version{Epoch: 120, Seq: 160, Session: "sess-phone"}, 161),
		{Video: "video-123", ClearedAt: 90},
	}
	return out
}

func benchEntries() []crdt.Entry {
	u := crdt.Update{Video: "video-123", Device: "tv-livingroom", Session: "sess-tv", PositionMs: 600_000, DurationMs: 3_600_000,
		State: crdt.StatePlaying, Title: "Pilot"}
	e1 := u.EntryDelta(crdt.Version{Epoch: 100, Seq: 100, Session: "sess-tv"}, 100, true)
	e2 := u.EntryDelta(crdt.Version{Epoch: 100, Seq: 150, Session: "sess-tv"}, 150, true)
	e3 := u.EntryDelta(crdt.Version{Epoch: 100, Seq: 170, Session: "sess-tv"}, 170, false)
	return []crdt.Entry{e1, e2, e3, e1.Tombstone()}
}

func TestMergeDoesNotAllocate(t *testing.T) {
	cs, es := benchCursors(), benchEntries()
	rs := []crdt.Record{{Kind: crdt.KindCursor, Cursor: cs[0]}, {Kind: crdt.KindCursor, Cursor: cs[3]}}
	for name, f := range map[string]func(){
		"MergeCursor": func() {
			for i := range cs {
				sinkCursor = crdt.MergeCursor(cs[i], cs[(i+1)%len(cs)])
			}
		},
		"MergeEntry": func() {
			for i := range es {
				sinkEntry = crdt.MergeEntry(es[i], es[(i+1)%len(es)])
			}
		},
		"MergeRecord": func() { sinkRecord = crdt.MergeRecord(rs[0], rs[1]) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per run", name, n)
		}
	}
}

func BenchmarkMergeCursor(b *testing.B) {
	cs := benchCursors()
	b.ReportAllocs()
	acc := crdt.Cursor{}
	for i := 0; b.Loop(); i++ {
		acc = crdt.MergeCursor(acc, cs[i%len(cs)])
		if i%len(cs) == len(cs)-1 {
			sinkCursor, acc = acc, crdt.Cursor{}
		}
	}
}

func BenchmarkMergeEntry(b *testing.B) {
	es := benchEntries()
	b.ReportAllocs()
	acc := crdt.Entry{}
	for i := 0; b.Loop(); i++ {
		acc = crdt.MergeEntry(acc, es[i%len(es)])
		if i%len(es) == len(es)-1 {
			sinkEntry, acc = acc, crdt.Entry{}
		}
	}
}

func BenchmarkMergeRecord(b *testing.B) {
	cs := benchCursors()
	a := crdt.Record{Kind: crdt.KindCursor, Cursor: cs[1]}
	c := crdt.Record{Kind: crdt.KindCursor, Cursor: cs[3]}
	b.ReportAllocs()
	for b.Loop() {
		sinkRecord = crdt.MergeRecord(a, c)
	}
}

func BenchmarkClockNow(b *testing.B) {
	c := crdt.NewClock(0)
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		sinkHLC = c.Now(1_780_000_000_000 + i>>10) // physical time moves every 1024 events
	}
}

func BenchmarkClockNowParallel(b *testing.B) {
	c := crdt.NewClock(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var h crdt.HLC
		for pb.Next() {
			h = c.Now(1_780_000_000_000)
		}
		_ = h
	})
	sinkHLC = c.Last()
}

func BenchmarkClockUpdate(b *testing.B) {
	c := crdt.NewClock(0)
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		h, err := c.Update(crdt.NewHLC(1_780_000_000_000+i>>10, uint16(i)), 1_780_000_000_000+i>>10)
		if err != nil {
			b.Fatal(err)
		}
		sinkHLC = h
	}
}
