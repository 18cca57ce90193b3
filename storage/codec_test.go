package storage

import (
	"bytes"
	"errors"
	"github.com/vmihailenco/msgpack/v5"
	"runtime"
	"testing"

	"github.com/playhead/playhead/crdt"
)

// codecSamples are records of every kind, from empty to fully populated.
func codecSamples() []crdt.Record {
	full := cursorRec("vid", 1_234_567)
	full.Cursor.SeriesID = crdt.Meta{Value: "series-9", Ver: full.Cursor.Version}
	full.Cursor.NextVideo = crdt.Meta{Value: "vid-next", Ver: full.Cursor.Version}
	full.Cursor.ClearedAt = baseHLC - 5
	tomb := entryRec("vid", 99)
	tomb.Entry = tomb.Entry.Tombstone()
	neg := cursorRec("vid", -1) // not valid input, but storable
	odd := cursorRec("vid", 5)
	odd.Cursor.State = 200 // not valid either, but storable: written as V2
	return []crdt.Record{
		{Kind: crdt.KindCursor, Cursor: crdt.Cursor{Video: "vid"}},
		{Kind: crdt.KindEntry},
		{Kind: crdt.KindProfile},
		cursorRec("vid", 0),
		full,
		neg,
		odd,
		entryRec("vid", 60_000),
		tomb,
		profileRec(baseHLC),
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, rec := range codecSamples() {
		b, err := EncodeValue(rec)
		if err != nil {
			t.Fatalf("EncodeValue(%+v): %v", rec, err)
		}
		got, err := DecodeValue(rec.Kind, "vid", b)
		if err != nil || got != rec {
			t.Errorf("round trip of %+v:\n got %+v, %v", rec, got, err)
		}
		// Deterministic, and independent of Cursor.Video.
		again := rec
		again.Cursor.Video = "other"
		if b2, _ := EncodeValue(again); !bytes.Equal(b, b2) {
			t.Errorf("EncodeValue not deterministic: %x vs %x", b, b2)
		}
		// Every strict prefix is corrupt, and so is a trailing byte.
		for n := range len(b) {
			if _, err := DecodeValue(rec.Kind, "vid", b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("DecodeValue(%x) = %v, want ErrCorrupt", b[:n], err)
			}
		}
		if _, err := DecodeValue(rec.Kind, "vid", append(b, 0)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeValue with a trailing byte = %v, want ErrCorrupt", err)
		}
	}
}

func TestValueCorrupt(t *testing.T) {
	good, err := EncodeValue(cursorRec("v", 1))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		kind crdt.Kind
		b    []byte
	}{
		"unknown format":             {crdt.KindCursor, append([]byte{3}, good[1:]...)},
		"cursor format for an entry": {crdt.KindEntry, good},
		"unknown kind":               {9, good},
		"wrong kind":                 {crdt.KindProfile, good},
		"not msgpack":                {crdt.KindCursor, []byte{1, 0xc1}},
		"huge string":                {crdt.KindEntry, []byte{1, 0x9a, 0xdb, 0xff, 0xff, 0xff, 0xff}},
	} {
		if rec, err := DecodeValue(tc.kind, "v", tc.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeValue = %+v, %v; want ErrCorrupt", name, rec, err)
		}
	}
	if _, err := EncodeValue(crdt.Record{Kind: 0}); !errors.Is(err, ErrBadRecord) {
		t.Errorf("EncodeValue(kind 0) = %v, want ErrBadRecord", err)
	}
}

// TestCursorValueSize guards against waste in the value encoding. A
// realistic cursor (hex session, a 16-byte device id) takes 50 bytes in the
// compact form, 61 with a title set by the same write; msgpack took 94 and
// 135.
func TestCursorValueSize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		title bool
		max   int
	}{{"without title", false, 50}, {"with title", true, 61}} {
		rec := cursorRec("v", 1_234_567)
		if !tc.title {
			rec.Cursor.Title = crdt.Meta{}
		}
		b, err := EncodeValue(rec)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cursor value %s: %d bytes", tc.name, len(b))
		if len(b) > tc.max {
			t.Errorf("cursor value %s is %d bytes, more than %d", tc.name, len(b), tc.max)
		}
	}
}

// TestCursorV1StillDecodes: cursors stored as msgpack by earlier versions
// read back, and are rewritten in the compact form.
func TestCursorV1StillDecodes(t *testing.T) {
	for _, rec := range codecSamples() {
		if rec.Kind != crdt.KindCursor {
			continue
		}
		c := rec.Cursor
		v1, err := msgpack.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeValue(crdt.KindCursor, rec.Cursor.Video, append([]byte{valueFormatV1}, v1...))
		if err != nil || got.Cursor != rec.Cursor {
			t.Fatalf("v1 cursor decodes to %+v, %v; want %+v", got.Cursor, err, rec.Cursor)
		}
		b, _ := EncodeValue(got)
		if want := got.Cursor.State <= maxPackedState; isCursorV3(b[0]) != want {
			t.Fatalf("state %d re-encoded with first byte %#x", got.Cursor.State, b[0])
		}
	}
}

// TestCursorV2Truncated: every prefix of a valid compact cursor is
// refused as corrupt, without panicking.
func TestCursorV2Truncated(t *testing.T) {
	for _, rec := range codecSamples() {
		if rec.Kind != crdt.KindCursor {
			continue
		}
		b, _ := EncodeValue(rec)
		for n := 1; n < len(b); n++ {
			if _, err := DecodeValue(crdt.KindCursor, "v", b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%d of %d bytes: %v, want ErrCorrupt", n, len(b), err)
			}
		}
	}
}

// TestDecodeValueHugeLength: a corrupt value that declares a 4 GB string
// costs a bounded allocation, also when many are decoded in a row (a pooled
// msgpack decoder doubled its buffer on each).
func TestDecodeValueHugeLength(t *testing.T) {
	b := []byte{valueFormatV1, 0x9a, 0xdb, 0xff, 0xff, 0xff, 0xf0, 'x'} // entry whose Video is a str32 of ~4 GB
	const runs = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := DecodeValue(crdt.KindEntry, "", b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeValue = %v, want ErrCorrupt", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 8<<20 {
		t.Errorf("decoding a corrupt %d-byte value allocates %d MB", len(b), per>>20)
	}
}
