package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/playhead/playhead/crdt"
)

func TestKeyRoundTrip(t *testing.T) {
	max := strings.Repeat("\xff", MaxIDLen)
	for _, k := range []Key{
		cursorKey(0, "", "", ""),
		cursorKey(1, "acct", "prof", "video"),
		entryKey(0xffff, max, max, max),
		profileKey(0x1234, "a", "b"),
		cursorKey(7, "a\x00b", "\x00", "\x00\xff"),
	} {
		b, err := EncodeKey(k)
		if err != nil {
			t.Fatalf("EncodeKey(%+v): %v", k, err)
		}
		got, err := DecodeKey(b)
		if err != nil || got != k {
			t.Errorf("DecodeKey(EncodeKey(%+v)) = %+v, %v", k, got, err)
		}
		// Every prefix that cuts before the kind byte is corrupt; cuts in
		// the id are other valid keys.
		idStart := len(b) - len(k.ID)
		for n := range idStart {
			if _, err := DecodeKey(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("DecodeKey(%x) = %v, want ErrCorrupt", b[:n], err)
			}
		}
	}
}

func TestKeyLayout(t *testing.T) {
	b, err := EncodeKey(cursorKey(0x0102, "ab", "c", "vid"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x01, 0x02, 2, 'a', 'b', 1, 'c', byte(crdt.KindCursor), 'v', 'i', 'd'}
	if !bytes.Equal(b, want) {
		t.Errorf("EncodeKey = %x, want %x", b, want)
	}
}

func TestDecodeKeyCorrupt(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{0, 1},
		{0, 1, 5, 'a'},            // account overruns
		{0, 1, 1, 'a', 3, 'b', 2}, // profile overruns
		{0, 1, 0, 0},              // no kind
		{0, 1, 0, 0, 0},           // kind 0
		{0, 1, 0, 0, 5, 'x'},      // unknown kind
		{0, 1, 0, 0, byte(crdt.KindProfile), 'x'}, // profile key with an id
		append([]byte{0, 1, 0, 0, byte(crdt.KindCursor)}, strings.Repeat("x", MaxIDLen+1)...),
	} {
		if k, err := DecodeKey(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeKey(%x) = %+v, %v; want ErrCorrupt", b, k, err)
		}
	}
}

func TestPartitionBoundsLast(t *testing.T) {
	lo, hi := PartitionBounds(0xffff)
	if !bytes.Equal(lo, []byte{0xff, 0xff}) || hi != nil {
		t.Errorf("PartitionBounds(0xffff) = %x, %x; want ffff, nil", lo, hi)
	}
	max := strings.Repeat("\xff", MaxIDLen)
	if lo, hi, err := ProfileBounds(0xffff, max, max, 0); err != nil || hi != nil || len(lo) != 4+2*MaxIDLen {
		t.Errorf("ProfileBounds(last, all 0xff) = %x, %x, %v; want unbounded", lo, hi, err)
	}
}

// TestKeyOrder checks on random keys that the bounds select exactly the
// keys they should, so that partitions, profiles and kinds are contiguous.
func TestKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Small alphabets make prefixes and collisions likely.
	id := func() string {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = "ab\x00\xff"[rng.IntN(4)]
		}
		return string(b)
	}
	var keys []Key
	var encs [][]byte
	for range 2000 {
		k := Key{Partition: []uint16{0, 1, 0xfffe, 0xffff}[rng.IntN(4)], Account: id(), Profile: id(), Kind: crdt.Kind(1 + rng.IntN(3))}
		if k.Kind != crdt.KindProfile {
			k.ID = id()
		}
		b, err := EncodeKey(k)
		if err != nil {
			t.Fatal(err)
		}
		keys, encs = append(keys, k), append(encs, b)
	}
	in := func(b, lo, hi []byte) bool {
		return bytes.Compare(b, lo) >= 0 && (hi == nil || bytes.Compare(b, hi) < 0)
	}
	for _, q := range keys[:200] {
		plo, phi := PartitionBounds(q.Partition)
		for _, kind := range []crdt.Kind{0, crdt.KindProfile, crdt.KindCursor, crdt.KindEntry} {
			lo, hi, err := ProfileBounds(q.Partition, q.Account, q.Profile, kind)
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				want := k.Partition == q.Partition && k.Account == q.Account && k.Profile == q.Profile && (kind == 0 || k.Kind == kind)
				if got := in(encs[i], lo, hi); got != want {
					t.Fatalf("key %+v in ProfileBounds(%+v, kind %v) = %v, want %v", k, q, kind, got, want)
				}
			}
		}
		for i, k := range keys {
			if got, want := in(encs[i], plo, phi), k.Partition == q.Partition; got != want {
				t.Fatalf("key %+v in PartitionBounds(%d) = %v, want %v", k, q.Partition, got, want)
			}
		}
	}
	// Sorted by encoding, keys sort by partition first.
	slices.SortFunc(encs, bytes.Compare)
	prev := -1
	for _, b := range encs {
		k, err := DecodeKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if int(k.Partition) < prev {
			t.Fatalf("partition %d after %d in key order", k.Partition, prev)
		}
		prev = int(k.Partition)
	}
}
