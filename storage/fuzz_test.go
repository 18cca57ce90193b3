package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/playhead/playhead/crdt"
)

// FuzzDecodeValue: arbitrary bytes under any kind never panic; what decodes
// re-encodes to bytes that decode to the same record, and re-encoding is a
// fixed point. The seed corpus (testdata/fuzz/FuzzDecodeValue) holds valid
// encodings of each kind.
func FuzzDecodeValue(f *testing.F) {
	for _, rec := range codecSamples() {
		b, err := EncodeValue(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(rec.Kind), b)
	}
	f.Fuzz(func(t *testing.T, kind byte, b []byte) {
		rec, err := DecodeValue(crdt.Kind(kind), "vid", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeValue error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		enc, err := EncodeValue(rec)
		if err != nil {
			t.Fatalf("EncodeValue of decoded %+v: %v", rec, err)
		}
		rec2, err := DecodeValue(crdt.Kind(kind), "vid", enc)
		if err != nil || rec2 != rec {
			t.Fatalf("re-encoding %+v decodes to %+v, %v", rec, rec2, err)
		}
		if enc2, _ := EncodeValue(rec2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not deterministic: %x then %x", enc, enc2)
		}
	})
}

// FuzzDecodeKey: arbitrary bytes never panic, and the encoding is
// canonical: what decodes re-encodes to the same bytes.
func FuzzDecodeKey(f *testing.F) {
	for _, k := range []Key{
		cursorKey(1, "acct", "prof", "video"),
		entryKey(0xffff, "a", "bc", "0123456789abcdef0123456789abcdef"),
		profileKey(0, "", ""),
	} {
		b, err := EncodeKey(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeKey(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeKey error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		enc, err := EncodeKey(k)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("DecodeKey(%x) = %+v, which encodes to %x, %v", b, k, enc, err)
		}
	})
}
