package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/coder/websocket"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// deliveryDeadline is how soon a push must arrive after the write.
const deliveryDeadline = time.Second

func TestPushWebSocketWithinOneSecond(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "")
	time.Sleep(20 * time.Millisecond) // let the subscription register
	wrote := e.mustPut(tok, "me", "ep-1", upd(754000, 2580000, "tv", "s1", "state", "paused"))
	start := time.Now()
	ev := wsNext(t, ws, deliveryDeadline)
	if ev.Type != "cursor" || ev.Cursor == nil || *ev.Cursor != wrote {
		t.Fatalf("event %+v, want the cursor %+v", ev, wrote)
	}
	t.Logf("delivered in %v", time.Since(start))
}

func TestPushSSEWithinOneSecond(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	s := e.sseOpen(tok, "me", "")
	wrote := e.mustPut(tok, "me", "ep-1", upd(754000, 2580000, "tv", "s1"))
	raw, ev := s.next(t, deliveryDeadline)
	if ev.Type != "cursor" || ev.Cursor == nil || *ev.Cursor != wrote {
		t.Fatalf("event %+v, want the cursor %+v", ev, wrote)
	}
	// The id is the stream's resume point (the node's HLC at subscribing,
	// held back), not the newest updated_hlc sent: changes arrive out of
	// updated_hlc order, so an EventSource resuming from the newest could
	// skip one still on its way.
	h, err := crdt.ParseHLC(s.res.Header.Get("Playhead-HLC"))
	if err != nil {
		t.Fatal(err)
	}
	if want := api.ResumePointAt(h); raw.id != want.String() || want >= mustHLC(wrote.UpdatedHLC) {
		t.Errorf("SSE id %q, want the resume point %s (below the cursor's %s)", raw.id, want, wrote.UpdatedHLC)
	}
}

func TestLongPollWithinOneSecond(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	type result struct {
		r   *resp
		at  time.Time
		err error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/profiles/me/changes?after=0&wait=10s", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		done <- result{r: &resp{status: res.StatusCode, header: res.Header, body: b}, at: time.Now(), err: err}
	}()
	time.Sleep(100 * time.Millisecond) // the poll is waiting
	wroteAt := time.Now()
	wrote := e.mustPut(tok, "me", "ep-1", upd(754000, 2580000, "tv", "s1"))
	var res result
	select {
	case res = <-done:
	case <-time.After(deliveryDeadline):
		t.Fatal("long-poll did not answer within 1 s of the write")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	want(t, res.r, 200, "")
	var b struct {
		Cursors []tCursor `json:"cursors"`
		HLC     string    `json:"hlc"`
	}
	res.r.decode(t, &b)
	if len(b.Cursors) != 1 || b.Cursors[0] != wrote || b.HLC != wrote.UpdatedHLC {
		t.Fatalf("long-poll: %s", res.r.body)
	}
	t.Logf("answered %v after the write", res.at.Sub(wroteAt))

	// Polling again from the returned hlc waits (nothing new) and times out
	// with an empty list and the same hlc.
	r := e.do("GET", "/v1/profiles/me/changes?wait=0.1&after="+b.HLC, tok, nil)
	want(t, r, 200, "")
	if string(r.body) != `{"cursors":[],"hlc":"`+b.HLC+`"}`+"\n" {
		t.Fatalf("timed-out poll: %s", r.body)
	}
	// Changes since an older hlc come at once, oldest first, gap-free.
	second := e.mustPut(tok, "me", "ep-2", upd(1000, 2580000, "tv", "s2"))
	third := e.mustPut(tok, "me", "ep-3", upd(1000, 2580000, "tv", "s3"))
	r = e.do("GET", "/v1/profiles/me/changes?wait=25s&after="+b.HLC, tok, nil)
	r.decode(t, &b)
	if len(b.Cursors) != 2 || b.Cursors[0].Video != second.Video || b.Cursors[1].Video != third.Video || b.HLC != third.UpdatedHLC {
		t.Fatalf("catch-up poll: %s", r.body)
	}
	// after=0 and no wait: everything at once.
	r = e.do("GET", "/v1/profiles/me/changes", tok, nil)
	r.decode(t, &b)
	if len(b.Cursors) != 3 {
		t.Fatalf("full poll: %s", r.body)
	}
}

func TestEventsReplayAfter(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	first := e.mustPut(tok, "me", "a", upd(1000, hour, "tv", "s1"))
	second := e.mustPut(tok, "me", "b", upd(2000, hour, "tv", "s2"))
	third := e.mustPut(tok, "me", "c", upd(3000, hour, "tv", "s3"))

	ws := e.wsDial(tok, "me", "?after="+first.UpdatedHLC)
	for _, wantC := range []tCursor{second, third} {
		ev := wsNext(t, ws, deliveryDeadline)
		if ev.Type != "cursor" || *ev.Cursor != wantC {
			t.Fatalf("WebSocket replay: %+v, want %s", ev, wantC.Video)
		}
	}
	s := e.sseOpen(tok, "me", "?after="+first.UpdatedHLC)
	for _, wantC := range []tCursor{second, third} {
		_, ev := s.next(t, deliveryDeadline)
		if ev.Type != "cursor" || *ev.Cursor != wantC {
			t.Fatalf("SSE replay: %+v, want %s", ev, wantC.Video)
		}
	}
	// EventSource reconnects with Last-Event-ID.
	s2 := e.sseOpen(tok, "me", "", "Last-Event-ID", second.UpdatedHLC)
	if _, ev := s2.next(t, deliveryDeadline); ev.Cursor.Video != "c" {
		t.Fatalf("Last-Event-ID replay: %+v", ev)
	}
	// Live events follow the replay.
	fourth := e.mustPut(tok, "me", "d", upd(4000, hour, "tv", "s4"))
	if ev := wsNext(t, ws, deliveryDeadline); *ev.Cursor != fourth {
		t.Fatalf("live after replay: %+v", ev)
	}
	if _, ev := s.next(t, deliveryDeadline); *ev.Cursor != fourth {
		t.Fatalf("SSE live after replay: %+v", ev)
	}
}

func TestTakeoverPushedToSupersededDevices(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "film", upd(10*minute, 2*hour, "tv", "s-tv"))
	tv := e.wsDial(tok, "me", "") // the TV's push stream
	tvSSE := e.sseOpen(tok, "me", "")
	time.Sleep(20 * time.Millisecond)
	e.clock.Advance(time.Second)
	phone := e.mustPut(tok, "me", "film", upd(40*minute, 2*hour, "phone", "s-phone"))

	if ev := wsNext(t, tv, deliveryDeadline); ev.Type != "cursor" || *ev.Cursor != phone {
		t.Fatalf("first event %+v", ev)
	}
	ev := wsNext(t, tv, deliveryDeadline)
	if ev.Type != "takeover" || ev.Video == nil || *ev.Video != "film" || ev.Session != "s-tv" ||
		ev.By == nil || ev.By.Device != "phone" || ev.By.Session != "s-phone" {
		t.Fatalf("takeover event: %+v", ev)
	}
	tvSSE.next(t, deliveryDeadline)
	if _, ev := tvSSE.next(t, deliveryDeadline); ev.Type != "takeover" || ev.Session != "s-tv" {
		t.Fatalf("SSE takeover: %+v", ev)
	}
	// The same session continuing is no takeover.
	e.mustPut(tok, "me", "film", upd(41*minute, 2*hour, "phone", "s-phone"))
	if ev := wsNext(t, tv, deliveryDeadline); ev.Type != "cursor" {
		t.Fatalf("want a cursor event, got %+v", ev)
	}
	e.mustPut(tok, "me", "other", upd(1*minute, 2*hour, "phone", "s-x"))
	if ev := wsNext(t, tv, deliveryDeadline); ev.Type != "cursor" || ev.Cursor.Video != "other" {
		t.Fatalf("want the next cursor, got %+v (a spurious takeover?)", ev)
	}
}

func TestWebSocketUpdateAck(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "")
	wsSend(t, ws, map[string]any{"type": "update", "id": "m1", "video": "ep-1", "position_ms": 600000,
		"duration_ms": 2580000, "device": "phone", "session": "s1", "state": "paused"})
	var ack, push tEvent
	for i := 0; i < 2; i++ { // the ack and our own cursor event, in either order
		ev := wsNext(t, ws, deliveryDeadline)
		if ev.Type == "ack" {
			ack = ev
		} else {
			push = ev
		}
	}
	if ack.ID == nil || *ack.ID != "m1" || !ack.Applied || ack.Cursor == nil || ack.Cursor.PositionMs != 600000 {
		t.Fatalf("ack: %+v", ack)
	}
	if push.Type != "cursor" || *push.Cursor != *ack.Cursor {
		t.Fatalf("push: %+v", push)
	}
	if c, _ := e.get(tok, "me", "ep-1"); c != *ack.Cursor {
		t.Fatalf("stored %+v, acked %+v", c, ack.Cursor)
	}
	// Stale: ack applied false with the current cursor.
	ep := ack.Cursor.epoch()
	wsSend(t, ws, map[string]any{"type": "update", "id": "m2", "video": "ep-1", "position_ms": 1000,
		"duration_ms": 2580000, "device": "phone", "session": "s0", "epoch": hs(ep - 1000)})
	ev := wsNext(t, ws, deliveryDeadline)
	if ev.Type != "ack" || *ev.ID != "m2" || ev.Applied || ev.Cursor.PositionMs != 600000 {
		t.Fatalf("stale ack: %+v", ev)
	}
	// Errors answer with the id; the connection stays up.
	for _, bad := range []any{
		map[string]any{"type": "update", "id": "m3", "video": "ep-1", "position_ms": -1, "duration_ms": 10, "device": "d", "session": "s"},
		map[string]any{"type": "update", "id": "m4", "position_ms": 1, "duration_ms": 10, "device": "d", "session": "s"},
		map[string]any{"type": "subscribe", "id": "m5"},
	} {
		wsSend(t, ws, bad)
		ev := wsNext(t, ws, deliveryDeadline)
		if ev.Type != "error" || ev.ID == nil || ev.Error == nil || ev.Error.Code != "bad_request" {
			t.Fatalf("error reply to %v: %+v", bad, ev)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ws.Write(ctx, websocket.MessageText, []byte("{not json"))
	if ev := wsNext(t, ws, deliveryDeadline); ev.Type != "error" || ev.ID != nil {
		t.Fatalf("reply to bad JSON: %+v", ev)
	}
	wsSend(t, ws, map[string]any{"type": "update", "id": "m6", "video": "ep-1", "position_ms": 700000,
		"duration_ms": 2580000, "device": "phone", "session": "s1"})
	for {
		ev := wsNext(t, ws, deliveryDeadline)
		if ev.Type == "ack" {
			if *ev.ID != "m6" || !ev.Applied {
				t.Fatalf("ack after errors: %+v", ev)
			}
			break
		}
	}
	if c, _ := e.get(tok, "me", "ep-1"); c.PositionMs != 700000 {
		t.Fatalf("bad messages changed state: %+v", c)
	}
}

func TestClearedEvents(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "a", upd(10*minute, hour, "tv", "s1"))
	e.mustPut(tok, "me", "b", upd(10*minute, hour, "tv", "s2"))
	ws := e.wsDial(tok, "me", "")
	s := e.sseOpen(tok, "me", "")
	time.Sleep(20 * time.Millisecond)

	id := crdt.EntryID("a", "s1")
	want(t, e.do("DELETE", "/v1/profiles/me/history/"+id, tok, nil), 204, "")
	want(t, e.do("DELETE", "/v1/profiles/me/history?video=b", tok, nil), 204, "")
	want(t, e.do("DELETE", "/v1/profiles/me/history", tok, nil), 204, "")
	checks := []func(tEvent) bool{
		func(ev tEvent) bool { return ev.Video != nil && *ev.Video == "a" && ev.Entry == id },
		func(ev tEvent) bool { return ev.Video != nil && *ev.Video == "b" && ev.Entry == "" },
		func(ev tEvent) bool { return ev.Video == nil },
	}
	for i, ok := range checks {
		ev := wsNext(t, ws, deliveryDeadline)
		if ev.Type != "cleared" || !ok(ev) {
			t.Fatalf("WebSocket cleared event %d: %+v", i, ev)
		}
		raw, sev := s.next(t, deliveryDeadline)
		if sev.Type != "cleared" || !ok(sev) {
			t.Fatalf("SSE cleared event %d: %+v", i, sev)
		}
		if i == 2 && !strings.Contains(string(raw.data), `"video":null`) {
			t.Fatalf("delete all must carry video null: %s", raw.data)
		}
	}
}

func TestEventsNeedWebSocketOrSSE(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	want(t, e.do("GET", "/v1/profiles/me/events", tok, nil), 400, "bad_request")
	want(t, e.do("GET", "/v1/profiles/me/events", tok, nil, "Upgrade", "websocket"), 400, "bad_request") // no key/version
	want(t, e.do("GET", "/v1/profiles/me/events?after=x", tok, nil, "Accept", "text/event-stream"), 400, "bad_request")
}

func TestAccessTokenQueryOnlyOnEvents(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "a", upd(10*minute, hour, "tv", "s1"))
	want(t, e.do("GET", "/v1/profiles/me/positions/a?access_token="+tok, "", nil), 401, "unauthorized")
	s := e.sseOpen("", "me", "?after=0&access_token="+tok)
	if _, ev := s.next(t, deliveryDeadline); ev.Cursor == nil || ev.Cursor.Video != "a" {
		t.Fatalf("SSE with access_token: %+v", ev)
	}
	ws := e.wsDial("", "me", "?after=0&access_token="+tok)
	if ev := wsNext(t, ws, deliveryDeadline); ev.Cursor == nil || ev.Cursor.Video != "a" {
		t.Fatalf("WebSocket with access_token: %+v", ev)
	}
	want(t, e.do("GET", "/v1/profiles/me/events?access_token=garbage", "", nil, "Accept", "text/event-stream"), 401, "unauthorized")
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	h := NewHub(2)
	a := gossip.Ref{Account: "A", Profile: "p"}
	slow, _ := h.Subscribe(a)
	defer slow.Close()
	other, _ := h.Subscribe(gossip.Ref{Account: "B", Profile: "p"})
	defer other.Close()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5; i++ { // five videos: nothing to conflate
			v := string(rune('a' + i))
			h.Notify([]gossip.Event{{Ref: a, Type: gossip.EventCursor, Video: v, Cursor: crdt.Cursor{Video: v}}})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Notify blocked on a slow subscriber")
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber not dropped")
	}
	if !errors.Is(slow.Err(), ErrSlowSubscriber) || h.Dropped() != 1 || h.Active() != 2 {
		t.Fatalf("err %v dropped %d active %d", slow.Err(), h.Dropped(), h.Active())
	}
	if other.Pending() != 0 {
		t.Fatal("another account's subscriber got the events")
	}
	slow.Close()
	if h.Active() != 1 {
		t.Fatalf("active %d after close", h.Active())
	}
	h.Close()
	if _, err := h.Subscribe(a); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("subscribe after close: %v", err)
	}
	if !errors.Is(other.Err(), ErrShuttingDown) {
		t.Fatalf("close: %v", other.Err())
	}
}

// TestSlowWebSocketReconnectsWithoutLoss overflows a stream's buffer: the
// node closes it with 1013 and a watermark; reconnecting with after= gets
// every cursor.
func TestSlowWebSocketReconnectsWithoutLoss(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PushBuffer = 1 })
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "?after=0")
	time.Sleep(20 * time.Millisecond)
	// Write a batch of many videos at once: one Notify with more events
	// than the buffer holds.
	var ups []any
	for i := 0; i < 20; i++ {
		ups = append(ups, upd(1000, hour, "tv", "s", "video", "v"+string(rune('a'+i))))
	}
	want(t, e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": ups}), 200, "")
	var closeErr websocket.CloseError
	got := map[string]bool{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, data, err := ws.Read(ctx)
		cancel()
		if err != nil {
			if !errors.As(err, &closeErr) {
				t.Fatalf("read: %v", err)
			}
			break
		}
		var ev tEvent
		json.Unmarshal(data, &ev)
		got[ev.Cursor.Video] = true
	}
	if closeErr.Code != websocket.StatusTryAgainLater || !strings.Contains(closeErr.Reason, "after=") {
		t.Fatalf("close %v %q", closeErr.Code, closeErr.Reason)
	}
	after := closeErr.Reason[strings.Index(closeErr.Reason, "after=")+6:]
	ws2 := e.wsDial(tok, "me", "?after="+after)
	for len(got) < 20 {
		ev := wsNext(t, ws2, deliveryDeadline)
		got[ev.Cursor.Video] = true
	}
	r := e.do("GET", "/metrics", "", nil)
	if !strings.Contains(string(r.body), "playhead_push_subscribers_dropped_total 1") {
		t.Errorf("dropped subscriber not counted")
	}
}

func TestHubInterestHooks(t *testing.T) {
	h := NewHub(4)
	var firsts []gossip.Ref
	h.SetOnFirstSubscriber(func(r gossip.Ref) { firsts = append(firsts, r) })
	a, b := gossip.Ref{Account: "a", Profile: "p"}, gossip.Ref{Account: "b", Profile: "p"}
	s1, _ := h.Subscribe(a)
	s2, _ := h.Subscribe(a)
	s3, _ := h.Subscribe(b)
	if len(firsts) != 2 || firsts[0] != a || firsts[1] != b {
		t.Fatalf("first-subscriber calls: %v", firsts)
	}
	if refs := h.Refs(); len(refs) != 2 {
		t.Fatalf("refs: %v", refs)
	}
	s1.Close()
	s3.Close()
	if refs := h.Refs(); len(refs) != 1 || refs[0] != a {
		t.Fatalf("refs after closes: %v", refs)
	}
	s2.Close()
	if refs := h.Refs(); len(refs) != 0 {
		t.Fatalf("refs after all closed: %v", refs)
	}
}

// TestWebSocketPipelinedUpdates: a device that sends many updates without
// waiting (the server merges what is queued as one batch) gets one answer
// per message, in order: acks for the good ones, errors for a malformed one
// and for one the coordinator refuses (clock skew: it fails a whole batch,
// so the server answers that batch's updates one by one); every good
// update is stored.
func TestWebSocketPipelinedUpdates(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "")
	const n = 60
	for i := 0; i < n; i++ {
		m := map[string]any{"type": "update", "id": fmt.Sprintf("m%d", i), "video": fmt.Sprintf("v%d", i%7),
			"position_ms": 60000 + i*1000, "duration_ms": 2580000, "device": "phone", "session": fmt.Sprintf("s%d", i%7)}
		switch i {
		case 10:
			m["position_ms"] = -1 // malformed
		case 25, 41:
			m["epoch"] = hs(e.hlcAt(time.Hour, 0)) // beyond max_clock_skew
		}
		wsSend(t, ws, m)
	}
	last := map[string]int64{}
	for i := 0; i < n; {
		ev := wsNext(t, ws, 5*time.Second)
		if ev.Type != "ack" && ev.Type != "error" {
			continue // a push
		}
		if ev.ID == nil || *ev.ID != fmt.Sprintf("m%d", i) {
			t.Fatalf("answer %d: id %v, want m%d (answers must keep the messages' order)", i, ev.ID, i)
		}
		switch i {
		case 10, 25, 41:
			if ev.Type != "error" || ev.Error.Code != "bad_request" {
				t.Fatalf("answer to bad message m%d: %+v", i, ev)
			}
		default:
			if ev.Type != "ack" || !ev.Applied {
				t.Fatalf("answer to m%d: %+v", i, ev)
			}
			last[fmt.Sprintf("v%d", i%7)] = int64(60000 + i*1000)
		}
		i++
	}
	for v, pos := range last {
		if c, _ := e.get(tok, "me", v); c.PositionMs != pos {
			t.Fatalf("%s stored at %d, want %d", v, c.PositionMs, pos)
		}
	}
}

// TestWebSocketMsgpack: with the playhead.v1.msgpack subprotocol every
// message is binary msgpack with the JSON API's keys; an array of updates
// is answered by one array of answers in order (a bad update gets its
// error in its place); pushes come as msgpack; text messages, malformed
// msgpack and oversized arrays get errors and change nothing.
func TestWebSocketMsgpack(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/profiles/me/events"
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}, Subprotocols: []string{"playhead.v1.msgpack"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if ws.Subprotocol() != "playhead.v1.msgpack" {
		t.Fatalf("subprotocol %q not negotiated", ws.Subprotocol())
	}
	send := func(v any) {
		t.Helper()
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
	}
	// next returns the next answer (skipping pushes, which it checks).
	pushes := 0
	next := func() any {
		t.Helper()
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if typ != websocket.MessageBinary {
				t.Fatalf("a %v message on a msgpack connection", typ)
			}
			var v any
			if err := msgpack.Unmarshal(b, &v); err != nil {
				t.Fatalf("undecodable message %x: %v", b, err)
			}
			if n := msgpackCursorPushes(v); n > 0 {
				pushes += n
				continue
			}
			return v
		}
	}
	up := func(id, video string, pos int64) map[string]any {
		return map[string]any{"type": "update", "id": id, "video": video, "position_ms": pos,
			"duration_ms": 2580000, "device": "phone", "session": "s-" + video}
	}
	bad := up("u2", "b", -5)
	send([]any{up("u0", "a", 600000), up("u1", "b", 700000), bad, up("u3", "c", 800000)})
	got, ok := next().([]any)
	if !ok || len(got) != 4 {
		t.Fatalf("answer to an array of 4: %#v", got)
	}
	for i, g := range got {
		m := g.(map[string]any)
		if m["id"] != fmt.Sprintf("u%d", i) {
			t.Fatalf("answer %d has id %v", i, m["id"])
		}
		if want := map[bool]string{true: "error", false: "ack"}[i == 2]; m["type"] != want {
			t.Fatalf("answer %d: %#v, want %s", i, m, want)
		}
	}
	ack := got[1].(map[string]any)
	cur := ack["cursor"].(map[string]any)
	if ack["applied"] != true || fmt.Sprint(cur["position_ms"]) != "700000" {
		t.Fatalf("ack: %#v", ack)
	}
	if _, isInt := cur["epoch"].(uint64); !isInt {
		if _, isInt8 := cur["epoch"].(int64); !isInt8 {
			t.Fatalf("epoch is a %T, want an unsigned integer", cur["epoch"])
		}
	}
	// One map: one map back.
	send(up("u4", "a", 650000))
	if m, ok := next().(map[string]any); !ok || m["type"] != "ack" || m["id"] != "u4" {
		t.Fatalf("answer to one update: %#v", m)
	}
	// Refusals change nothing.
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"update"}`))
	if m, ok := next().(map[string]any); !ok || m["type"] != "error" {
		t.Fatalf("answer to a text message: %#v", m)
	}
	ws.Write(ctx, websocket.MessageBinary, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // array of 4 G elements
	if m, ok := next().(map[string]any); !ok || m["type"] != "error" {
		t.Fatalf("answer to a hostile array length: %#v", m)
	}
	ws.Write(ctx, websocket.MessageBinary, []byte{0x81, 0xa4, 't', 'y'}) // truncated
	if m, ok := next().(map[string]any); !ok || m["type"] != "error" {
		t.Fatalf("answer to truncated msgpack: %#v", m)
	}
	for v, pos := range map[string]int64{"a": 650000, "b": 700000, "c": 800000} {
		if c, _ := e.get(tok, "me", v); c.PositionMs != pos {
			t.Fatalf("%s stored at %d, want %d", v, c.PositionMs, pos)
		}
	}
	// Our own writes were pushed to this connection too, as msgpack.
	deadline := time.Now().Add(deliveryDeadline)
	for pushes < 4 && time.Now().Before(deadline) {
		rctx, c := context.WithTimeout(ctx, time.Until(deadline))
		typ, b, err := ws.Read(rctx)
		c()
		if err != nil {
			break
		}
		var v any
		if typ == websocket.MessageBinary && msgpack.Unmarshal(b, &v) == nil {
			pushes += msgpackCursorPushes(v)
		}
	}
	if pushes < 4 {
		t.Fatalf("%d msgpack pushes, want 4", pushes)
	}
}

// msgpackCursorPushes counts the cursor events of a msgpack server message:
// one event (a map) or several (an array of maps); 0 for anything else.
func msgpackCursorPushes(v any) int {
	isCursor := func(x any) bool { m, ok := x.(map[string]any); return ok && m["type"] == "cursor" }
	if isCursor(v) {
		return 1
	}
	n := 0
	if a, ok := v.([]any); ok {
		for _, x := range a {
			if isCursor(x) {
				n++
			}
		}
	}
	return n
}

// TestLongPollSinceResumePoint: a poll that starts a new subscription
// answers every cursor above since (the device's resume point), not only
// those above after (the newest it saw): a change stamped below after may
// never have reached the device, since changes arrive out of updated_hlc
// order. Without since the poll answers above after, as before.
func TestLongPollSinceResumePoint(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	first := e.mustPut(tok, "me", "ep-1", upd(1000, 2580000, "tv", "s1"))
	second := e.mustPut(tok, "me", "ep-2", upd(1000, 2580000, "tv", "s2"))
	var b struct {
		Cursors []tCursor `json:"cursors"`
		HLC     string    `json:"hlc"`
	}
	r := e.do("GET", "/v1/profiles/me/changes?wait=0&after="+second.UpdatedHLC+"&since=0", tok, nil)
	want(t, r, 200, "")
	r.decode(t, &b)
	if len(b.Cursors) != 2 || b.Cursors[0] != first || b.Cursors[1] != second || b.HLC != second.UpdatedHLC {
		t.Fatalf("poll with since=0: %s", r.body)
	}
	r = e.do("GET", "/v1/profiles/me/changes?wait=0&after="+first.UpdatedHLC, tok, nil)
	r.decode(t, &b)
	if len(b.Cursors) != 1 || b.Cursors[0] != second {
		t.Fatalf("poll without since: %s", r.body)
	}
	// since above after is after.
	r = e.do("GET", "/v1/profiles/me/changes?wait=0&after="+first.UpdatedHLC+"&since="+second.UpdatedHLC, tok, nil)
	r.decode(t, &b)
	if len(b.Cursors) != 1 || b.Cursors[0] != second {
		t.Fatalf("poll with since above after: %s", r.body)
	}
	want(t, e.do("GET", "/v1/profiles/me/changes?wait=0&since=x", tok, nil), 400, "bad_request")
}

// TestLongPollKeptAnswersBelowAfter: a cursor that reaches the node while a
// poll waits is answered when it is above since, even if it is stamped
// below after (the newest the device saw): it may be a change the device
// never had, coordinated elsewhere and delivered late.
func TestLongPollKeptAnswersBelowAfter(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "ep-1", upd(1000, 2580000, "tv", "s1"))
	e.clock.Advance(time.Second)
	newest := e.mustPut(tok, "me", "ep-2", upd(1000, 2580000, "tv", "s2"))
	var b struct {
		Cursors []tCursor `json:"cursors"`
		HLC     string    `json:"hlc"`
		Poll    string    `json:"poll"`
	}
	r := e.do("GET", "/v1/profiles/me/changes?wait=0&include=cleared&after="+newest.UpdatedHLC, tok, nil)
	want(t, r, 200, "")
	r.decode(t, &b)
	if b.Poll == "" || len(b.Cursors) != 0 {
		t.Fatalf("first poll: %s", r.body)
	}
	ref := gossip.Ref{Account: "acct-1", Profile: "me"}
	late, ok, _ := e.n.svc.Cursor(context.Background(), ref, "ep-1")
	if !ok {
		t.Fatal("no cursor")
	}
	late.Video = "ep-3"
	late.UpdatedHLC = mustHLC(newest.UpdatedHLC) - 1
	done := make(chan *resp, 1)
	go func() {
		done <- e.do("GET", "/v1/profiles/me/changes?wait=5s&include=cleared&poll="+b.Poll+"&after="+newest.UpdatedHLC+"&since=0", tok, nil)
	}()
	time.Sleep(100 * time.Millisecond) // the poll is waiting
	e.n.hub.Notify([]gossip.Event{{Ref: ref, Type: gossip.EventCursor, Cursor: late, Video: "ep-3"}})
	select {
	case r = <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the poll did not answer the late cursor")
	}
	want(t, r, 200, "")
	r.decode(t, &b)
	if len(b.Cursors) != 1 || b.Cursors[0].Video != "ep-3" {
		t.Fatalf("poll: %s, want the late ep-3", r.body)
	}
}
