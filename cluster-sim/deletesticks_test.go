package clustersim

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip"
)

// Bug (a), found by the e2e suite (e2e/testdata/evidence/split-delete,
// kill-two): a read answered by one owner's copy (read quorum 1) shows a
// cursor whose delete the other owners acknowledged when that owner is cut
// off from them, or back from a crash before hints reach it — even to the
// device that deleted it, whose SDK forgets its Playhead-Seen token after a
// delete. The device API now reads two owners' copies (node.ReadQuorum).
//
// The read the device API now makes (node.ReadQuorum: two owners' copies,
// merged) keeps the delete in both of bug (a)'s cases: through the cut-off
// owner it answers unavailable, and once the owner is back but still
// lacks the delete (no hints, no anti-entropy yet) it answers not found.
func TestQuorumTwoReadKeepsAcknowledgedDeletes(t *testing.T) {
	s := mustSim(t, Options{Seed: 5, Core: gossip.CoreConfig{MaxHints: -1, AEInterval: time.Hour}})
	var videos []string
	for i := range 12 {
		v := fmt.Sprintf("ep%d", i)
		videos = append(videos, v)
		mustApply(t, s, 1, put(v, 60_000, "tv", "s1"))
	}
	settle(t, s, 10_000)
	s.Partition([]int{3}, []int{1, 2})
	s.SetAlive(3, false)
	s.Node(3).Core.SetAlive(s.Node(1).ID, false)
	s.Node(3).Core.SetAlive(s.Node(2).ID, false)
	for _, v := range videos {
		if c := s.Do(1, gossip.Op{Kind: gossip.OpDeleteVideo, Ref: ref, Video: v}, 5_000); c.Err != nil {
			t.Fatalf("delete %s: %v", v, c.Err)
		}
	}
	read2 := func(v string) gossip.Completion {
		op := read(v)
		op.ReadQuorum = 2
		return s.Do(3, op, 5_000)
	}
	for _, v := range videos {
		if c := read2(v); !errors.Is(c.Err, gossip.ErrUnavailable) {
			t.Fatalf("%s through the cut-off owner: found=%v err=%v, want unavailable", v, c.Res.Found, c.Err)
		}
	}
	s.Heal()
	s.SetAlive(3, true)
	s.Node(3).Core.SetAlive(s.Node(1).ID, true)
	s.Node(3).Core.SetAlive(s.Node(2).ID, true)
	stale := 0
	for _, v := range videos {
		if c := s.Do(3, readLocal(v), 5_000); c.Err == nil && c.Res.Found {
			stale++
		}
	}
	if stale == 0 {
		t.Fatal("node 3 already has the deletes: the test needs it stale")
	}
	for _, v := range videos {
		if c := read2(v); c.Err != nil || c.Res.Found {
			t.Fatalf("%s through node 3 after the heal: found=%v err=%v, want not found", v, c.Res.Found, c.Err)
		}
	}
}
