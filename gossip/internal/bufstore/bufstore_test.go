package bufstore

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/storage"
)

// The digests a Store maintains write by write equal the digests
// recomputed from the store's contents, whatever the writes and deletes.
func TestIncrementalDigestMatchesRebuild(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mem := storage.NewMem()
		b := New(mem)
		b.FlushHook = func() error {
			puts, dels := b.Pending()
			return mem.Write(puts, dels)
		}
		keys := make([]storage.Key, 12)
		for i := range keys {
			keys[i] = storage.Key{Partition: uint16(i % 3), Account: "a", Profile: fmt.Sprint("p", i%4),
				Kind: crdt.KindCursor, ID: fmt.Sprint("v", i)}
		}
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			k := keys[rapid.IntRange(0, len(keys)-1).Draw(t, "key")]
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				b.Write(nil, []storage.Key{k})
			case 1:
				b.FlushHook()
			default:
				rec := crdt.Record{Kind: crdt.KindCursor, Cursor: crdt.Cursor{
					PositionMs: rapid.Int64Range(0, 100).Draw(t, "pos"), DurationMs: 100,
					Version: crdt.Version{Epoch: 1, Seq: crdt.HLC(rapid.Uint64Range(1, 50).Draw(t, "seq")), Session: "s"},
				}}
				b.Write([]storage.Put{{Key: k, Record: rec}}, nil)
			}
		}
		if rapid.Bool().Draw(t, "flush") {
			b.FlushHook() // else the rebuild must count the overlay too
		}
		got := map[uint16][Buckets]uint64{}
		for p := range 3 {
			got[uint16(p)] = *b.Digest(uint16(p))
		}
		if err := b.RebuildDigests(3); err != nil {
			t.Fatal(err)
		}
		for p := range 3 {
			if want := *b.Digest(uint16(p)); got[uint16(p)] != want {
				t.Fatalf("partition %d: incremental digest differs from the rebuilt one", p)
			}
		}
	})
}
