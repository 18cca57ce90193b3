package client

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// wallEnv is an env on the wall clock: subscriptions time their WebSocket
// retries with the Client's clock.
func wallEnv(t *testing.T, tweak ...func(*Config)) *env {
	return newEnv(t, append([]func(*Config){func(c *Config) { c.Clock = WallClock{} }}, tweak...)...)
}

// events collects what a handler receives.
type events chan Event

func (ch events) handler(ev Event) { ch <- ev }

func (ch events) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return Event{}
}

func (ch events) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

func (e *env) subscribe(h Handler) *Subscription {
	e.t.Helper()
	s, err := e.c.Subscribe(ctxT(e.t), "kid", h)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Close)
	return s
}

// other returns an update by another device, stamped now + dMs.
func (e *env) other(video, session string, pos, dMs int64) crdt.Update {
	h := crdt.NewHLC(time.Now().UnixMilli()+dMs, 0)
	return crdt.Update{Video: video, Device: "phone", Session: session, PositionMs: pos,
		DurationMs: 3_600_000, State: crdt.StatePlaying, Epoch: h, Seq: h}
}

// TestSubscribePushes: cursor, takeover and cleared events arrive in the
// API's shapes; a cursor version already delivered is dropped, except after
// its history was cleared.
func TestSubscribePushes(t *testing.T) {
	e := wallEnv(t)
	got := make(events, 16)
	sub := e.subscribe(got.handler)
	waitFor(t, "websocket", func() bool { return sub.Transport() == TransportWebSocket && e.srv.streams() == 1 })

	c1 := e.srv.write("kid", e.other("ep-1", "p1", 1000, 0))
	ev := got.next(t)
	if ev.Type != api.EventCursor || ev.Cursor == nil || ev.Cursor.Version() != c1.Version() || ev.Cursor.Device != "phone" {
		t.Fatalf("event %+v, want the phone's cursor", ev)
	}
	// The same version again (a replay racing a push): dropped.
	e.srv.send(Event{Type: api.EventCursor, Cursor: &c1})
	// Another session takes the video over: cursor, then takeover.
	c2 := e.srv.write("kid", e.other("ep-1", "p2", 5000, 10))
	if ev := got.next(t); ev.Type != api.EventCursor || ev.Cursor.Session != "p2" {
		t.Fatalf("event %+v, want p2's cursor (the duplicate must be dropped)", ev)
	}
	ev = got.next(t)
	if ev.Type != api.EventTakeover || ev.Video != "ep-1" || ev.Session != "p1" || ev.By == nil ||
		ev.By.Session != "p2" || ev.By.Device != "phone" {
		t.Fatalf("event %+v, want takeover of p1 by p2", ev)
	}
	// The resume point stays where the subscription started (the node's
	// HLC at the first contact, held back), below both cursors.
	if sub.After() >= c1.UpdatedHLC {
		t.Fatalf("resume point %v moved up to the cursors (%v, %v)", sub.After(), c1.UpdatedHLC, c2.UpdatedHLC)
	}
	// History cleared: then an older version is news again.
	e.srv.send(Event{Type: api.EventCleared})
	if ev := got.next(t); ev.Type != api.EventCleared || ev.Video != "" {
		t.Fatalf("event %+v, want cleared (all)", ev)
	}
	e.srv.send(Event{Type: api.EventCursor, Cursor: &c1})
	if ev := got.next(t); ev.Type != api.EventCursor || ev.Cursor.Session != "p1" {
		t.Fatalf("event %+v, want p1's cursor again after the clear", ev)
	}
	// The clock learned the pushed versions: the next epoch beats them.
	if h := e.c.Clock().Now(0); h <= c2.Seq {
		t.Fatalf("clock %v not above the pushed seq %v", h, c2.Seq)
	}
	got.none(t, 50*time.Millisecond)
}

// TestSubscribeReconnectsWithAfter: when the node drops the stream, the
// subscription reconnects with after=<its resume point> and so gets the
// change made while it was away, once (the replay's copy of what it
// already had is dropped).
func TestSubscribeReconnectsWithAfter(t *testing.T) {
	e := wallEnv(t, func(c *Config) { c.WSFailuresBeforePoll = 1000 })
	got := make(events, 16)
	sub := e.subscribe(got.handler)
	waitFor(t, "websocket", func() bool { return e.srv.streams() == 1 })
	c1 := e.srv.write("kid", e.other("ep-1", "p1", 1000, 0))
	got.next(t)
	resume := sub.After()
	if resume == 0 || resume >= c1.UpdatedHLC {
		t.Fatalf("resume point %v, want set and below %v", resume, c1.UpdatedHLC)
	}

	wsBefore := len(e.srv.requests("GET", "/v1/profiles/kid/events"))
	e.srv.set(func(f *fakeServer) { f.wsReject = true })
	e.srv.dropStreams()
	waitFor(t, "a refused reconnect", func() bool {
		return len(e.srv.requests("GET", "/v1/profiles/kid/events")) >= wsBefore+2
	})
	c2 := e.srv.write("kid", e.other("ep-2", "p1", 2000, 0)) // while cut off
	e.srv.set(func(f *fakeServer) { f.wsReject = false })

	ev := got.next(t)
	if ev.Type != api.EventCursor || ev.Cursor.Version() != c2.Version() {
		t.Fatalf("event %+v, want the cursor written while cut off", ev)
	}
	reqs := e.srv.requests("GET", "/v1/profiles/kid/events")
	for _, r := range reqs[wsBefore:] {
		if r.Query.Get("after") != resume.String() {
			t.Fatalf("reconnect with after=%q, want %v (the resume point)", r.Query.Get("after"), resume)
		}
	}
	got.none(t, 50*time.Millisecond)
	if sub.Connects() < 2 {
		t.Fatalf("Connects = %d, want >= 2", sub.Connects())
	}
}

// TestSubscribeReconnectMissesNoOutOfOrderChange: changes of a profile
// reach a device out of updated_hlc order (its videos have different
// coordinators). A change stamped earlier that had not reached the device
// when its stream broke, while a later-stamped one had, comes in the
// reconnect's replay: the device resumes from where it started, not from
// the newest updated_hlc it received (issue 11; the simulator's
// push-delivery seeds 10080, 20043, 70007).
func TestSubscribeReconnectMissesNoOutOfOrderChange(t *testing.T) {
	e := wallEnv(t, func(c *Config) { c.WSFailuresBeforePoll = 1000 })
	got := make(events, 16)
	sub := e.subscribe(got.handler)
	waitFor(t, "websocket", func() bool { return e.srv.streams() == 1 })
	// ep-1 is stamped first, by another coordinator, and not pushed yet;
	// ep-2, stamped later, is pushed at once.
	a := e.srv.storeQuietly("kid", e.other("ep-1", "p1", 1000, 0), e.srv.nowHLC())
	b := e.srv.write("kid", e.other("ep-2", "p1", 2000, 0))
	if a.UpdatedHLC >= b.UpdatedHLC {
		t.Fatalf("test setup: ep-1 at %v not below ep-2 at %v", a.UpdatedHLC, b.UpdatedHLC)
	}
	if ev := got.next(t); ev.Cursor == nil || ev.Cursor.Video != "ep-2" {
		t.Fatalf("event %+v, want ep-2", ev)
	}
	e.srv.dropStreams()
	ev := got.next(t)
	if ev.Type != api.EventCursor || ev.Cursor.Video != "ep-1" || ev.Cursor.Version() != a.Version() {
		t.Fatalf("event %+v, want ep-1, stamped below ep-2 and never pushed", ev)
	}
	got.none(t, 50*time.Millisecond) // ep-2 again in the replay: dropped
	if sub.After() >= a.UpdatedHLC {
		t.Fatalf("resume point %v not below ep-1's %v", sub.After(), a.UpdatedHLC)
	}
}

// TestSubscribeFallsBackToLongPoll: after WSFailuresBeforePoll refused
// upgrades the subscription long-polls …/changes, and returns to the
// WebSocket once it works again.
func TestSubscribeFallsBackToLongPoll(t *testing.T) {
	e := wallEnv(t, func(c *Config) { c.WSFailuresBeforePoll = 3; c.WSRetryInterval = 300 * time.Millisecond })
	e.srv.set(func(f *fakeServer) { f.wsReject = true })
	got := make(events, 16)
	sub := e.subscribe(got.handler)
	waitFor(t, "long-poll", func() bool { return sub.Transport() == TransportLongPoll })

	var ws int
	for _, r := range e.srv.requests("GET", "/v1/profiles/kid/") {
		if strings.HasSuffix(r.Path, "/changes") {
			if r.Query.Get("wait") != "400ms" || !r.Query.Has("after") {
				t.Fatalf("long-poll query %v, want wait=400ms and after=", r.Query)
			}
			// since= is the resume point, held back below after= (what
			// the poll waits past).
			after, err1 := crdt.ParseHLC(r.Query.Get("after"))
			since, err2 := crdt.ParseHLC(r.Query.Get("since"))
			if err1 != nil || err2 != nil || since != ResumePointAt(after) {
				t.Fatalf("long-poll query %v, want since= the resume point below after=", r.Query)
			}
			break
		}
		if !r.WS {
			t.Fatalf("request %+v before the first poll is not a WebSocket upgrade", r)
		}
		ws++
	}
	if ws != 3 {
		t.Fatalf("%d WebSocket attempts before the first poll, want 3", ws)
	}

	c1 := e.srv.write("kid", e.other("ep-1", "p1", 1000, 0))
	if ev := got.next(t); ev.Type != api.EventCursor || ev.Cursor.Version() != c1.Version() {
		t.Fatalf("event %+v, want the cursor by long-poll", ev)
	}
	e.srv.set(func(f *fakeServer) { f.wsReject = false })
	waitFor(t, "back on the websocket", func() bool { return sub.Transport() == TransportWebSocket })
	c2 := e.srv.write("kid", e.other("ep-1", "p1", 2000, 5))
	if ev := got.next(t); ev.Type != api.EventCursor || ev.Cursor.Version() != c2.Version() {
		t.Fatalf("event %+v, want the next cursor", ev)
	}
	got.none(t, 50*time.Millisecond)
}

// TestSubscribeFlushesOnReconnect: reaching the node again flushes the
// offline queue.
func TestSubscribeFlushesOnReconnect(t *testing.T) {
	e := wallEnv(t)
	e.net.off.Store(true)
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	e.report(u)
	sub := e.subscribe(func(Event) {})
	time.Sleep(30 * time.Millisecond)
	e.net.off.Store(false)
	waitFor(t, "the queue to drain", func() bool { return e.c.Queued() == 0 })
	if cur, ok := e.srv.cursor("kid", "ep-1"); !ok || cur.Version() != versionOf(u) {
		t.Fatalf("cursor %+v, want the queued update", cur)
	}
	// Long-poll took over while the network was down; once it is back the
	// WebSocket is tried again at once.
	waitFor(t, "back on the websocket", func() bool { return sub.Transport() == TransportWebSocket })
}

// TestSubscribeStopsCleanly: cancelling the context ends the subscription —
// connected over WebSocket, in the middle of a long-poll, or waiting out a
// backoff — and leaves no goroutine of this package behind.
func TestSubscribeStopsCleanly(t *testing.T) {
	ws := wallEnv(t)
	poll := wallEnv(t, func(c *Config) { c.WSFailuresBeforePoll = 1; c.LongPollWait = 10 * time.Second })
	poll.srv.set(func(f *fakeServer) { f.wsReject = true })
	down := wallEnv(t, func(c *Config) { c.BackoffBase, c.BackoffCap = 10*time.Second, 20*time.Second })
	down.net.off.Store(true)

	ctx, cancel := context.WithCancel(context.Background())
	var subs []*Subscription
	for _, e := range []*env{ws, poll, down} {
		s, err := e.c.Subscribe(ctx, "kid", func(Event) {})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	waitFor(t, "all three states", func() bool {
		return subs[0].Transport() == TransportWebSocket &&
			len(poll.srv.requests("GET", "/v1/profiles/kid/changes")) > 0 &&
			subs[2].Err() != nil
	})
	time.Sleep(20 * time.Millisecond) // let the poll be in flight
	if n := len(ourGoroutines()); n < 3 {
		t.Fatalf("only %d SDK goroutines while running; the leak check would prove nothing", n)
	}
	cancel()
	for i, s := range subs {
		select {
		case <-s.Done():
		case <-time.After(2 * time.Second):
			t.Fatalf("subscription %d did not stop within 2 s of cancel", i)
		}
	}
	subs[0].Close() // idempotent after cancel
	waitFor(t, "no SDK goroutines", func() bool { return len(ourGoroutines()) == 0 })
}

// ourGoroutines returns the stacks of goroutines running this package's
// (non-test) code.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "playhead/client.(*Subscription)") || strings.Contains(g, "playhead/client.(*Client)") {
			out = append(out, g)
		}
	}
	return out
}

// TestSubscribeAfter: SubscribeAfter(0) first delivers every cursor.
func TestSubscribeAfter(t *testing.T) {
	e := wallEnv(t)
	c1 := e.srv.write("kid", e.other("ep-1", "p1", 1000, 0))
	c2 := e.srv.write("kid", e.other("ep-2", "p1", 2000, 1))
	got := make(events, 16)
	s, err := e.c.SubscribeAfter(ctxT(t), "kid", 0, got.handler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if a, b := got.next(t), got.next(t); a.Cursor.Version() != c1.Version() || b.Cursor.Version() != c2.Version() {
		t.Fatalf("replay %+v %+v, want both cursors in order", a.Cursor, b.Cursor)
	}
	if r := e.srv.requests("GET", "/v1/profiles/kid/events"); r[0].Query.Get("after") != "0" {
		t.Fatalf("first connection after=%q, want 0", r[0].Query.Get("after"))
	}
}
