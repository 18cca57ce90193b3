package crdt_test

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/playhead/playhead/crdt"
)

// The hide register (crdt.Hide) against its model: whatever order and
// duplication the hides arrive in, a replica holds the largest, and a cursor
// is off "continue watching" exactly when its write is at or below some
// hide that replica has seen.

func TestMergeHideLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) crdt.Hide { return crdt.Hide{At: genHLC(3).Draw(t, "at")} })
		a, b, c := gen.Draw(t, "a"), gen.Draw(t, "b"), gen.Draw(t, "c")
		checkLaws(t, a, b, c, crdt.MergeHide)
	})
}

func TestHideModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(t, "hides")
		hides := make([]crdt.Hide, n)
		var model crdt.HLC
		for i := range hides {
			hides[i] = crdt.Hide{At: genHLC(6).Draw(t, "at")}
			model = max(model, hides[i].At)
		}
		// Two replicas see the hides in different orders, with duplicates.
		var r1, r2 crdt.Hide
		for _, i := range drawDelivery(t, n) {
			r1 = crdt.MergeHide(r1, hides[i])
		}
		for _, i := range drawDelivery(t, n) {
			r2 = crdt.MergeHide(hides[i], r2)
		}
		if r1 != r2 || r1.At != model {
			t.Fatalf("replicas hold %v and %v; the model says %v", r1.At, r2.At, model)
		}
		seq := genHLC(7).Draw(t, "cursorSeq")
		c := crdt.Cursor{Version: crdt.Version{Epoch: 1, Seq: seq, Session: "s"}}
		if got, want := r1.Hides(c), model != 0 && seq <= model; got != want {
			t.Fatalf("cursor seq %v under hide %v: hidden %v, want %v", seq, model, got, want)
		}
	})
}

// A report made after the hide shows the video again; a replay of a write
// made before it does not, whatever order the replicas merge them in.
func TestHideReportAfterShowsAgain(t *testing.T) {
	before := crdt.Cursor{Video: "v", PositionMs: 10, DurationMs: 100, State: crdt.StatePlaying,
		Version: crdt.Version{Epoch: 100, Seq: 150, Session: "s1"}}
	h := crdt.Hide{At: 200}
	if !h.Hides(before) {
		t.Fatal("the cursor the viewer hid is not hidden")
	}
	replay := before
	replay.Version.Seq = 180 // a late report of the same session, made before the hide
	if !h.Hides(crdt.MergeCursor(before, replay)) {
		t.Fatal("a replay of a write from before the hide shows the video again")
	}
	after := before
	after.Version = crdt.Version{Epoch: 100, Seq: 201, Session: "s1"}
	if h.Hides(crdt.MergeCursor(before, after)) {
		t.Fatal("a report made after the hide still hidden")
	}
	if (crdt.Hide{}).Hides(before) {
		t.Fatal("the zero register hides")
	}
}

func TestHidePurgeable(t *testing.T) {
	pol := crdt.DefaultPolicy()
	at := crdt.NewHLC(1_000_000, 0)
	h := crdt.Hide{At: at}
	ttl := pol.CursorTTL.Milliseconds()
	if h.Purgeable(pol, 1_000_000+ttl) {
		t.Fatal("purged while a cursor it hides can still be live")
	}
	if !h.Purgeable(pol, 1_000_000+ttl+time.Second.Milliseconds()) {
		t.Fatal("kept after every cursor it can hide has expired")
	}
	rec := crdt.Record{Kind: crdt.KindHide, Hide: h}
	if rec.Purgeable(crdt.Profile{}, pol, 1_000_000) {
		t.Fatal("Record.Purgeable ignores the hide register's own rule")
	}
}
