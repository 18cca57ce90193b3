package gossip

import (
	"errors"
	"testing"
)

// TestSeenReadsNeverGoBack: a device that saw a version (here: its own
// acknowledged write, coordinated by the first owner) reads through the
// second owner after the first is believed dead. The second owner's copy
// lacks the write (its replication was lost), so it reads every live owner
// and answers the version the third owner holds; when no live owner holds
// it, the answer is ErrUnavailable — never the older copy.
func TestSeenReadsNeverGoBack(t *testing.T) {
	for _, thirdHasIt := range []bool{true, false} {
		n := newReplNet(t, CoreConfig{})
		co, o2, o3 := n.owners[0], n.owners[1], n.owners[2]
		n.cores[co].Submit(1, replPut(60_000))
		n.cycle(co)
		n.take(is(MsgReplicate, co, o2)) // lost on the way to o2
		if !thirdHasIt {
			n.take(is(MsgReplicate, co, o3))
		}
		n.deliver(n.take(func(replEnv) bool { return true }))
		n.cycle(o3)
		n.deliver(n.take(func(replEnv) bool { return true }))
		n.cycle(co)
		rec, _ := n.stored(co)
		v := rec.Cursor.Version
		if v.IsZero() {
			t.Fatal("the write is not stored at its coordinator")
		}
		// The coordinator is gone; o2 coordinates now.
		n.cores[o2].SetAlive(co, false)
		n.cores[o3].SetAlive(co, false)
		n.cores[o2].Submit(2, Op{Kind: OpCursor, Ref: replRef, Video: "film", Seen: v})
		for range 3 {
			n.cycle(o2)
			n.cycle(o3)
			n.deliver(n.take(func(e replEnv) bool { return e.to != co }))
		}
		var got *Completion
		for i, d := range n.done[o2] {
			if d.ID == 2 {
				got = &n.done[o2][i]
			}
		}
		if thirdHasIt {
			if got == nil || got.Err != nil || !got.Res.Found || got.Res.Cursor.Version.Less(v) {
				t.Fatalf("third owner has it: got %+v, want version %v", got, v)
			}
			if n.cores[o2].Stats().SeenEscalations != 1 {
				t.Errorf("escalations = %d, want 1", n.cores[o2].Stats().SeenEscalations)
			}
			continue
		}
		if got == nil {
			n.tick(3_000) // the quorum read times out at worst
			for i, d := range n.done[o2] {
				if d.ID == 2 {
					got = &n.done[o2][i]
				}
			}
		}
		if got == nil || !errors.Is(got.Err, ErrUnavailable) {
			t.Fatalf("no live owner has it: got %+v, want ErrUnavailable", got)
		}
		// Without Seen the same read answers the older copy (nothing).
		n.cores[o2].Submit(3, Op{Kind: OpCursor, Ref: replRef, Video: "film"})
		n.cycle(o2)
		for _, d := range n.done[o2] {
			if d.ID == 3 && (d.Err != nil || d.Res.Found) {
				t.Fatalf("plain read: %+v, want no cursor and no error", d)
			}
		}
	}
}
