package gossip

import (
	"reflect"
	"testing"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/internal/bufstore"
	"github.com/playhead/playhead/gossip/internal/goldentest"
	"github.com/playhead/playhead/storage"
)

// The golden values of the wire tests: never change one (its bytes are
// pinned); add new ones.

func gHLC(ms, logical uint64) crdt.HLC { return crdt.HLC(ms<<16 | logical) }

var (
	gVer  = crdt.Version{Epoch: gHLC(1_750_000_000_000, 0), Seq: gHLC(1_750_000_600_000, 3), Session: "0123456789abcdef"}
	gVer2 = crdt.Version{Epoch: gHLC(1_749_000_000_000, 0), Seq: gHLC(1_749_000_100_000, 1), Session: "fedcba9876543210"}
	gRef  = Ref{Account: "acct-7", Profile: "kids"}
	gRef2 = Ref{Account: "acct-9", Profile: ""}
)

// gCursor is a cursor of video v with every field set (Video is not in the
// cursor encoding: frames carry it beside the cursor, or not at all).
func gCursor(v string) crdt.Cursor {
	return crdt.Cursor{
		Video:      v,
		PositionMs: 1_234_567,
		DurationMs: 2_700_000,
		State:      crdt.StatePaused,
		Version:    gVer,
		Device:     "tv-livingroom-01",
		UpdatedHLC: gHLC(1_750_000_600_001, 7),
		Title:      crdt.Meta{Value: "Pilot", Ver: gVer},
		SeriesID:   crdt.Meta{Value: "tt0903747", Ver: gVer2},
		NextVideo:  crdt.Meta{Value: "tt0903747-s01e02", Ver: gVer},
		ClearedAt:  gHLC(1_740_000_000_000, 5),
	}
}

func gEntry() crdt.Entry {
	return crdt.Entry{
		Video:      "tt0903747-s01e01",
		Session:    gVer,
		StartedAt:  gHLC(1_749_999_000_000, 0),
		Rec:        gVer,
		Device:     "tv-livingroom-01",
		LastAt:     gHLC(1_750_000_600_001, 7),
		PositionMs: 1_234_567,
		DurationMs: 2_700_000,
		Title:      crdt.Meta{Value: "Pilot", Ver: gVer},
		Deleted:    gVer2,
	}
}

func gProfile() crdt.Profile {
	return crdt.Profile{ClearedAt: gHLC(1_740_000_000_000, 5), HistoryPaused: true, PausedAt: gHLC(1_745_000_000_000, 1)}
}

func gUpdate() crdt.Update {
	return crdt.Update{Video: "tt0903747-s01e01", Device: "tv-livingroom-01", Session: "0123456789abcdef",
		PositionMs: 1_234_567, DurationMs: 2_700_000, State: crdt.StatePlaying, Epoch: gVer.Epoch, Seq: gVer.Seq,
		Title: "Pilot", SeriesID: "tt0903747", NextVideo: "tt0903747-s01e02"}
}

// gPuts are one record of each kind, as replication carries them.
func gPuts() []storage.Put {
	entry := gEntry()
	return []storage.Put{
		{Key: storage.Key{Partition: 0x0102, Account: gRef.Account, Profile: gRef.Profile, Kind: crdt.KindCursor, ID: "tt0903747-s01e01"},
			Record: crdt.Record{Kind: crdt.KindCursor, Cursor: gCursor("tt0903747-s01e01")}},
		{Key: storage.Key{Partition: 0x0102, Account: gRef.Account, Profile: gRef.Profile, Kind: crdt.KindEntry, ID: crdt.EntryID(entry.Video, entry.Session.Session)},
			Record: crdt.Record{Kind: crdt.KindEntry, Entry: entry}},
		{Key: storage.Key{Partition: 0x0102, Account: gRef.Account, Profile: gRef.Profile, Kind: crdt.KindProfile},
			Record: crdt.Record{Kind: crdt.KindProfile, Profile: gProfile()}},
	}
}

// gDigest is the digest of partition 0x0102 holding gPuts (see
// TestGoldenDigests, which pins how it is computed).
func gDigest() []uint64 {
	var d [DigestBuckets]uint64
	for _, p := range gPuts() {
		d[bufstore.BucketOf(p.Key)] ^= bufstore.ItemHash(p.Key, p.Record)
	}
	return d[:]
}

type frameCase struct {
	name string
	msgs []Msg
}

// frameCases holds a frame of each message type, of each Op kind, of each
// Result shape and of each error code, and one message with every field
// set (so that every field name is in the file).
func frameCases() []frameCase {
	one := func(name string, m Msg) frameCase { return frameCase{name, []Msg{m}} }
	forward := func(op Op) Msg { return Msg{Type: MsgForward, ReqID: 7, Origin: "node-a", Op: &op} }
	records := encodeRecords(gPuts())
	c := gCursor("")
	history := []HistoryItem{{ID: crdt.EntryID("tt0903747-s01e01", gVer.Session), Entry: gEntry()}}
	marks := []InterestMark{{Since: gHLC(1_750_000_000_000, 2), Sum: 0x0123456789abcdef}, {}}
	cs := []frameCase{
		one("forward-put", forward(Op{Kind: OpPut, Ref: gRef, Ups: []crdt.Update{gUpdate(), {Video: "v2", Device: "d", Session: "s", PositionMs: 1, DurationMs: 2}}})),
		one("forward-cursor", forward(Op{Kind: OpCursor, Ref: gRef, Video: "tt0903747-s01e01", ReadQuorum: 2, Seen: gVer})),
		one("forward-cursors", forward(Op{Kind: OpCursors, Ref: gRef})),
		one("forward-history", forward(Op{Kind: OpHistory, Ref: gRef2})),
		one("forward-profile", forward(Op{Kind: OpProfile, Ref: gRef})),
		one("forward-delete-entry", forward(Op{Kind: OpDeleteEntry, Ref: gRef, Entry: history[0].ID})),
		one("forward-delete-video", forward(Op{Kind: OpDeleteVideo, Ref: gRef, Video: "tt0903747-s01e01"})),
		one("forward-delete-all", forward(Op{Kind: OpDeleteAll, Ref: gRef})),
		one("forward-set-paused", forward(Op{Kind: OpSetPaused, Ref: gRef, Paused: true})),
		one("forward-exec", Msg{Type: MsgForward, ReqID: 1 << 40, Origin: "node-b", Exec: true, Op: &Op{Kind: OpCursors, Ref: gRef, ReadQuorum: 3}}),
		one("result-writes", Msg{Type: MsgResult, ReqID: 7, Result: &Result{Writes: []WriteResult{{Applied: true, Cursor: c, Found: true}, {}}, HLC: gHLC(1_750_000_600_002, 0)}}),
		one("result-cursor", Msg{Type: MsgResult, ReqID: 7, Result: &Result{Cursor: c, Found: true, HLC: gHLC(1_750_000_600_002, 1)}}),
		one("result-cursors", Msg{Type: MsgResult, ReqID: 7, Result: &Result{Cursors: []crdt.Cursor{gCursor("tt0903747-s01e01"), gCursor("v2")}, Videos: []string{"tt0903747-s01e01", "v2"}}}),
		one("result-history", Msg{Type: MsgResult, ReqID: 7, Result: &Result{History: history}}),
		one("result-profile", Msg{Type: MsgResult, ReqID: 7, Result: &Result{Profile: gProfile()}}),
		one("result-empty", Msg{Type: MsgResult, ReqID: 7, Result: &Result{}}),
		one("replicate", Msg{Type: MsgReplicate, ReqID: 9, Records: records}),
		one("replicate-hint", Msg{Type: MsgReplicate, ReqID: hintID | 3, Records: records[:1]}),
		one("replicate-no-ack", Msg{Type: MsgReplicate, Records: records[2:]}),
		one("ack", Msg{Type: MsgAck, ReqID: 9}),
		one("ack-hint", Msg{Type: MsgAck, ReqID: hintID | 3}),
		one("digest", Msg{Type: MsgDigest, P: 0x0102, Digest: gDigest()}),
		one("buckets", Msg{Type: MsgBuckets, P: 0x0102, Buckets: 1<<63 | 1<<5 | 1, Records: records, Reply: true}),
		one("buckets-reply", Msg{Type: MsgBuckets, P: 0x0102, Buckets: 1 << 5, Records: records[:1]}),
		one("buckets-handoff", Msg{Type: MsgBuckets, P: 1023, Buckets: ^uint64(0), Records: records, Handoff: true}),
		one("pull", Msg{Type: MsgPull, P: 1023}),
		one("interest", Msg{Type: MsgInterest, Refs: []Ref{gRef, gRef2}, LeaseMs: 10_000}),
		one("interest-marks", Msg{Type: MsgInterest, Refs: []Ref{gRef, gRef2}, LeaseMs: 10_000, Marks: marks}),
		one("events", Msg{Type: MsgEvents, Events: []Event{
			{Ref: gRef, Type: EventCursor, Cursor: gCursor("tt0903747-s01e01"), Video: "tt0903747-s01e01"},
			{Ref: gRef, Type: EventTakeover, Cursor: gCursor("v2"), Superseded: gCursor("v2"), Video: "v2"},
			{Ref: gRef, Type: EventCleared, Video: "v3", Cursor: crdt.Cursor{Video: "v3"}}, // DecodeFrame sets Cursor.Video
			{Ref: gRef2, Type: EventCleared, Entry: history[0].ID},
			{Ref: gRef2, Type: EventCleared},
		}}),
		one("events-catch-up", Msg{Type: MsgEvents, Refs: []Ref{gRef}, Marks: marks[:1], Events: []Event{
			{Ref: gRef, Type: EventCursor, Cursor: gCursor("v2"), Video: "v2"}}}),
		one("profile-records", Msg{Type: MsgProfileRecords, ReqID: 11, Refs: []Ref{gRef}}),
		one("profile-records-reply", Msg{Type: MsgProfileRecordsReply, ReqID: 11, Records: records}),
		{"several", []Msg{{Type: MsgAck, ReqID: 1}, {Type: MsgPull, P: 2}, {Type: MsgAck, ReqID: 3}}},
		one("every-field", Msg{Type: MsgEvents, ReqID: 1<<64 - 1, Origin: "node-c", Exec: true,
			Op:      &Op{Kind: OpPut, Ref: gRef, Ups: []crdt.Update{gUpdate()}, Video: "v", Entry: "e", Paused: true, ReadQuorum: 3, Local: true, Seen: gVer},
			Result:  &Result{Writes: []WriteResult{{Applied: true, Cursor: c, Found: true}}, Cursor: c, Found: true, Cursors: []crdt.Cursor{gCursor("v")}, Videos: []string{"v"}, History: history, Profile: gProfile(), HLC: 1},
			ErrCode: "bad_state", ErrText: "text", Records: records[:1], P: 65535, Digest: []uint64{1, 1 << 63}, Buckets: 2, Reply: true, Handoff: true,
			Refs: []Ref{gRef}, LeaseMs: -1, Events: []Event{{Ref: gRef, Type: EventCursor, Cursor: gCursor("v"), Superseded: gCursor("v"), Video: "v", Entry: "e"}},
			Marks: marks}),
	}
	// Every error code a coordinator answers with.
	for _, err := range []error{crdt.ErrBadPosition, crdt.ErrBadState, crdt.ErrBadVersion, crdt.ErrEpochBehind,
		crdt.ErrClockSkew, crdt.ErrBadHLC, ErrNotFound, ErrUnavailable} {
		code, text := errToCode(err)
		cs = append(cs, one("result-error-"+code, Msg{Type: MsgResult, ReqID: 7, ErrCode: code, ErrText: text}))
	}
	return cs
}

// TestGoldenFrames pins the frame of every replication message as
// EncodeFrame writes it and the TCP transport carries it (Msg, Op, Result
// and what they embed are msgpack maps keyed by Go field names), and checks
// that DecodeFrame reads the pinned bytes back to the same messages.
func TestGoldenFrames(t *testing.T) {
	cases := frameCases()
	var gc []goldentest.Case
	for _, c := range cases {
		b, err := EncodeFrame(c.msgs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		gc = append(gc, goldentest.Case{Name: c.name, Bytes: b})
	}
	want := goldentest.Check(t, "testdata/msg_frames.golden",
		"Replication frames (gossip.EncodeFrame): magic \"phf\" 0x01, then a msgpack array of\n"+
			"gossip.Msg, each a map keyed by Go field name (zero omitempty fields left out);\n"+
			"crdt structs inside as pinned by crdt/testdata/golden, records in their storage\n"+
			"encoding (storage/testdata/golden). Peers of other releases decode these.", gc)
	types := map[MsgType]bool{}
	kinds := map[OpKind]bool{}
	for _, c := range cases {
		w, ok := want[c.name]
		if !ok {
			continue
		}
		got, err := DecodeFrame(w)
		if err != nil {
			t.Errorf("%s: pinned frame does not decode: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.msgs) {
			t.Errorf("%s: pinned frame decodes to\n %+v\nwant\n %+v", c.name, got, c.msgs)
		}
		for _, m := range c.msgs {
			types[m.Type] = true
			if m.Op != nil {
				kinds[m.Op.Kind] = true
			}
		}
	}
	for ty := MsgForward; ty <= MsgProfileRecordsReply; ty++ {
		if !types[ty] {
			t.Errorf("message type %d has no golden frame", ty)
		}
	}
	for k := OpPut; k <= OpSetPaused; k++ {
		if !kinds[k] {
			t.Errorf("op kind %d has no golden frame", k)
		}
	}
}

// TestGoldenWireEnums pins the values of the wire enums by name: a
// constant inserted before another renumbers it, and peers then read one
// message type, op or event as another.
func TestGoldenWireEnums(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"MsgForward", int(MsgForward), 1}, {"MsgResult", int(MsgResult), 2}, {"MsgReplicate", int(MsgReplicate), 3},
		{"MsgAck", int(MsgAck), 4}, {"MsgDigest", int(MsgDigest), 5}, {"MsgBuckets", int(MsgBuckets), 6},
		{"MsgPull", int(MsgPull), 7}, {"MsgInterest", int(MsgInterest), 8}, {"MsgEvents", int(MsgEvents), 9},
		{"MsgProfileRecords", int(MsgProfileRecords), 10}, {"MsgProfileRecordsReply", int(MsgProfileRecordsReply), 11},
		{"OpPut", int(OpPut), 1}, {"OpCursor", int(OpCursor), 2}, {"OpCursors", int(OpCursors), 3},
		{"OpHistory", int(OpHistory), 4}, {"OpProfile", int(OpProfile), 5}, {"OpDeleteEntry", int(OpDeleteEntry), 6},
		{"OpDeleteVideo", int(OpDeleteVideo), 7}, {"OpDeleteAll", int(OpDeleteAll), 8}, {"OpSetPaused", int(OpSetPaused), 9},
		{"EventCursor", int(EventCursor), 1}, {"EventTakeover", int(EventTakeover), 2}, {"EventCleared", int(EventCleared), 3},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d on the wire, was %d: wire enums are append only", c.name, c.got, c.want)
		}
	}
	if hintID != 1<<63 {
		t.Errorf("hintID = %#x, was 1<<63: a peer acknowledging a hint replay echoes it", uint64(hintID))
	}
	if string(frameMagic) != "phf\x01" || MaxFrame != 8<<20 {
		t.Errorf("frame magic %q / MaxFrame %d changed: a new frame format needs a new magic", frameMagic, MaxFrame)
	}
}
