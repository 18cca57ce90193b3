package gossip

import (
	"testing"
	"time"
)

// A catch-up that carries all of a profile's live cursors resets what the
// interested node noted of it: a cursor it was pushed and that was deleted
// since (its cleared event lost) stops making the marks differ, so the
// renewals after it cost no catch-up (push.go).
func TestCoreCatchUpForgetsClearedCursors(t *testing.T) {
	n := newReplNet(t, CoreConfig{InterestLease: 3 * time.Second, HintInterval: time.Hour, AEInterval: time.Hour})
	co, sub := n.owners[0], n.owners[2]
	run := func(ms int64, drop func(replEnv) bool) {
		for end := n.now + ms; n.now < end; {
			n.tick(50)
			for _, e := range n.take(func(replEnv) bool { return true }) {
				if drop == nil || !drop(e) {
					n.deliver([]replEnv{e})
				}
			}
		}
	}
	n.cores[sub].SetInterest([]Ref{replRef})
	n.cycle(sub)
	run(100, nil)
	n.cores[co].Submit(1, replPut(60_000))
	run(100, nil)
	mark := n.cores[sub].marks[replRef]
	if len(mark.seen) != 1 {
		t.Fatalf("noted %v after the push of film, want film", mark.seen)
	}
	n.cores[co].Submit(2, Op{Kind: OpDeleteVideo, Ref: replRef, Video: "film"})
	run(100, func(e replEnv) bool { return e.msg.Type == MsgEvents && e.to == sub })
	if len(mark.seen) != 1 {
		t.Fatalf("noted %v with the cleared event lost, want film still", mark.seen)
	}
	before := n.cores[co].Stats().CatchUps
	run(1_100, nil) // a renewal: the marks differ
	if got := n.cores[co].Stats().CatchUps - before; got != 1 {
		t.Fatalf("%d catch-ups for a mark with a deleted cursor, want 1", got)
	}
	if len(mark.seen) != 0 {
		t.Fatalf("noted %v after a complete catch-up with no live cursor", mark.seen)
	}
	run(3_500, nil) // three renewals: the marks agree
	if got := n.cores[co].Stats().CatchUps - before; got != 1 {
		t.Fatalf("%d catch-ups, want still 1", got)
	}
}
