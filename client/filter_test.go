package client

import (
	"testing"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

func cur(video, session string, epoch, seq, updated uint64) *Cursor {
	return &Cursor{Video: video, Session: session, Epoch: crdt.HLC(epoch), Seq: crdt.HLC(seq), UpdatedHLC: crdt.HLC(updated)}
}

// TestEventFilter: cursor versions already seen are dropped per video;
// Newest follows updated_hlc and the resume point (After) does not; a clear
// makes older versions news again.
func TestEventFilter(t *testing.T) {
	f := NewEventFilter(5)
	steps := []struct {
		ev    Event
		want  bool
		after crdt.HLC
	}{
		{Event{Type: api.EventCursor, Cursor: cur("ep-1", "a", 10, 10, 100)}, true, 100},
		{Event{Type: api.EventCursor, Cursor: cur("ep-1", "a", 10, 10, 100)}, false, 100}, // duplicate
		{Event{Type: api.EventCursor, Cursor: cur("ep-1", "a", 10, 9, 90)}, false, 100},   // older
		{Event{Type: api.EventCursor, Cursor: cur("ep-1", "b", 10, 10, 101)}, true, 101},  // session breaks the tie
		{Event{Type: api.EventCursor, Cursor: cur("ep-2", "a", 1, 1, 102)}, true, 102},    // another video
		{Event{Type: api.EventTakeover, Video: "ep-1", Session: "a", By: &api.TakeoverBy{Device: "phone", Session: "b"}}, true, 102},
		{Event{Type: api.EventCleared, Video: "ep-1", Entry: "e1"}, true, 102}, // one entry: cursor stays
		{Event{Type: api.EventCursor, Cursor: cur("ep-1", "a", 10, 10, 100)}, false, 102},
		{Event{Type: api.EventCleared, Video: "ep-1"}, true, 102},
		{Event{Type: api.EventCursor, Cursor: cur("ep-1", "a", 10, 10, 100)}, true, 102}, // news after the clear
		{Event{Type: api.EventCursor, Cursor: cur("ep-2", "a", 1, 1, 102)}, false, 102},
		{Event{Type: api.EventCleared}, true, 102}, // everything
		{Event{Type: api.EventCursor, Cursor: cur("ep-2", "a", 1, 1, 102)}, true, 102},
		{Event{Type: "ack"}, false, 102},
		{Event{Type: api.EventCursor}, false, 102}, // no cursor
	}
	for i, s := range steps {
		if got := f.Accept(&s.ev); got != s.want {
			t.Fatalf("step %d (%+v): accept %v, want %v", i, s.ev, got, s.want)
		}
		if f.Newest() != s.after {
			t.Fatalf("step %d: newest %v, want %v", i, f.Newest(), s.after)
		}
		if f.After() != 5 {
			t.Fatalf("step %d: resume point %v moved from 5", i, f.After())
		}
	}
	f.Advance(50)
	if f.Newest() != 102 || f.After() != 5 {
		t.Fatal("Advance lowered Newest or moved the resume point")
	}
	f.Start(crdt.NewHLC(100_000, 3))
	if f.After() != crdt.NewHLC(100_000-ResumeHoldBack.Milliseconds(), 0) {
		t.Fatalf("Start: resume point %v, want the first contact's HLC held back by %v", f.After(), ResumeHoldBack)
	}
}
