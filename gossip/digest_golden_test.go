package gossip

import (
	"encoding/binary"
	"testing"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/internal/bufstore"
	"github.com/playhead/playhead/gossip/internal/goldentest"
	"github.com/playhead/playhead/storage"
)

func be64(xs ...uint64) []byte {
	b := make([]byte, 0, 8*len(xs))
	for _, x := range xs {
		b = binary.BigEndian.AppendUint64(b, x)
	}
	return b
}

// TestGoldenDigests pins the hashes that replicas compare rather than
// decode: a record's anti-entropy bucket and its share of the bucket's
// digest (bufstore.BucketOf, bufstore.ItemHash), a whole partition digest as MsgDigest
// carries it, and an interested node's push mark (pushHash, the Sum of an
// InterestMark). A node that hashed differently would see every bucket
// differ and resend every record, or answer every interest renewal with a
// catch-up.
func TestGoldenDigests(t *testing.T) {
	puts := gPuts()
	// A tombstone-only cursor and a cursor whose key names the video: the
	// hash covers the encoded key and value, never the cursor's Video.
	puts = append(puts,
		storage.Put{Key: storage.Key{Partition: 7, Account: "a", Kind: crdt.KindCursor, ID: "v"},
			Record: crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{Video: "v", ClearedAt: gHLC(1_700_000_000_000, 1)}}})
	names := []string{"cursor", "entry", "profile", "cursor-cleared"}
	var cases []goldentest.Case
	for i, p := range puts {
		cases = append(cases,
			goldentest.Case{Name: "bucket-" + names[i], Bytes: be64(uint64(bufstore.BucketOf(p.Key)))},
			goldentest.Case{Name: "item-" + names[i], Bytes: be64(bufstore.ItemHash(p.Key, p.Record))})
	}

	// The digest of partition 0x0102 holding gPuts, as a node builds it
	// from its store.
	mem := storage.NewMem()
	if err := mem.Write(gPuts(), nil); err != nil {
		t.Fatal(err)
	}
	bs := bufstore.New(mem)
	if err := bs.RebuildDigests(1024); err != nil {
		t.Fatal(err)
	}
	d := *bs.Digest(0x0102)
	if g := gDigest(); string(be64(d[:]...)) != string(be64(g...)) {
		t.Errorf("RebuildDigests disagrees with the per-record hashes:\n got  %x\n want %x", d, g)
	}
	cases = append(cases, goldentest.Case{Name: "digest-partition", Bytes: be64(d[:]...)})

	m := pushMark{since: gHLC(1_750_000_000_000, 2), seen: map[string]crdt.HLC{"tt0903747-s01e01": gHLC(1_750_000_600_001, 7), "v2": 1}}
	im := m.interestMark()
	cases = append(cases,
		goldentest.Case{Name: "push-hash", Bytes: be64(pushHash("tt0903747-s01e01", gHLC(1_750_000_600_001, 7)))},
		goldentest.Case{Name: "push-hash-empty", Bytes: be64(pushHash("", 0))},
		goldentest.Case{Name: "interest-mark", Bytes: be64(uint64(im.Since), im.Sum)})

	goldentest.Check(t, "testdata/digest.golden",
		"Hashes that replicas compare (8-byte big-endian words). bucket-*: bucketOf, the\n"+
			"record's anti-entropy bucket (FNV-1a of the encoded key, splitmix64, mod 64);\n"+
			"item-*: itemHash, its XOR share of the bucket digest (FNV-1a of key, 0xff,\n"+
			"storage value with the cursor's Video cleared, splitmix64); digest-partition:\n"+
			"the 64 bucket digests of partition 0x0102 holding the replicate records of\n"+
			"msg_frames.golden, as MsgDigest sends them; push-hash: pushHash(video, hlc);\n"+
			"interest-mark: Since and Sum of an InterestMark over two videos.", cases)
}
