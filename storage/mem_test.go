package storage

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMemCrashDefault(t *testing.T) {
	m := NewMem()
	k := cursorKey(1, "a", "p", "v")
	mustWrite(t, m, []Put{put(k, cursorRec("v", 1))}, nil)
	c := m.Crash(func() bool { t.Fatal("keep called for a durable Write"); return false })
	if got, ok := mustGet(t, c, k); !ok || got != cursorRec("v", 1) {
		t.Fatalf("durable Write lost in crash: %+v, %v", got, ok)
	}
	// The clone is independent of the original.
	mustWrite(t, c, nil, []Key{k})
	if _, ok := mustGet(t, m, k); !ok {
		t.Fatal("writing the clone changed the original")
	}
}

func TestMemCrashDeferred(t *testing.T) {
	m := NewMem(WithDeferredSync())
	ka, kb, kc, kd := cursorKey(1, "a", "p", "a"), cursorKey(1, "a", "p", "b"), cursorKey(1, "a", "p", "c"), cursorKey(2, "a", "p", "d")
	mustWrite(t, m, []Put{put(ka, cursorRec("a", 1)), put(kb, cursorRec("b", 1))}, nil) // A
	m.Sync()
	mustWrite(t, m, []Put{put(kc, cursorRec("c", 2)), put(kd, cursorRec("d", 2))}, []Key{ka}) // B
	mustWrite(t, m, []Put{put(kb, cursorRec("b", 3)), put(kc, cursorRec("c", 3))}, nil)       // C
	mustWrite(t, m, []Put{put(ka, cursorRec("a", 4))}, []Key{kd})                             // D
	// Everything is visible before it is durable.
	if got, _ := mustGet(t, m, ka); got.Cursor.PositionMs != 4 {
		t.Fatalf("unsynced Write not visible: %+v", got)
	}

	state := func(s Store) map[Key]int64 {
		out := map[Key]int64{}
		for _, p := range []uint16{1, 2} {
			for _, x := range scanPartition(t, s, p) {
				out[x.Key] = x.Rec.Cursor.PositionMs
			}
		}
		return out
	}
	for _, tc := range []struct {
		keep []bool // for B, C, D
		want map[Key]int64
	}{
		{[]bool{false, false, false}, map[Key]int64{ka: 1, kb: 1}},
		{[]bool{true, false, false}, map[Key]int64{kb: 1, kc: 2, kd: 2}},
		{[]bool{false, true, false}, map[Key]int64{ka: 1, kb: 3, kc: 3}},
		{[]bool{true, false, true}, map[Key]int64{ka: 4, kb: 1, kc: 2}},
		{[]bool{true, true, true}, state(m)},
	} {
		calls := 0
		c := m.Crash(func() bool { calls++; return tc.keep[calls-1] })
		if calls != 3 {
			t.Errorf("keep %v: called %d times, want once per unsynced Write (3)", tc.keep, calls)
		}
		if got := state(c); !maps.Equal(got, tc.want) {
			t.Errorf("keep %v: after crash %v, want %v", tc.keep, got, tc.want)
		}
		// What survived a crash is durable: a second crash keeps it all.
		if got := state(c.Crash(func() bool { return false })); !maps.Equal(got, tc.want) {
			t.Errorf("keep %v: second crash lost data: %v", tc.keep, got)
		}
	}

	m.Sync()
	if got := state(m.Crash(func() bool { t.Fatal("keep called after Sync"); return false })); !maps.Equal(got, state(m)) {
		t.Errorf("crash after Sync: %v, want %v", got, state(m))
	}
}

// TestMemCrashModel checks deferred-mode crashes against a model: random
// Writes and Syncs, then a crash with random choices; the result must be the
// synced state plus exactly the kept batches, applied whole and in order.
func TestMemCrashModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	for round := range 50 {
		m := NewMem(WithDeferredSync())
		type batch struct {
			puts []Put
			dels []Key
		}
		var synced, unsynced []batch
		for range rng.IntN(20) {
			var b batch
			for range 1 + rng.IntN(3) {
				v := fmt.Sprint("v", rng.IntN(6))
				b.puts = append(b.puts, put(cursorKey(uint16(rng.IntN(2)), "a", "p", v), cursorRec(v, rng.Int64N(1000))))
			}
			for range rng.IntN(2) {
				b.dels = append(b.dels, cursorKey(uint16(rng.IntN(2)), "a", "p", fmt.Sprint("v", rng.IntN(6))))
			}
			mustWrite(t, m, b.puts, b.dels)
			unsynced = append(unsynced, b)
			if rng.IntN(4) == 0 {
				m.Sync()
				synced, unsynced = append(synced, unsynced...), nil
			}
		}
		var kept []bool
		c := m.Crash(func() bool { k := rng.IntN(2) == 0; kept = append(kept, k); return k })
		if len(kept) != len(unsynced) {
			t.Fatalf("round %d: keep called %d times for %d unsynced Writes", round, len(kept), len(unsynced))
		}
		model := NewMem()
		for _, b := range synced {
			mustWrite(t, model, b.puts, b.dels)
		}
		for i, b := range unsynced {
			if kept[i] {
				mustWrite(t, model, b.puts, b.dels)
			}
		}
		for _, p := range []uint16{0, 1} {
			if got, want := scanPartition(t, c, p), scanPartition(t, model, p); !slices.Equal(got, want) {
				t.Fatalf("round %d partition %d: crash state\n%v\nwant\n%v", round, p, got, want)
			}
		}
	}
}
