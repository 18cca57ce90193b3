package clustersim

import (
	"fmt"
	"os"
	"testing"

	"github.com/playhead/playhead/gossip"
)

// Known bug (a), found by the e2e suite (e2e/testdata/evidence/split-delete):
// a read without Playhead-Seen (a plain read, a list, or a resume read by a
// device that forgot its token after its own delete) is answered by one
// owner's copy; an owner cut off from the others lacks a delete they
// acknowledged, so the deleted cursor shows again — to the very device
// that deleted it. Deletes should stick (DESIGN §4): the answer should be
// 404 or 503. Fails today; it runs with PLAYHEAD_KNOWN_BUGS=1.
func TestKnownBugDeletedCursorReadThroughCutOffOwner(t *testing.T) {
	if os.Getenv("PLAYHEAD_KNOWN_BUGS") != "1" {
		t.Skip("known bug (a), not fixed: run with PLAYHEAD_KNOWN_BUGS=1 to reproduce")
	}
	s := mustSim(t, Options{Seed: 5})
	var videos []string
	for i := range 12 {
		v := fmt.Sprintf("ep%d", i)
		videos = append(videos, v)
		mustApply(t, s, 1, put(v, 60_000, "tv", "s1"))
	}
	settle(t, s, 10_000)
	// Node 3 is cut off, and membership on each side has noticed.
	s.Partition([]int{3}, []int{1, 2})
	s.SetAlive(3, false)
	s.Node(3).Core.SetAlive(s.Node(1).ID, false)
	s.Node(3).Core.SetAlive(s.Node(2).ID, false)
	for _, v := range videos {
		if c := s.Do(1, gossip.Op{Kind: gossip.OpDeleteVideo, Ref: ref, Video: v}, 5_000); c.Err != nil {
			t.Fatalf("delete %s via node 1 (two of three owners reachable): %v", v, c.Err)
		}
	}
	shown := 0
	for _, v := range videos {
		if c := s.Do(3, read(v), 5_000); c.Err == nil && c.Res.Found {
			shown++
			t.Errorf("%s: deleted (acknowledged by nodes 1 and 2), then read through cut-off node 3: %v at %d", v, c.Res.Cursor.Version, c.Res.Cursor.PositionMs)
		}
	}
	t.Logf("%d of %d deleted cursors shown by node 3", shown, len(videos))
}
