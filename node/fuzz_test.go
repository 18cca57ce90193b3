package node

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// FuzzDecodeUpdate feeds arbitrary bytes (and path videos) to the update
// decoder: it never panics, rejects only with a 400 apiError, and whatever
// it accepts satisfies every validation rule (checkUpdate). An accepted
// update also survives a round trip through its wire form unchanged.
//
// Seed corpus: testdata/fuzz/FuzzDecodeUpdate. Run: go test ./node -run '^$' -fuzz FuzzDecodeUpdate
func FuzzDecodeUpdate(f *testing.F) {
	f.Add([]byte(`{"position_ms": 1, "duration_ms": 2, "device": "d", "session": "s"}`), "v")
	f.Fuzz(func(t *testing.T, data []byte, video string) {
		u, err := decodeUpdate(data, video)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != 400 || ae.code != api.CodeBadRequest || ae.msg == "" {
				t.Fatalf("rejection is not a 400 bad_request with a message: %#v", err)
			}
			return
		}
		if err := checkUpdate(u); err != nil {
			t.Fatalf("accepted an update that breaks the rules (%v): %+v", err, u)
		}
		if video != "" && u.Video != video {
			t.Fatalf("video %q, path said %q", u.Video, video)
		}
		// Round trip: encode the accepted update and decode it again.
		b, err := json.Marshal(map[string]any{
			"video": u.Video, "position_ms": u.PositionMs, "duration_ms": u.DurationMs,
			"device": u.Device, "session": u.Session, "state": u.State.String(),
			"epoch": u.Epoch, "seq": u.Seq, "title": u.Title, "series_id": u.SeriesID, "next_video": u.NextVideo,
		})
		if err != nil {
			t.Fatal(err)
		}
		u2, err := decodeUpdate(b, "")
		if err != nil {
			t.Fatalf("re-encoded update %s refused: %v", b, err)
		}
		if u2 != u {
			t.Fatalf("round trip changed the update:\n%+v\n%+v", u, u2)
		}
	})
}

// The fuzz oracle must itself refuse what the decoder refuses.
func TestCheckUpdateOracle(t *testing.T) {
	ok := crdt.Update{Video: "v", Device: "d", Session: "s", PositionMs: 1, DurationMs: 2, State: crdt.StatePlaying}
	if err := checkUpdate(ok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*crdt.Update){
		func(u *crdt.Update) { u.Video = "" },
		func(u *crdt.Update) { u.Device = "a/b" },
		func(u *crdt.Update) { u.Session = string(make([]byte, 129)) },
		func(u *crdt.Update) { u.NextVideo = "\x7f" },
		func(u *crdt.Update) { u.PositionMs = 3 },
		func(u *crdt.Update) { u.State = 0 },
		func(u *crdt.Update) { u.Epoch, u.Seq = 5, 4 },
		func(u *crdt.Update) { u.Title = "\xff" },
	} {
		u := ok
		bad(&u)
		if checkUpdate(u) == nil {
			t.Errorf("oracle accepts %+v", u)
		}
	}
}
