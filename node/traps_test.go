package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip"
)

// The traps of issue 13, each as a new integrator met it on `playhead dev`.

func TestTrapTypoQueryDoesNotWipeHistory(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "a", upd(10*minute, 100*minute, "tv", "s1"))
	e.mustPut(tok, "me", "b", upd(10*minute, 100*minute, "tv", "s2"))
	r := e.do("DELETE", "/v1/profiles/me/history?vidoe=a", tok, nil)
	want(t, r, 400, "bad_request")
	if !strings.Contains(r.String(), "vidoe") || !strings.Contains(r.String(), "video") {
		t.Errorf("message should name the unknown parameter and the known one: %s", r)
	}
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != 2 {
		t.Fatalf("a refused delete changed the history: %d entries", len(h.Entries))
	}
}

// Every profile endpoint refuses a parameter it does not read.
func TestUnknownQueryParameterRefusedEverywhere(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	for pattern := range queryParams {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{profile}", "me", "{video}", "v", "{entry_id}", "0123").Replace(path)
		tk := tok
		if strings.HasPrefix(path, "/v1/cluster") {
			tk = e.adminToken("acct-1")
		}
		r := e.do(method, path+"?bogus=1", tk, "{}")
		if r.status != 400 || r.errCode() != "bad_request" || !strings.Contains(r.String(), "bogus") {
			t.Errorf("%s ?bogus=1: %s, want 400 bad_request naming the parameter", pattern, r)
		}
	}
}

func TestTrapStalePutChangesNothing(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "v", upd(10*minute, 100*minute, "tv", "s1"))
	e.clock.Advance(time.Second)
	e.mustPut(tok, "me", "v", upd(20*minute, 100*minute, "phone", "s2"))
	before := e.historyOf(tok, "me", "")
	// A new session with an old epoch: stale.
	old := e.hlcAt(-500*time.Millisecond, 0)
	r, _ := e.putPos(tok, "me", "v", upd(50*minute, 100*minute, "laptop", "s3", "epoch", hs(old), "seq", hs(old)))
	want(t, r, 409, "stale_write")
	// The superseded session keeps reporting: stale too.
	r, _ = e.putPos(tok, "me", "v", upd(40*minute, 100*minute, "tv", "s1"))
	want(t, r, 409, "stale_write")
	after := e.historyOf(tok, "me", "")
	if len(after.Entries) != len(before.Entries) {
		t.Fatalf("stale writes created history entries: %d → %d", len(before.Entries), len(after.Entries))
	}
	for i := range after.Entries {
		if after.Entries[i] != before.Entries[i] {
			t.Fatalf("a stale write changed an entry:\n%+v\n%+v", before.Entries[i], after.Entries[i])
		}
	}
}

func TestTrapExpiredVersionNamesTheReason(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	old := e.hlcAt(-31*24*time.Hour, 0)
	r, _ := e.putPos(tok, "me", "never-deleted", upd(10*minute, 100*minute, "tv", "s1", "epoch", hs(old), "seq", hs(old)))
	want(t, r, 409, "stale_write")
	if strings.Contains(r.String(), "deletion") || !strings.Contains(r.String(), "cursor_ttl") {
		t.Fatalf("a 31-day-old version must be refused as expired, not as deleted: %s", r)
	}
	// And a real deletion still says so.
	e.mustPut(tok, "me", "v", upd(10*minute, 100*minute, "tv", "s1"))
	want(t, e.do("DELETE", "/v1/profiles/me/history?video=v", tok, nil), 204, "")
	before := e.hlcAt(-time.Second, 0)
	r, _ = e.putPos(tok, "me", "v", upd(10*minute, 100*minute, "tv", "s9", "epoch", hs(before), "seq", hs(before)))
	want(t, r, 409, "stale_write")
	if !strings.Contains(r.String(), "deletion") {
		t.Fatalf("a write below a deletion: %s", r)
	}
}

func TestTrapSinglePutSpeaksTheAPIsLanguage(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ahead := e.hlcAt(120*time.Second, 0)
	r, _ := e.putPos(tok, "me", "v2", upd(10*minute, 100*minute, "tv", "s1", "epoch", hs(ahead), "seq", hs(ahead)))
	want(t, r, 400, "bad_request")
	for _, bad := range []string{"update 0", "crdt:", "gossip:", "updates["} {
		if strings.Contains(r.String(), bad) {
			t.Errorf("single PUT message contains %q: %s", bad, r)
		}
	}
	if !strings.Contains(r.String(), "120000 ms ahead") {
		t.Errorf("message should say how far ahead: %s", r)
	}
	// A batch names the update.
	u := upd(10*minute, 100*minute, "tv", "s1", "epoch", hs(ahead), "seq", hs(ahead), "video", "v2")
	ok := upd(10*minute, 100*minute, "tv", "s1", "video", "v1")
	r = e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": []any{ok, u}})
	want(t, r, 400, "bad_request")
	if !strings.Contains(r.String(), `updates[1] (video \"v2\")`) || strings.Contains(r.String(), "crdt:") {
		t.Errorf("batch message: %s", r)
	}
}

func TestTrapDotIDsRefused(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	for _, id := range []string{".", ".."} {
		u := upd(10*minute, 100*minute, "tv", "s1", "video", id)
		r := e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": []any{u}})
		want(t, r, 400, "bad_request")
	}
	for _, p := range []string{"/v1/profiles/me/positions/..", "/v1/profiles/me/positions/.", "/v1/profiles/me/positions/%2e%2e",
		"/v1/profiles/me//positions/v", "/v1/profiles/me/history/"} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			r := e.do(m, p, tok, upd(10*minute, 100*minute, "tv", "s1"))
			if r.status != 400 && r.status != 404 && r.status != 405 {
				t.Errorf("%s %s: %s, want a JSON 4xx", m, p, r)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q (%s), want a JSON error, never an HTML redirect", m, p, ct, r)
			}
		}
	}
}

// An SSE reconnect with Last-Event-ID never delivers a cursor older than
// one the device got just before: a late push of an older change (a
// replica's repair or catch-up arriving after the reconnect) is dropped.
// The replay may repeat what the device holds (the id is the stream's
// resume point, below what it received), never go below it.
func TestTrapSSEReconnectNeverGoesBack(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	s := e.sseOpen(tok, "me", "")
	e.mustPut(tok, "me", "v", upd(10*minute, 100*minute, "tv", "s1"))
	_, firstEv := s.next(t, deliveryDeadline)
	e.clock.Advance(time.Second)
	e.mustPut(tok, "me", "v", upd(20*minute, 100*minute, "tv", "s1"))
	raw, ev := s.next(t, deliveryDeadline)
	if ev.Cursor == nil || ev.Cursor.PositionMs != 20*minute {
		t.Fatalf("second event %+v", ev)
	}
	s.res.Body.Close()

	// Reconnect with the last id; then the older change is pushed late.
	s2 := e.sseOpen(tok, "me", "", "Last-Event-ID", raw.id)
	time.Sleep(20 * time.Millisecond) // let the subscription register
	older, ok, _ := e.n.svc.Cursor(context.Background(), gossip.Ref{Account: "acct-1", Profile: "me"}, "v")
	if !ok {
		t.Fatal("no cursor")
	}
	older.PositionMs = 10 * minute
	older.Version.Seq = mustHLC(firstEv.Cursor.UpdatedHLC) - 1
	older.UpdatedHLC = mustHLC(firstEv.Cursor.UpdatedHLC)
	e.n.hub.Notify([]gossip.Event{{Ref: gossip.Ref{Account: "acct-1", Profile: "me"}, Type: gossip.EventCursor, Cursor: older, Video: "v"}})
	e.clock.Advance(time.Second)
	e.mustPut(tok, "me", "v", upd(30*minute, 100*minute, "tv", "s1"))
	for {
		_, ev = s2.next(t, deliveryDeadline)
		if ev.Type != "cursor" || ev.Cursor == nil || ev.Cursor.PositionMs < 20*minute {
			t.Fatalf("after the reconnect the device got %+v, never older than the 20m it had", ev.Cursor)
		}
		if ev.Cursor.PositionMs == 30*minute {
			break
		}
	}
}

func TestTrapPausedSessionStartedAtOutsideWindow(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	want(t, e.do("PUT", "/v1/profiles/me/settings", tok, `{"history_paused": true}`), 200, "")
	e.clock.Advance(time.Second)
	e.mustPut(tok, "me", "v", upd(10*minute, 100*minute, "tv", "s1"))
	e.clock.Advance(time.Minute)
	r := e.do("PUT", "/v1/profiles/me/settings", tok, `{"history_paused": false}`)
	want(t, r, 200, "")
	resumedAt := e.clock.Now()
	e.clock.Advance(time.Minute)
	e.mustPut(tok, "me", "v", upd(12*minute, 100*minute, "tv", "s1"))
	h := e.historyOf(tok, "me", "")
	if len(h.Entries) != 1 {
		t.Fatalf("entries %+v", h.Entries)
	}
	started, err := time.Parse(time.RFC3339Nano, h.Entries[0].StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	if started.Before(resumedAt.Add(-time.Millisecond)) {
		t.Fatalf("started_at %v lies inside the paused window (history resumed at %v)", started, resumedAt)
	}
}
