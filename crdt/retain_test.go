package crdt_test

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/playhead/playhead/crdt"
)

// TestRetainReplicasAgree: one replica merges every delta and never
// sweeps; another applies Retain after every merge (what a cluster replica
// does on arrival and in its sweep) and at random times in between, with
// time running forward. Readers see the same on both at every step (live or
// not, the position part and version; visible or not, the recorded point;
// metadata is not scrub-invariant, see TestScrubChangesNothingVisible), and
// at the end the
// rule is a function of the record, the registers and the time, so a
// record one replica dropped is purgeable on the other too.
func TestRetainReplicasAgree(t *testing.T) {
	pol := crdt.DefaultPolicy()
	pol.CursorTTL, pol.HistoryTTL = 3*time.Millisecond, 6*time.Millisecond
	ms := func(t *rapid.T, label string) crdt.HLC {
		return crdt.NewHLC(rapid.Int64Range(1, 12).Draw(t, label), uint16(rapid.IntRange(0, 1).Draw(t, label+"L")))
	}
	rapid.Check(t, func(t *rapid.T) {
		type delta struct {
			kind int // 0 cursor, 1 entry, 2 profile
			c    crdt.Cursor
			e    crdt.Entry
			p    crdt.Profile
		}
		var ds []delta
		for n := rapid.IntRange(1, 12).Draw(t, "deltas"); n > 0; n-- {
			switch rapid.IntRange(0, 5).Draw(t, "kind") {
			case 0:
				ds = append(ds, delta{kind: 2, p: crdt.Profile{ClearedAt: ms(t, "profileClear")}})
			case 1:
				ds = append(ds, delta{kind: 0, c: crdt.Cursor{ClearedAt: ms(t, "videoClear")}})
			default:
				u, _ := drawWrite(t, []string{"s", "t"})
				epoch := ms(t, "epoch")
				v := crdt.Version{Epoch: epoch, Seq: epoch + crdt.HLC(rapid.Uint64Range(0, 1<<17).Draw(t, "dseq")), Session: u.Session}
				u.Video = ""
				ds = append(ds, delta{kind: 0, c: u.CursorDelta(v, v.Seq)})
				if v.Session == "s" {
					ds = append(ds, delta{kind: 1, e: u.EntryDelta(v, v.Seq, rapid.Bool().Draw(t, "recorded"))})
				}
			}
		}
		for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(ds)-1), 0, len(ds)).Draw(t, "replays") {
			ds = append(ds, ds[i])
		}
		ds = rapid.Permutation(ds).Draw(t, "delivery")

		var prof crdt.Profile
		var cur, curR crdt.Cursor
		var ent, entR crdt.Entry
		var haveC, haveE bool // the retaining replica stores the record
		now := int64(0)
		retain := func() {
			if haveC {
				out, ok := crdt.Retain(cursorRec(curR), prof, 0, pol, now)
				curR, haveC = out.Cursor, ok
			}
			if haveE {
				vc := crdt.HLC(0)
				if haveC {
					vc = curR.ClearedAt
				}
				out, ok := crdt.Retain(entryRec(entR), prof, vc, pol, now)
				entR, haveE = out.Entry, ok
			}
		}
		for step, d := range ds {
			now += rapid.Int64Range(0, 2).Draw(t, "advance")
			switch d.kind {
			case 0:
				cur = crdt.MergeCursor(cur, d.c)
				if !haveC {
					curR = crdt.Cursor{}
				}
				curR, haveC = crdt.MergeCursor(curR, d.c), true
			case 1:
				ent = crdt.MergeEntry(ent, d.e)
				if !haveE {
					entR = crdt.Entry{}
				}
				entR, haveE = crdt.MergeEntry(entR, d.e), true
			case 2:
				prof = crdt.MergeProfile(prof, d.p)
			}
			retain()
			if rapid.Bool().Draw(t, "sweepLater") {
				now += rapid.Int64Range(0, 3).Draw(t, "sweepAdvance")
				retain()
			}
			if live, liveR := cur.Live(prof, pol, now), haveC && curR.Live(prof, pol, now); live != liveR && !expiredWinner(cur, curR, prof, liveR) || live && (cursorPoint(cur) != cursorPoint(curR) || cur.Version != curR.Version) {
				t.Fatalf("step %d at %d: readers see another cursor:\n plain    %+v (live %v)\n retained %+v (live %v, stored %v)", step, now, cur, live, curR, liveR, haveC)
			}
			vcR := crdt.HLC(0)
			if haveC {
				vcR = curR.ClearedAt
			}
			if vis, visR := ent.Visible(prof, cur.ClearedAt, pol, now), haveE && entR.Visible(prof, vcR, pol, now); vis != visR || vis && entryPoint(ent) != entryPoint(entR) {
				t.Fatalf("step %d at %d: readers see another entry:\n plain    %+v (visible %v)\n retained %+v (visible %v, stored %v)", step, now, ent, vis, entR, visR, haveE)
			}
		}
		// A record the sweeping replica dropped is purgeable on the replica
		// that never swept too, at the same time: the decision depends on
		// nothing the sweep erased, so replicas agree on it and
		// anti-entropy has nothing to bring back.
		now += rapid.Int64Range(0, 20).Draw(t, "final")
		retain()
		if _, ok := crdt.Retain(cursorRec(cur), prof, 0, pol, now); !haveC && ok {
			t.Fatalf("at %d the sweeping replica dropped cursor %+v, which the other keeps", now, cur)
		}
		if _, ok := crdt.Retain(entryRec(ent), prof, cur.ClearedAt, pol, now); !haveE && ok {
			t.Fatalf("at %d the sweeping replica dropped entry %+v, which the other keeps", now, ent)
		}
		// Retain is idempotent.
		if haveC {
			if again, ok := crdt.Retain(cursorRec(curR), prof, 0, pol, now); !ok || again.Cursor != curR {
				t.Fatalf("Retain is not idempotent on %+v: %+v", curR, again.Cursor)
			}
		}
	})
}

// expiredWinner is the one difference a purge makes to readers: a write of
// an older session (smaller epoch) with a newer seq loses the max-register
// to a newer session's write and is hidden by it, until that winner expires
// and is purged; a replica that purged the winner first then takes the
// loser (as the single-node service does when its sweep ran before the
// write). Never deleted content: the write shown is live and not deleted.
func expiredWinner(cur, curR crdt.Cursor, prof crdt.Profile, liveR bool) bool {
	return liveR && !cur.Deleted(prof) && !curR.Deleted(prof) && cur.Version.Seq < curR.Version.Seq
}
