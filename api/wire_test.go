package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/playhead/playhead/crdt"
)

// TestEventJSON: each push event marshals to exactly the API's shape, and
// the API's examples decode.
func TestEventJSON(t *testing.T) {
	c := &Cursor{Video: "ep-1", PositionMs: 754000, DurationMs: 2580000, ResumeMs: 754000, State: "paused",
		Session: "s-7f3a", Device: "tv-livingroom", Epoch: 1, Seq: 2, UpdatedAt: "2026-11-22T18:02:11.512Z",
		UpdatedHLC: 18446744073709551615}
	cases := []struct {
		ev   Event
		want string
	}{
		{Event{Type: EventCursor, Cursor: c},
			`{"type":"cursor","cursor":{"video":"ep-1","position_ms":754000,"duration_ms":2580000,"resume_ms":754000,` +
				`"state":"paused","completed":false,"session":"s-7f3a","device":"tv-livingroom","epoch":"1","seq":"2",` +
				`"updated_at":"2026-11-22T18:02:11.512Z","updated_hlc":"18446744073709551615"}}`},
		{Event{Type: EventTakeover, Video: "ep-1", Session: "s-old", By: &TakeoverBy{Device: "phone", Session: "s-new"}},
			`{"type":"takeover","video":"ep-1","session":"s-old","by":{"device":"phone","session":"s-new"}}`},
		{Event{Type: EventCleared}, `{"type":"cleared","video":null}`},
		{Event{Type: EventCleared, Video: "ep-1"}, `{"type":"cleared","video":"ep-1"}`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("marshal %s:\n got %s\nwant %s", tc.ev.Type, b, tc.want)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if b2, _ := json.Marshal(back); string(b2) != tc.want {
			t.Errorf("round trip of %s: %s", tc.ev.Type, b2)
		}
	}
	// Inputs may carry HLCs as numbers.
	var cc Cursor
	if err := json.Unmarshal([]byte(`{"video":"v","epoch":12,"seq":"13","updated_hlc":14}`), &cc); err != nil ||
		cc.Epoch != 12 || cc.Seq != 13 || cc.UpdatedHLC != 14 {
		t.Fatalf("numbers as HLCs: %+v %v", cc, err)
	}
}

// TestUpdateBodyJSON: HLCs are decimal strings, absent when zero (the node
// stamps them), and the body converts back to the same update.
func TestUpdateBodyJSON(t *testing.T) {
	u := crdt.Update{Video: "ep-1", Device: "tv", Session: "s1", PositionMs: 5, DurationMs: 10,
		State: crdt.StateCompleted, Epoch: 1 << 40, Seq: 1<<40 + 1, NextVideo: "ep-2"}
	b, _ := json.Marshal(NewUpdateBody(u, false))
	want := `{"position_ms":5,"duration_ms":10,"device":"tv","session":"s1","state":"completed",` +
		`"epoch":"1099511627776","seq":"1099511627777","next_video":"ep-2"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var ub UpdateBody
	json.Unmarshal(b, &ub)
	back, err := ub.Update("ep-1")
	if err != nil || back != u {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	u.Epoch, u.Seq = 0, 0
	if b, _ := json.Marshal(NewUpdateBody(u, true)); strings.Contains(string(b), "epoch") || !strings.Contains(string(b), `"video":"ep-1"`) {
		t.Fatalf("unstamped batch item: %s", b)
	}
}
