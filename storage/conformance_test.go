package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/playhead/playhead/crdt"
)

// TestConformance runs the Store contract against every implementation.
func TestConformance(t *testing.T) {
	impls := []struct {
		name string
		open func(t *testing.T) Store
	}{
		{"Mem", func(*testing.T) Store { return NewMem() }},
		{"MemDeferred", func(*testing.T) Store { return NewMem(WithDeferredSync()) }},
		{"Pebble", func(t *testing.T) Store { return openMemPebble(t) }},
		// tiny caches, so that evictions happen inside the contract's tests
		{"CachedMem", func(*testing.T) Store { return NewCached(NewMem(), 3) }},
		{"CachedPebble", func(t *testing.T) Store { return NewCached(openMemPebble(t), 64) }},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) { runConformance(t, impl.open) })
	}
}

func runConformance(t *testing.T, open func(t *testing.T) Store) {
	t.Run("GetMissing", func(t *testing.T) {
		s := open(t)
		if rec, ok := mustGet(t, s, cursorKey(7, "a", "p", "v")); ok {
			t.Fatalf("got %+v from an empty store", rec)
		}
	})

	t.Run("PutGetEachKind", func(t *testing.T) {
		s := open(t)
		ck, ek, pk := cursorKey(7, "a", "p", "v1"), entryKey(7, "a", "p", "e1"), profileKey(7, "a", "p")
		c, e, pr := cursorRec("v1", 1000), entryRec("v1", 2000), profileRec(baseHLC)
		noVideo := c
		noVideo.Cursor.Video = "" // the key names the video
		mustWrite(t, s, []Put{put(ck, noVideo), put(ek, e), put(pk, pr)}, nil)
		for _, want := range []kv{{ck, c}, {ek, e}, {pk, pr}} {
			got, ok := mustGet(t, s, want.Key)
			if !ok || got != want.Rec {
				t.Errorf("Get(%v) = %+v, %v; want %+v", want.Key.Kind, got, ok, want.Rec)
			}
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := open(t)
		k := cursorKey(7, "a", "p", "v")
		mustWrite(t, s, []Put{put(k, cursorRec("v", 1))}, nil)
		mustWrite(t, s, []Put{put(k, cursorRec("v", 2))}, nil)
		if got, _ := mustGet(t, s, k); got != cursorRec("v", 2) {
			t.Fatalf("after overwrite got position %d, want 2", got.Cursor.PositionMs)
		}
		// Within one batch, the later put wins.
		mustWrite(t, s, []Put{put(k, cursorRec("v", 3)), put(k, cursorRec("v", 4))}, nil)
		if got, _ := mustGet(t, s, k); got != cursorRec("v", 4) {
			t.Fatalf("after batch got position %d, want 4", got.Cursor.PositionMs)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		k1, k2 := cursorKey(7, "a", "p", "v1"), cursorKey(7, "a", "p", "v2")
		mustWrite(t, s, []Put{put(k1, cursorRec("v1", 1)), put(k2, cursorRec("v2", 1))}, nil)
		mustWrite(t, s, nil, []Key{k1, cursorKey(7, "a", "p", "never-written")})
		if _, ok := mustGet(t, s, k1); ok {
			t.Error("deleted record still there")
		}
		if _, ok := mustGet(t, s, k2); !ok {
			t.Error("delete removed a neighbour")
		}
		// Puts apply before deletes: a key in both ends deleted.
		mustWrite(t, s, []Put{put(k2, cursorRec("v2", 5)), put(k1, cursorRec("v1", 5))}, []Key{k2})
		if _, ok := mustGet(t, s, k2); ok {
			t.Error("key put and deleted in one Write is present")
		}
		if got, ok := mustGet(t, s, k1); !ok || got.Cursor.PositionMs != 5 {
			t.Errorf("put in a batch with deletes: got %+v, %v", got, ok)
		}
	})

	t.Run("EmptyWrite", func(t *testing.T) {
		s := open(t)
		mustWrite(t, s, nil, nil)
	})

	t.Run("BadWriteIsAtomic", func(t *testing.T) {
		s := open(t)
		good := cursorKey(7, "a", "p", "good")
		old := cursorKey(7, "a", "p", "old")
		mustWrite(t, s, []Put{put(old, cursorRec("old", 1))}, nil)
		long := strings.Repeat("x", MaxIDLen+1)
		for _, tc := range []struct {
			name    string
			puts    []Put
			deletes []Key
			want    error
		}{
			{"long id", []Put{put(good, cursorRec("good", 1)), put(cursorKey(7, "a", "p", long), cursorRec("", 1))}, []Key{old}, ErrBadKey},
			{"long delete", []Put{put(good, cursorRec("good", 1))}, []Key{old, cursorKey(7, long, "p", "v")}, ErrBadKey},
			{"kind mismatch", []Put{put(good, cursorRec("good", 1)), put(entryKey(7, "a", "p", "e"), cursorRec("e", 1))}, []Key{old}, ErrBadRecord},
			{"video mismatch", []Put{put(good, cursorRec("good", 1)), put(cursorKey(7, "a", "p", "x"), cursorRec("y", 1))}, []Key{old}, ErrBadRecord},
			{"unknown kind", []Put{put(good, cursorRec("good", 1)), {Key: Key{Kind: 9}, Record: crdt.Record{Kind: 9}}}, []Key{old}, ErrBadKey},
		} {
			if err := s.Write(tc.puts, tc.deletes); !errors.Is(err, tc.want) {
				t.Errorf("%s: Write = %v, want %v", tc.name, err, tc.want)
			}
			if _, ok := mustGet(t, s, good); ok {
				t.Errorf("%s: failed Write applied a put", tc.name)
			}
			if _, ok := mustGet(t, s, old); !ok {
				t.Errorf("%s: failed Write applied a delete", tc.name)
			}
		}
	})

	t.Run("BadKey", func(t *testing.T) {
		s := open(t)
		long := strings.Repeat("x", MaxIDLen+1)
		max := strings.Repeat("x", MaxIDLen)
		for _, k := range []Key{
			cursorKey(1, long, "p", "v"),
			cursorKey(1, "a", long, "v"),
			cursorKey(1, "a", "p", long),
			{Partition: 1, Account: "a", Profile: "p", Kind: 0},
			{Partition: 1, Account: "a", Profile: "p", Kind: 5},
			{Partition: 1, Account: "a", Profile: "p", Kind: crdt.KindProfile, ID: "x"},
		} {
			if _, _, err := s.Get(k); !errors.Is(err, ErrBadKey) {
				t.Errorf("Get(%.40q…) = %v, want ErrBadKey", fmt.Sprint(k), err)
			}
		}
		nop := func(Key, crdt.Record) error { return nil }
		if err := s.ScanProfile(1, long, "p", 0, nop); !errors.Is(err, ErrBadKey) {
			t.Errorf("ScanProfile(long account) = %v, want ErrBadKey", err)
		}
		if err := s.ScanProfile(1, "a", "p", 9, nop); !errors.Is(err, ErrBadKey) {
			t.Errorf("ScanProfile(kind 9) = %v, want ErrBadKey", err)
		}
		// The longest ids are fine.
		k := cursorKey(1, max, max, max)
		mustWrite(t, s, []Put{put(k, cursorRec(max, 1))}, nil)
		if got, ok := mustGet(t, s, k); !ok || got != cursorRec(max, 1) {
			t.Errorf("max-length ids: got %v, %v", got, ok)
		}
	})

	t.Run("ScanProfileKinds", func(t *testing.T) {
		s := open(t)
		pk := profileKey(5, "acct", "prof")
		c1, c2 := cursorKey(5, "acct", "prof", "v"), cursorKey(5, "acct", "prof", "v1") // "v" is a prefix of "v1"
		e1, e2 := entryKey(5, "acct", "prof", "e1"), entryKey(5, "acct", "prof", "e2")
		// Written out of order, with neighbours that must not show up.
		mustWrite(t, s, []Put{
			put(e2, entryRec("v", 2)), put(c2, cursorRec("v1", 2)), put(pk, profileRec(9)),
			put(c1, cursorRec("v", 1)), put(e1, entryRec("v", 1)),
			put(profileKey(5, "acct", "prof2"), profileRec(1)),
			put(cursorKey(5, "acct", "pro", "fv"), cursorRec("fv", 1)),
			put(cursorKey(5, "acc", "tprof", "v"), cursorRec("v", 1)),
			put(cursorKey(4, "acct", "prof", "v"), cursorRec("v", 1)),
			put(cursorKey(6, "acct", "prof", "v"), cursorRec("v", 1)),
		}, nil)
		keysOf := func(kvs []kv) []Key {
			var ks []Key
			for _, x := range kvs {
				ks = append(ks, x.Key)
			}
			return ks
		}
		for _, tc := range []struct {
			kind crdt.Kind
			want []Key
		}{
			{0, []Key{pk, c1, c2, e1, e2}},
			{crdt.KindProfile, []Key{pk}},
			{crdt.KindCursor, []Key{c1, c2}},
			{crdt.KindEntry, []Key{e1, e2}},
		} {
			got := keysOf(scanProfile(t, s, 5, "acct", "prof", tc.kind))
			if !slices.Equal(got, tc.want) {
				t.Errorf("ScanProfile kind %v:\n got %v\nwant %v", tc.kind, got, tc.want)
			}
		}
		for _, x := range scanProfile(t, s, 5, "acct", "prof", 0) {
			if want, _ := mustGet(t, s, x.Key); x.Rec != want {
				t.Errorf("scan of %v gave %+v, Get gives %+v", x.Key, x.Rec, want)
			}
		}
	})

	t.Run("Isolation", func(t *testing.T) {
		s := open(t)
		// Profiles whose ids are prefixes of each other, in the first, a
		// middle and the last partition, and their neighbours.
		type prof struct{ account, profile string }
		profs := []prof{
			{"a", "bc"}, {"ab", "c"}, {"abc", ""}, {"", "abc"}, {"a", "b"}, {"a", "b\x00"},
			{"a", "b\xff"}, {"a\x00", "b"}, {"\xff", "\xff"}, {strings.Repeat("\xff", MaxIDLen), strings.Repeat("\xff", MaxIDLen)},
		}
		parts := []uint16{0, 1, 2, 0x7fff, 0x8000, 0xfffe, 0xffff}
		var puts []Put
		for _, p := range parts {
			for i, pr := range profs {
				puts = append(puts,
					put(profileKey(p, pr.account, pr.profile), profileRec(crdt.HLC(i+1))),
					put(cursorKey(p, pr.account, pr.profile, ""), cursorRec("", int64(i))),
					put(cursorKey(p, pr.account, pr.profile, "v"), cursorRec("v", int64(i))),
					put(cursorKey(p, pr.account, pr.profile, "\xff"), cursorRec("\xff", int64(i))),
					put(entryKey(p, pr.account, pr.profile, "e"), entryRec("v", int64(i))),
				)
			}
		}
		// Write in a few batches, in reverse, so that write order is not key order.
		slices.Reverse(puts)
		for b := range slices.Chunk(puts, 50) {
			mustWrite(t, s, b, nil)
		}
		for _, p := range parts {
			got := scanPartition(t, s, p)
			if len(got) != 5*len(profs) {
				t.Errorf("partition %d: %d records, want %d", p, len(got), 5*len(profs))
			}
			checkSortedIn(t, got, func(k Key) bool { return k.Partition == p })
			for _, pr := range profs {
				got := scanProfile(t, s, p, pr.account, pr.profile, 0)
				if len(got) != 5 {
					t.Errorf("profile %q/%q in %d: %d records, want 5", pr.account, pr.profile, p, len(got))
				}
				checkSortedIn(t, got, func(k Key) bool {
					return k.Partition == p && k.Account == pr.account && k.Profile == pr.profile
				})
				for _, kind := range []crdt.Kind{crdt.KindProfile, crdt.KindCursor, crdt.KindEntry} {
					got := scanProfile(t, s, p, pr.account, pr.profile, kind)
					want := map[crdt.Kind]int{crdt.KindProfile: 1, crdt.KindCursor: 3, crdt.KindEntry: 1}[kind]
					if len(got) != want {
						t.Errorf("profile %q/%q in %d, kind %v: %d records, want %d", pr.account, pr.profile, p, kind, len(got), want)
					}
					checkSortedIn(t, got, func(k Key) bool {
						return k.Partition == p && k.Account == pr.account && k.Profile == pr.profile && k.Kind == kind
					})
				}
			}
		}
		if got := scanPartition(t, s, 3); len(got) != 0 {
			t.Errorf("empty partition 3 has %d records", len(got))
		}
	})

	t.Run("ScanStopsOnError", func(t *testing.T) {
		s := open(t)
		var puts []Put
		for i := range 5 {
			v := fmt.Sprint("v", i)
			puts = append(puts, put(cursorKey(3, "a", "p", v), cursorRec(v, 1)))
		}
		mustWrite(t, s, puts, nil)
		stop := errors.New("stop")
		for name, scan := range map[string]func(func(Key, crdt.Record) error) error{
			"profile":   func(fn func(Key, crdt.Record) error) error { return s.ScanProfile(3, "a", "p", 0, fn) },
			"partition": func(fn func(Key, crdt.Record) error) error { return s.ScanPartition(3, fn) },
		} {
			n := 0
			err := scan(func(Key, crdt.Record) error {
				n++
				if n == 2 {
					return stop
				}
				return nil
			})
			if err != stop || n != 2 {
				t.Errorf("%s scan: err %v after %d calls; want stop after 2", name, err, n)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		const writers, writes = 4, 25
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range writes {
					v := fmt.Sprintf("v%d-%d", g, i)
					if err := s.Write([]Put{put(cursorKey(9, "a", "p", v), cursorRec(v, int64(i)))}, nil); err != nil {
						t.Error(err)
						return
					}
				}
			})
			wg.Go(func() {
				for range writes {
					if err := s.ScanPartition(9, func(Key, crdt.Record) error { return nil }); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := scanPartition(t, s, 9); len(got) != writers*writes {
			t.Errorf("%d records after concurrent writes, want %d", len(got), writers*writes)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		k := cursorKey(1, "a", "p", "v")
		mustWrite(t, s, []Put{put(k, cursorRec("v", 1))}, nil)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		nop := func(Key, crdt.Record) error { return nil }
		for name, err := range map[string]error{
			"Get":           func() error { _, _, err := s.Get(k); return err }(),
			"Write":         s.Write([]Put{put(k, cursorRec("v", 2))}, nil),
			"empty Write":   s.Write(nil, nil),
			"ScanProfile":   s.ScanProfile(1, "a", "p", 0, nop),
			"ScanPartition": s.ScanPartition(1, nop),
			"Close":         s.Close(),
		} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
	})
}

// checkSortedIn checks that kvs are in strictly increasing encoded-key
// order and all satisfy in.
func checkSortedIn(t *testing.T, kvs []kv, in func(Key) bool) {
	t.Helper()
	var prev []byte
	for _, x := range kvs {
		if !in(x.Key) {
			t.Errorf("scan leaked %+v", x.Key)
		}
		enc, err := EncodeKey(x.Key)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && bytes.Compare(prev, enc) >= 0 {
			t.Errorf("scan out of order: %x then %x", prev, enc)
		}
		prev = enc
	}
}
