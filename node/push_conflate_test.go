package node

import (
	"strings"
	"testing"
	"time"
)

// TestSlowStreamGetsNewestCursors: one write that changes two videos many
// times over reaches a stream whose buffer holds two events as the newest
// cursor of each video, and the stream stays open (it was closed with 1013
// before the hub conflated).
func TestSlowStreamGetsNewestCursors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PushBuffer = 2 })
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "?after=0")
	waitSubscribers(t, e, 1)
	var ups []any
	for i := 1; i <= 40; i++ {
		ups = append(ups, upd(int64(1000*i), hour, "tv", "s", "video", []string{"a", "b"}[i%2]))
	}
	want(t, e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": ups}), 200, "")
	last := map[string]int64{}
	for last["a"] != 40_000 || last["b"] != 39_000 {
		ev := wsNext(t, ws, 5*time.Second)
		if ev.Type != "cursor" {
			t.Fatalf("unexpected %+v", ev)
		}
		last[ev.Cursor.Video] = ev.Cursor.PositionMs
	}
	r := e.do("GET", "/metrics", "", nil)
	if !strings.Contains(string(r.body), "playhead_push_subscribers_dropped_total 0") {
		t.Errorf("a subscriber was dropped")
	}
}

// TestOmitDevice: a stream opened with omit_device=ID gets no live cursor
// written by that device, and every other device's; its replay keeps the
// device's own cursors; a malformed id is refused.
func TestOmitDevice(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "?omit_device=phone")
	sse := e.sseOpen(tok, "me", "?omit_device=phone")
	waitSubscribers(t, e, 2)
	e.mustPut(tok, "me", "a", upd(1000, hour, "phone", "s1"))
	e.mustPut(tok, "me", "b", upd(2000, hour, "tv", "s2"))
	if ev := wsNext(t, ws, 5*time.Second); ev.Cursor == nil || ev.Cursor.Video != "b" {
		t.Fatalf("WebSocket: first event %+v, want tv's cursor of b", ev)
	}
	if _, ev := sse.next(t, 5*time.Second); ev.Cursor == nil || ev.Cursor.Video != "b" {
		t.Fatalf("SSE: first event %+v, want tv's cursor of b", ev)
	}
	replay := e.wsDial(tok, "me", "?after=0&omit_device=phone")
	got := map[string]bool{}
	for range 2 {
		got[wsNext(t, replay, 5*time.Second).Cursor.Video] = true
	}
	if !got["a"] || !got["b"] {
		t.Fatalf("replay: %v", got)
	}
	want(t, e.do("GET", "/v1/profiles/me/events?omit_device=a/b", tok, nil, "Accept", "text/event-stream"), 400, "bad_request")
	want(t, e.do("GET", "/v1/profiles/me/events?omit_device=", tok, nil, "Accept", "text/event-stream"), 400, "bad_request")
}

// waitSubscribers waits until the node's hub has n subscriptions (a stream
// subscribes after its handshake answered).
func waitSubscribers(t *testing.T, e *env, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); e.n.hub.Active() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers after 5 s, want %d", e.n.hub.Active(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
