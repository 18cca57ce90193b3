package node

import (
	"context"

	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
)

func videosOf(items []tCursor) []string {
	out := []string{}
	for _, c := range items {
		out = append(out, c.Video)
	}
	return out
}

func TestHideFromContinueWatching(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "film", upd(10*minute, 100*minute, "tv", "s1"))
	// ep-1 completed opens ep-2's placeholder row.
	e.mustPut(tok, "me", "ep-1", upd(100*minute, 100*minute, "tv", "s2", "state", "completed", "next_video", "ep-2"))
	if got := videosOf(e.continueOf(tok, "me", "")); strings.Join(got, ",") != "ep-2,film" {
		t.Fatalf("row before the hide: %v", got)
	}
	e.clock.Advance(time.Second)
	want(t, e.do("DELETE", "/v1/profiles/me/continue-watching/film", tok, nil), 204, "")
	want(t, e.do("DELETE", "/v1/profiles/me/continue-watching/ep-1", tok, nil), 204, "")
	if got := e.continueOf(tok, "me", ""); len(got) != 0 {
		t.Fatalf("row after hiding the film and ep-1 (and so its next-episode row): %v", videosOf(got))
	}
	// The resume position stays readable, history untouched.
	if c, ok := e.get(tok, "me", "film"); !ok || c.PositionMs != 10*minute {
		t.Fatalf("hidden film's cursor: %+v %v", c, ok)
	}
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != 2 {
		t.Fatalf("history after hides: %d entries, want 2", len(h.Entries))
	}
	// Hiding again is idempotent.
	want(t, e.do("DELETE", "/v1/profiles/me/continue-watching/film", tok, nil), 204, "")

	// A stale replay from before the hide (its seq below it) does not show it.
	stale := e.hlcAt(-500*time.Millisecond, 0)
	r, _ := e.putPos(tok, "me", "film", upd(11*minute, 100*minute, "tv", "s1", "epoch", hs(stale), "seq", hs(stale)))
	if r.status != 409 && r.status != 200 {
		t.Fatalf("replay: %s", r)
	}
	if got := e.continueOf(tok, "me", ""); len(got) != 0 {
		t.Fatalf("a replay from before the hide shows %v again", videosOf(got))
	}
	// A report made after the hide shows it again.
	e.clock.Advance(time.Second)
	e.mustPut(tok, "me", "film", upd(12*minute, 100*minute, "tv", "s1"))
	if got := videosOf(e.continueOf(tok, "me", "")); strings.Join(got, ",") != "film" {
		t.Fatalf("row after a report made after the hide: %v, want [film]", got)
	}
}

func TestHideNextEpisodePlaceholder(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "ep-1", upd(100*minute, 100*minute, "tv", "s2", "state", "completed", "next_video", "ep-2"))
	e.clock.Advance(time.Second)
	want(t, e.do("DELETE", "/v1/profiles/me/continue-watching/ep-2", tok, nil), 204, "")
	if got := e.continueOf(tok, "me", ""); len(got) != 0 {
		t.Fatalf("hidden next-episode row still shows: %v", videosOf(got))
	}
}

func TestHidePushed(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "")
	time.Sleep(20 * time.Millisecond)
	want(t, e.do("DELETE", "/v1/profiles/me/continue-watching/film", tok, nil), 204, "")
	ev := wsNext(t, ws, deliveryDeadline)
	if ev.Type != "hidden" || ev.Video == nil || *ev.Video != "film" {
		t.Fatalf("event %+v, want hidden film", ev)
	}
}

func TestMarkWatchedAndUnwatched(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ws := e.wsDial(tok, "me", "")
	time.Sleep(20 * time.Millisecond)
	e.mustPut(tok, "me", "ep-1", upd(30*minute, 100*minute, "tv", "s1", "next_video", "ep-2"))
	wsNext(t, ws, deliveryDeadline) // the cursor
	e.clock.Advance(time.Second)

	r := e.do("PUT", "/v1/profiles/me/positions/ep-1/watched", tok, map[string]any{"watched": true})
	want(t, r, 200, "")
	var w tWrite
	r.decode(t, &w)
	if !w.Applied || w.Cursor == nil || !w.Cursor.Completed || w.Cursor.ResumeMs != 0 || w.Cursor.State != "completed" {
		t.Fatalf("watched: %s", r)
	}
	if got := videosOf(e.continueOf(tok, "me", "")); strings.Join(got, ",") != "ep-2" {
		t.Fatalf("row after watched: %v, want the next episode", got)
	}
	// Pushed: the cursor, and a takeover of the session that was playing.
	seen := map[string]bool{}
	for range 2 {
		seen[wsNext(t, ws, deliveryDeadline).Type] = true
	}
	if !seen["cursor"] || !seen["takeover"] {
		t.Fatalf("pushes after watched: %v", seen)
	}
	// The superseded session's next report is stale: the mark took over.
	r2, _ := e.putPos(tok, "me", "ep-1", upd(31*minute, 100*minute, "tv", "s1"))
	want(t, r2, 409, "stale_write")
	// History is not rewritten.
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != 1 || h.Entries[0].PositionMs != 30*minute {
		t.Fatalf("history after the mark: %+v", h.Entries)
	}

	e.clock.Advance(time.Second)
	r = e.do("PUT", "/v1/profiles/me/positions/ep-1/watched", tok, map[string]any{"watched": false})
	want(t, r, 200, "")
	w = tWrite{}
	r.decode(t, &w)
	if w.Cursor == nil || w.Cursor.Completed || w.Cursor.PositionMs != 0 || w.Cursor.ResumeMs != 0 || w.Cursor.DurationMs != 100*minute {
		t.Fatalf("unwatched: %s", r)
	}
	if got := e.continueOf(tok, "me", ""); len(got) != 0 {
		t.Fatalf("row after unwatched: %v", videosOf(got))
	}
}

func TestMarkRules(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	for _, c := range []struct {
		name, path string
		body       any
		status     int
		code       string
	}{
		{"no cursor and no duration", "/v1/profiles/me/positions/new/watched", `{"watched": true}`, 400, "bad_request"},
		{"watched missing", "/v1/profiles/me/positions/new/watched", `{"duration_ms": 1000}`, 400, "bad_request"},
		{"watched not a bool", "/v1/profiles/me/positions/new/watched", `{"watched": "yes"}`, 400, "bad_request"},
		{"bad duration", "/v1/profiles/me/positions/new/watched", `{"watched": true, "duration_ms": 0}`, 400, "bad_request"},
		{"bad device", "/v1/profiles/me/positions/new/watched", `{"watched": true, "duration_ms": 5, "device": "a/b"}`, 400, "bad_request"},
		{"empty body", "/v1/profiles/me/positions/new/watched", ``, 400, "bad_request"},
		{"no cursor, with duration", "/v1/profiles/me/positions/new/watched", `{"watched": true, "duration_ms": 6000000}`, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			want(t, e.do("PUT", c.path, tok, c.body), c.status, c.code)
		})
	}
	if _, ok := e.get(tok, "me", "never"); ok {
		t.Fatal("a refused mark created a cursor")
	}
	if c, ok := e.get(tok, "me", "new"); !ok || c.State != "completed" || c.Session != "playhead:mark" {
		t.Fatalf("marked video: %+v %v", c, ok)
	}
}

// exportLines reads an NDJSON export.
func exportLines(t *testing.T, r *resp) []api.ExportLine {
	t.Helper()
	var out []api.ExportLine
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l api.ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func TestExportNDJSON(t *testing.T) {
	old := exportPageSize
	exportPageSize = 3 // many pages
	t.Cleanup(func() { exportPageSize = old })
	e := newEnv(t)
	tok := e.token("acct-1")
	want(t, e.do("PUT", "/v1/profiles/me/settings", tok, `{"history_paused": false}`), 200, "")
	const videos = 10
	for i := range videos {
		e.mustPut(tok, "me", fmt.Sprintf("v%02d", i), upd(10*minute, 100*minute, "tv", fmt.Sprintf("s%d", i)))
		e.mustPut(tok, "me", fmt.Sprintf("v%02d", i), upd(20*minute, 100*minute, "phone", fmt.Sprintf("t%d", i)))
	}
	want(t, e.do("DELETE", "/v1/profiles/me/continue-watching/v03", tok, nil), 204, "")
	want(t, e.do("DELETE", "/v1/profiles/me/history?video=v09", tok, nil), 204, "")
	r := e.do("GET", "/v1/profiles/me/export", tok, nil)
	want(t, r, 200, "")
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	lines := exportLines(t, r)
	if len(lines) == 0 || lines[0].Type != "settings" || lines[0].Settings == nil {
		t.Fatalf("first line: %+v", lines)
	}
	cursors, entries, hidden := 0, 0, 0
	for _, l := range lines[1 : len(lines)-1] {
		switch l.Type {
		case "cursor":
			cursors++
			if *l.Hidden {
				hidden++
				if l.Cursor.Video != "v03" {
					t.Errorf("hidden %s", l.Cursor.Video)
				}
			}
			if l.Cursor.Video == "v09" {
				t.Error("a deleted cursor is exported")
			}
		case "entry":
			entries++
		default:
			t.Errorf("line type %q", l.Type)
		}
	}
	end := lines[len(lines)-1]
	if end.Type != "end" || *end.Cursors != videos-1 || *end.Entries != 2*(videos-1) {
		t.Fatalf("end line %+v", end)
	}
	if cursors != videos-1 || entries != 2*(videos-1) || hidden != 1 {
		t.Fatalf("exported %d cursors (%d hidden), %d entries; want %d, 1, %d", cursors, hidden, entries, videos-1, 2*(videos-1))
	}
}

// TestExportBoundedMemory: the export never asks the service for more than
// one page at a time, however large the history.
func TestExportBoundedMemory(t *testing.T) {
	old := exportPageSize
	exportPageSize = 7
	t.Cleanup(func() { exportPageSize = old })
	e := newEnv(t)
	tok := e.token("acct-1")
	var ups []map[string]any
	for i := range 200 {
		u := upd(10*minute, 100*minute, "tv", fmt.Sprintf("s%d", i))
		u["video"] = fmt.Sprintf("v%03d", i%20)
		ups = append(ups, u)
	}
	want(t, e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": ups}), 200, "")
	spy := &pageSpy{Service: e.n.svc}
	e.n.svc = spy
	r := e.do("GET", "/v1/profiles/me/export", tok, nil)
	want(t, r, 200, "")
	lines := exportLines(t, r)
	if end := lines[len(lines)-1]; end.Type != "end" || *end.Entries != 200 || *end.Cursors != 20 {
		t.Fatalf("end line %+v", end)
	}
	if spy.max > 7 || spy.calls < 200/7 {
		t.Fatalf("pages: %d calls, largest %d records; want pages of at most 7", spy.calls, spy.max)
	}
}

func TestExportRefusesUnknownQuery(t *testing.T) {
	e := newEnv(t)
	want(t, e.do("GET", "/v1/profiles/me/export?format=csv", e.token("acct-1"), nil), 400, "bad_request")
}

var _ = http.StatusOK

// pageSpy counts the export pages a handler asks for.
type pageSpy struct {
	gossip.Service
	calls, max int
}

func (s *pageSpy) ExportPage(ctx context.Context, ref gossip.Ref, kind crdt.Kind, after string, limit int) (gossip.ExportPage, error) {
	p, err := s.Service.ExportPage(ctx, ref, kind, after, limit)
	s.calls++
	s.max = max(s.max, len(p.Cursors)+len(p.Entries))
	return p, err
}
