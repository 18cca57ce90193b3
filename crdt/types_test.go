package crdt_test

import (
	"testing"

	"github.com/playhead/playhead/crdt"
)

// Wire enums: the values are stored on disk and sent between nodes, so their
// numbers and names are pinned here.

func TestStateNames(t *testing.T) {
	for _, c := range []struct {
		s    crdt.State
		num  uint8
		name string
	}{
		{crdt.StatePlaying, 1, "playing"},
		{crdt.StatePaused, 2, "paused"},
		{crdt.StateStopped, 3, "stopped"},
		{crdt.StateCompleted, 4, "completed"},
	} {
		if uint8(c.s) != c.num || c.s.String() != c.name || !c.s.Valid() {
			t.Errorf("state %d: %q valid %v; want %d %q valid", c.s, c.s.String(), c.s.Valid(), c.num, c.name)
		}
		if got, ok := crdt.ParseState(c.name); !ok || got != c.s {
			t.Errorf("ParseState(%q) = %v, %v", c.name, got, ok)
		}
	}
	if got, ok := crdt.ParseState(""); !ok || got != crdt.StatePlaying {
		t.Errorf(`ParseState("") = %v, %v; the API default is playing`, got, ok)
	}
	for _, bad := range []string{"Playing", "unknown", "state(0)", "0", "1", " paused"} {
		if _, ok := crdt.ParseState(bad); ok {
			t.Errorf("ParseState(%q) accepted", bad)
		}
	}
	if crdt.StateUnknown.Valid() || crdt.State(5).Valid() || crdt.State(5).String() != "state(5)" {
		t.Error("unknown states must be invalid and print their number")
	}
}

func TestKindNames(t *testing.T) {
	for _, c := range []struct {
		k    crdt.Kind
		num  uint8
		name string
	}{{crdt.KindProfile, 1, "profile"}, {crdt.KindCursor, 2, "cursor"}, {crdt.KindEntry, 3, "entry"}, {crdt.KindHide, 4, "hide"}} {
		if uint8(c.k) != c.num || c.k.String() != c.name || !c.k.Valid() {
			t.Errorf("kind %d: %q valid %v; want %d %q valid", c.k, c.k.String(), c.k.Valid(), c.num, c.name)
		}
	}
	for _, k := range []crdt.Kind{0, 5, 255} {
		if k.Valid() || k.String() == "" {
			t.Errorf("kind %d: valid %v, name %q", k, k.Valid(), k.String())
		}
	}
}
