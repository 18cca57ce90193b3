package crdt_test

import (
	"testing"

	"github.com/playhead/playhead/crdt"
	"pgregory.net/rapid"
)

// Shown never shows a metadata field whose write is deleted, shows every
// other field unchanged, and changes nothing else.
func TestCursorShownHidesDeletedMeta(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCursor().Draw(t, "cursor")
		p := genProfile().Draw(t, "profile")
		s := c.Shown(p)
		clear := max(c.ClearedAt, p.ClearedAt)
		for i, pair := range [][2]crdt.Meta{{c.Title, s.Title}, {c.SeriesID, s.SeriesID}, {c.NextVideo, s.NextVideo}} {
			in, out := pair[0], pair[1]
			deleted := !in.Ver.IsZero() && in.Ver.Seq <= clear
			if deleted && out != (crdt.Meta{}) {
				t.Fatalf("field %d: deleted meta %+v shown (clear %d)", i, in, clear)
			}
			if !deleted && out != in {
				t.Fatalf("field %d: live meta %+v changed to %+v", i, in, out)
			}
		}
		s.Title, s.SeriesID, s.NextVideo = c.Title, c.SeriesID, c.NextVideo
		if s != c {
			t.Fatalf("Shown changed more than metadata: %+v → %+v", c, s)
		}
	})
}

func TestEntryShownHidesDeletedTitle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := genEntry().Draw(t, "entry")
		p := genProfile().Draw(t, "profile")
		vc := genHLC(1<<20).Draw(t, "videoClearedAt")
		s := e.Shown(p, vc)
		ver := e.Title.Ver
		deleted := !ver.IsZero() && (!e.Deleted.Less(ver) || ver.Seq <= max(p.ClearedAt, vc))
		if deleted && s.Title != (crdt.Meta{}) {
			t.Fatalf("deleted title %+v shown", e.Title)
		}
		if !deleted && s.Title != e.Title {
			t.Fatalf("live title %+v changed to %+v", e.Title, s.Title)
		}
		s.Title = e.Title
		if s != e {
			t.Fatalf("Shown changed more than the title")
		}
	})
}

func TestCheckSession(t *testing.T) {
	known := crdt.Version{Epoch: 100, Seq: 200, Session: "s"}
	for _, tc := range []struct {
		epoch crdt.HLC
		ok    bool
	}{
		{0, true},    // node stamps the known epoch
		{50, true},   // an old epoch: a stale replay, merge refuses it
		{100, true},  // the same epoch
		{150, false}, // a new epoch below the last seq
		{200, true},  // a new epoch at the last seq
		{201, true},
	} {
		err := crdt.Update{Epoch: tc.epoch}.CheckSession(known)
		if (err == nil) != tc.ok {
			t.Errorf("epoch %d: err %v, want ok=%v", tc.epoch, err, tc.ok)
		}
	}
	if err := (crdt.Update{Epoch: 5}).CheckSession(crdt.Version{}); err != nil {
		t.Errorf("new session: %v", err)
	}
}
