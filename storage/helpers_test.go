package storage

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/playhead/playhead/crdt"
)

// baseHLC is an HLC in 2025, so test values have realistic sizes.
var baseHLC = crdt.NewHLC(1_750_000_000_000, 0)

func cursorKey(p uint16, account, profile, video string) Key {
	return Key{Partition: p, Account: account, Profile: profile, Kind: crdt.KindCursor, ID: video}
}

func entryKey(p uint16, account, profile, id string) Key {
	return Key{Partition: p, Account: account, Profile: profile, Kind: crdt.KindEntry, ID: id}
}

func profileKey(p uint16, account, profile string) Key {
	return Key{Partition: p, Account: account, Profile: profile, Kind: crdt.KindProfile}
}

// cursorRec is a realistic cursor of video at position pos: a 16-byte
// session and device id, a title.
func cursorRec(video string, pos int64) crdt.Record {
	v := crdt.Version{Epoch: baseHLC, Seq: baseHLC + crdt.HLC(pos)<<16, Session: "0123456789abcdef"}
	return crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{
		Video:      video,
		PositionMs: pos,
		DurationMs: 2_700_000,
		State:      crdt.StatePlaying,
		Version:    v,
		Device:     "tv-livingroom-01",
		UpdatedHLC: v.Seq + 3,
		Title:      crdt.Meta{Value: "Episode 1", Ver: v},
	}}
}

func entryRec(video string, pos int64) crdt.Record {
	v := crdt.Version{Epoch: baseHLC, Seq: baseHLC + crdt.HLC(pos)<<16, Session: "0123456789abcdef"}
	return crdt.Record{Kind: crdt.KindEntry, Entry: crdt.Entry{
		Video:      video,
		Session:    v,
		StartedAt:  v.Epoch,
		Rec:        v,
		Device:     "phone",
		LastAt:     v.Seq,
		PositionMs: pos,
		DurationMs: 2_700_000,
	}}
}

func profileRec(cleared crdt.HLC) crdt.Record {
	return crdt.Record{Kind: crdt.KindProfile, Profile: crdt.Profile{ClearedAt: cleared, HistoryPaused: true, PausedAt: cleared + 1}}
}

// put returns the Put of rec under k.
func put(k Key, rec crdt.Record) Put { return Put{Key: k, Record: rec} }

// openMemPebble opens a small Pebble store on a crashable in-memory FS and
// closes it at the end of the test (unless the test did).
func openMemPebble(tb testing.TB) *Pebble {
	tb.Helper()
	p, err := Open("db", Options{FS: vfs.NewCrashableMem(), CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil && !errors.Is(err, ErrClosed) {
			tb.Error(err)
		}
	})
	return p
}

// kv is one scanned record.
type kv struct {
	Key Key
	Rec crdt.Record
}

func scanProfile(tb testing.TB, s Store, p uint16, account, profile string, kind crdt.Kind) []kv {
	tb.Helper()
	var out []kv
	err := s.ScanProfile(p, account, profile, kind, func(k Key, r crdt.Record) error {
		out = append(out, kv{k, r})
		return nil
	})
	if err != nil {
		tb.Fatalf("ScanProfile(%d, %q, %q, %v): %v", p, account, profile, kind, err)
	}
	return out
}

func scanPartition(tb testing.TB, s Store, p uint16) []kv {
	tb.Helper()
	var out []kv
	if err := s.ScanPartition(p, func(k Key, r crdt.Record) error {
		out = append(out, kv{k, r})
		return nil
	}); err != nil {
		tb.Fatalf("ScanPartition(%d): %v", p, err)
	}
	return out
}

func mustWrite(tb testing.TB, s Store, puts []Put, deletes []Key) {
	tb.Helper()
	if err := s.Write(puts, deletes); err != nil {
		tb.Fatalf("Write: %v", err)
	}
}

// mustGet returns the record at k, or ok false.
func mustGet(tb testing.TB, s Store, k Key) (crdt.Record, bool) {
	tb.Helper()
	rec, ok, err := s.Get(k)
	if err != nil {
		tb.Fatalf("Get(%+v): %v", k, err)
	}
	return rec, ok
}
