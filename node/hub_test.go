package node

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

var hubRef = gossip.Ref{Account: "A", Profile: "p"}

func cursorEv(video string, seq crdt.HLC, device string) gossip.Event {
	return gossip.Event{Ref: hubRef, Type: gossip.EventCursor, Video: video,
		Cursor: crdt.Cursor{Video: video, Version: crdt.Version{Epoch: 1, Seq: seq, Session: "s"}, Device: device}}
}

func takeoverEv(video, superseded string) gossip.Event {
	return gossip.Event{Ref: hubRef, Type: gossip.EventTakeover, Video: video,
		Superseded: crdt.Cursor{Video: video, Version: crdt.Version{Epoch: 1, Session: superseded}}}
}

func clearedEv(video string) gossip.Event {
	return gossip.Event{Ref: hubRef, Type: gossip.EventCleared, Video: video}
}

// describe names events for failure messages: "a@3", "clear(a)", "clear(*)".
func describe[E interface{ *gossip.Event | *Pushed }](evs []E) string {
	var out []string
	for _, e := range evs {
		ev := asEvent(e)
		switch ev.Type {
		case gossip.EventCursor:
			out = append(out, fmt.Sprintf("%s@%d", ev.Video, ev.Cursor.Version.Seq))
		case gossip.EventCleared:
			v := ev.Video
			if v == "" {
				v = "*"
			}
			if ev.Entry != "" {
				v += "/" + ev.Entry
			}
			out = append(out, "clear("+v+")")
		case gossip.EventTakeover:
			out = append(out, "takeover("+ev.Video+"/"+ev.Superseded.Version.Session+")")
		case gossip.EventHidden:
			out = append(out, "hidden("+ev.Video+")")
		}
	}
	return fmt.Sprint(out)
}

func asEvent[E interface{ *gossip.Event | *Pushed }](e E) *gossip.Event {
	switch e := any(e).(type) {
	case *Pushed:
		return &e.Event
	default:
		return e.(*gossip.Event)
	}
}

// TestHubConflatesPerVideo: a subscriber that does not read is not dropped
// while its profile's writes touch fewer videos than the buffer; it then
// gets the newest cursor of each video, in the order of their last writes.
func TestHubConflatesPerVideo(t *testing.T) {
	h := NewHub(4)
	s, _ := h.Subscribe(hubRef)
	defer s.Close()
	for i := 1; i <= 1000; i++ {
		h.Notify([]gossip.Event{cursorEv(string(rune('a'+i%3)), crdt.HLC(i), "tv")})
	}
	if s.Err() != nil || h.Dropped() != 0 {
		t.Fatalf("dropped: %v", s.Err())
	}
	select {
	case <-s.Ready():
	default:
		t.Fatal("Ready not rung")
	}
	if got := describe(s.Take(nil)); got != "[c@998 a@999 b@1000]" {
		t.Fatalf("got %s", got)
	}
	if s.Pending() != 0 || len(s.Take(nil)) != 0 {
		t.Fatal("Take left events queued")
	}
}

// TestHubBarriers: deletions, takeovers and hides are never dropped, and a
// cursor queued on one side of them is never merged with one on the other.
func TestHubBarriers(t *testing.T) {
	takeover := takeoverEv("a", "s1")
	hidden := gossip.Event{Ref: hubRef, Type: gossip.EventHidden, Video: "a"}
	entry := gossip.Event{Ref: hubRef, Type: gossip.EventCleared, Video: "a", Entry: "e1"}
	for _, tc := range []struct {
		name string
		in   []gossip.Event
		want string
	}{
		{"newest wins, at its place", []gossip.Event{cursorEv("a", 1, "tv"), cursorEv("b", 2, "tv"), cursorEv("a", 3, "tv")}, "[b@2 a@3]"},
		{"an older cursor adds nothing", []gossip.Event{cursorEv("a", 5, "tv"), cursorEv("a", 3, "tv")}, "[a@5]"},
		{"a cursor written after a delete stays after it", []gossip.Event{cursorEv("a", 1, "tv"), clearedEv("a"), cursorEv("a", 2, "tv"), cursorEv("a", 3, "tv")}, "[a@1 clear(a) a@3]"},
		{"a delete of another video is no barrier for a", []gossip.Event{cursorEv("a", 1, "tv"), clearedEv("b"), cursorEv("a", 2, "tv")}, "[clear(b) a@2]"},
		{"delete-all is a barrier for every video", []gossip.Event{cursorEv("a", 1, "tv"), cursorEv("b", 1, "tv"), clearedEv(""), cursorEv("b", 2, "tv"), cursorEv("a", 2, "tv")}, "[a@1 b@1 clear(*) b@2 a@2]"},
		{"deletions are never merged", []gossip.Event{clearedEv("a"), clearedEv("a"), clearedEv("")}, "[clear(a) clear(a) clear(*)]"},
		{"an entry's deletion is a barrier", []gossip.Event{cursorEv("a", 1, "tv"), entry, cursorEv("a", 2, "tv")}, "[a@1 clear(a/e1) a@2]"},
		{"a takeover is no barrier for cursors", []gossip.Event{cursorEv("a", 1, "tv"), takeover, cursorEv("a", 2, "tv")}, "[takeover(a/s1) a@2]"},
		{"takeovers of one session are merged", []gossip.Event{takeover, cursorEv("a", 2, "tv"), takeoverEv("a", "s2"), takeover}, "[a@2 takeover(a/s2) takeover(a/s1)]"},
		{"a delete is a barrier for takeovers", []gossip.Event{takeover, clearedEv("a"), takeover, clearedEv(""), takeover}, "[takeover(a/s1) clear(a) takeover(a/s1) clear(*) takeover(a/s1)]"},
		{"a hide is a barrier for takeovers", []gossip.Event{takeover, hidden, takeover, takeoverEv("b", "s1")}, "[takeover(a/s1) hidden(a) takeover(a/s1) takeover(b/s1)]"},
		{"a hide is a barrier", []gossip.Event{cursorEv("a", 1, "tv"), hidden, cursorEv("a", 2, "tv")}, "[a@1 hidden(a) a@2]"},
	} {
		h := NewHub(16)
		s, _ := h.Subscribe(hubRef)
		h.Notify(tc.in)
		if got := describe(s.Take(nil)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
		s.Close()
	}
}

// TestHubOmitDevice: a subscriber that omits its device gets neither its
// own writes nor an older queued cursor they supersede; it gets every
// other device's later write and every deletion.
func TestHubOmitDevice(t *testing.T) {
	h := NewHub(16)
	s, _ := h.SubscribeWith(hubRef, SubscribeOptions{OmitDevice: "phone"})
	defer s.Close()
	all, _ := h.Subscribe(hubRef)
	defer all.Close()
	h.Notify([]gossip.Event{
		cursorEv("a", 1, "tv"), cursorEv("b", 1, "tv"),
		cursorEv("a", 2, "phone"), // supersedes a@1
		cursorEv("c", 3, "phone"),
		clearedEv("b"),
		cursorEv("a", 4, "tv"),
	})
	if got := describe(s.Take(nil)); got != "[b@1 clear(b) a@4]" {
		t.Fatalf("omitting phone: got %s", got)
	}
	if got := describe(all.Take(nil)); got != "[b@1 c@3 clear(b) a@4]" {
		t.Fatalf("not omitting: got %s", got)
	}
}

// TestHubQueueBounded: conflated slots do not grow the queue's storage
// without bound while the subscriber does not read.
func TestHubQueueBounded(t *testing.T) {
	h := NewHub(8)
	s, _ := h.Subscribe(hubRef)
	defer s.Close()
	for i := 1; i <= 100_000; i++ {
		h.Notify([]gossip.Event{cursorEv(string(rune('a'+i%5)), crdt.HLC(i), "tv")})
	}
	s.mu.Lock()
	n := cap(s.q)
	s.mu.Unlock()
	if n > 4*8+64 {
		t.Fatalf("queue storage %d slots for 5 videos", n)
	}
	if got := describe(s.Take(nil)); got != "[b@99996 c@99997 d@99998 e@99999 a@100000]" {
		t.Fatalf("got %s", got)
	}
	// Takeovers of 2 videos × 3 sessions between the cursors.
	for i := 1; i <= 30_000; i++ {
		v := string(rune('a' + i%2))
		h.Notify([]gossip.Event{cursorEv(v, crdt.HLC(i), "tv"), takeoverEv(v, "s"+string(rune('0'+i%3)))})
	}
	evs := s.Take(nil)
	seen := map[string]bool{}
	for _, ev := range evs {
		d := describe([]*Pushed{ev})
		if ev.Type == gossip.EventCursor {
			d = ev.Video
		}
		if seen[d] {
			t.Fatalf("%s twice in %s", d, describe(evs))
		}
		seen[d] = true
	}
	if len(evs) != 8 || s.Err() != nil {
		t.Fatalf("got %s (%v)", describe(evs), s.Err())
	}
}

// hubModel is what a device holds after applying events in order: the
// newest cursor per video (a cursor older than the one held is ignored, as
// the stream and the SDK do), deletions removing them.
type hubModel map[string]crdt.HLC

func (m hubModel) apply(ev *gossip.Event) {
	switch {
	case ev.Type == gossip.EventCursor:
		if s, ok := m[ev.Video]; !ok || s < ev.Cursor.Version.Seq {
			m[ev.Video] = ev.Cursor.Version.Seq
		}
	case ev.Type == gossip.EventCleared && ev.Entry != "":
	case ev.Type == gossip.EventCleared && ev.Video == "":
		clear(m)
	case ev.Type == gossip.EventCleared:
		delete(m, ev.Video)
	}
}

// TestHubConflationModel feeds random streams of cursors (mostly newer,
// sometimes older), takeovers, hides and deletions to a subscriber that
// takes at random moments, and checks what it received: in Notify's order
// (a subsequence); every deletion and hide; every takeover, or a later one
// of the same video and superseded session with no deletion or hide of the
// video in between; and, applied in order, the same cursors as every event
// applied in order — at the end and after each Take.
func TestHubConflationModel(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := NewHub(64)
		s, _ := h.Subscribe(hubRef)
		want, got := hubModel{}, hubModel{}
		var sent []*gossip.Event
		var recv []*Pushed
		seq := crdt.HLC(100)
		check := func(when string) {
			if !maps.Equal(want, got) {
				t.Fatalf("seed %d: %s the subscriber holds %v, the writes %v\nsent %s\nrecv %s", seed, when, got, want, describe(sent), describe(recv))
			}
		}
		for n := range 400 {
			var ev gossip.Event
			v := string(rune('a' + rng.IntN(4)))
			switch r := rng.IntN(24); {
			case r < 14:
				seq++
				ev = cursorEv(v, seq, "tv")
			case r < 16: // a late, older copy
				ev = cursorEv(v, seq-crdt.HLC(rng.IntN(5)), "tv")
			case r < 19:
				ev = takeoverEv(v, "s"+string(rune('0'+rng.IntN(3))))
			case r < 20:
				ev = gossip.Event{Ref: hubRef, Type: gossip.EventHidden, Video: v}
			case r < 22:
				ev = clearedEv(v)
			case r < 23:
				ev = clearedEv("")
			default:
				ev = gossip.Event{Ref: hubRef, Type: gossip.EventCleared, Video: v, Entry: "e"}
			}
			ev.Cursor.PositionMs = int64(n) // a serial, to recognise the hub's copy
			h.Notify([]gossip.Event{ev})
			sent = append(sent, &ev)
			want.apply(&ev)
			if rng.IntN(10) == 0 {
				taken := s.Take(nil)
				recv = append(recv, taken...)
				for _, e := range taken {
					got.apply(&e.Event)
				}
				check("after a Take")
			}
		}
		taken := s.Take(nil)
		recv = append(recv, taken...)
		for _, e := range taken {
			got.apply(&e.Event)
		}
		if s.Err() != nil {
			t.Fatalf("seed %d: dropped with 4 videos and a buffer of 64: %v", seed, s.Err())
		}
		check("at the end")
		// In order, and what may be missing.
		received := map[int64]bool{}
		for i, e := range recv {
			if i > 0 && e.Cursor.PositionMs <= recv[i-1].Cursor.PositionMs {
				t.Fatalf("seed %d: received out of Notify's order\nsent %s\nrecv %s", seed, describe(sent), describe(recv))
			}
			received[e.Cursor.PositionMs] = true
		}
		for i, e := range sent {
			if received[e.Cursor.PositionMs] || e.Type == gossip.EventCursor {
				continue
			}
			ok := false
			if e.Type == gossip.EventTakeover {
			later:
				for _, l := range sent[i+1:] {
					switch {
					case (l.Type == gossip.EventCleared || l.Type == gossip.EventHidden) && (l.Video == "" || l.Video == e.Video):
						break later
					case l.Type == gossip.EventTakeover && l.Video == e.Video && l.Superseded.Version.Session == e.Superseded.Version.Session && received[l.Cursor.PositionMs]:
						ok = true
						break later
					}
				}
			}
			if !ok {
				t.Fatalf("seed %d: event %d %s lost\nsent %s\nrecv %s", seed, i, describe([]*gossip.Event{e}), describe(sent), describe(recv))
			}
		}
		s.Close()
	}
}

// TestMsgpackArrayOfEncodings: an array message built from the events'
// shared encodings (sendMsgpackEvents) is byte for byte what encoding the
// array of their values gives.
func TestMsgpackArrayOfEncodings(t *testing.T) {
	pol := crdt.Policy{}
	for _, n := range []int{2, 15, 16, 64, 70_000} {
		var vals []any
		var msg []byte
		msg = appendMsgpackArrayLen(msg, n)
		for i := range n {
			ev := cursorEv("v"+string(rune('a'+i%26)), crdt.HLC(i+1), "tv")
			_, v := eventValue(&ev, pol)
			vals = append(vals, v)
			msg = append(msg, encodeMsgpack(v)...)
		}
		if want := encodeMsgpack(vals); string(msg) != string(want) {
			t.Fatalf("%d events: the concatenation differs from the array's encoding", n)
		}
	}
}
