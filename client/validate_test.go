package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/playhead/playhead/crdt"
)

// TestValidateUpdate: what the API refuses, the SDK refuses first.
func TestValidateUpdate(t *testing.T) {
	ok := crdt.Update{Video: "ep 1?#%", Device: "tv", Session: "s1", PositionMs: 0, DurationMs: 1, State: crdt.StatePlaying}
	if err := ValidateUpdate(ok); err != nil {
		t.Fatalf("valid update refused: %v", err)
	}
	bad := map[string]func(u *crdt.Update){
		"slash in video":   func(u *crdt.Update) { u.Video = "a/b" },
		"empty session":    func(u *crdt.Update) { u.Session = "" },
		"long device":      func(u *crdt.Update) { u.Device = strings.Repeat("d", 129) },
		"control byte":     func(u *crdt.Update) { u.Device = "t\nv" },
		"zero duration":    func(u *crdt.Update) { u.DurationMs = 0 },
		"past the end":     func(u *crdt.Update) { u.PositionMs = 2 },
		"negative":         func(u *crdt.Update) { u.PositionMs = -1 },
		"no state":         func(u *crdt.Update) { u.State = crdt.StateUnknown },
		"seq below epoch":  func(u *crdt.Update) { u.Epoch, u.Seq = 5, 4 },
		"bad next_video":   func(u *crdt.Update) { u.NextVideo = "x/y" },
		"invalid utf-8":    func(u *crdt.Update) { u.Title = "\xff" },
		"title over limit": func(u *crdt.Update) { u.Title = strings.Repeat("t", 1025) },
	}
	for name, mut := range bad {
		u := ok
		mut(&u)
		if err := ValidateUpdate(u); !errors.Is(err, ErrInvalidUpdate) {
			t.Errorf("%s: err %v, want ErrInvalidUpdate", name, err)
		}
	}
}

// FuzzDecodeQueue: the queue file decoder never panics, and whatever it
// accepts is valid and survives a re-encode unchanged.
func FuzzDecodeQueue(f *testing.F) {
	f.Add(encodeQueue([]Pending{{Profile: "kid", Update: upd("ep-1", "s1", 0, 5, 5)}}))
	f.Add([]byte("playhead-queue 1 00000000 2\n[]"))
	f.Add([]byte("playhead-queue 1 zz 1\n["))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := decodeQueue(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptQueue) {
				t.Fatalf("error %v does not wrap ErrCorruptQueue", err)
			}
			return
		}
		for _, p := range items {
			if err := ValidateUpdate(p.Update); err != nil {
				t.Fatalf("decoded an invalid update: %v", err)
			}
		}
		again, err := decodeQueue(encodeQueue(items))
		if err != nil || len(again) != len(items) {
			t.Fatalf("re-encode: %d items, %v", len(again), err)
		}
	})
}
