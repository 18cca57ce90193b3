package node

import (
	"fmt"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

func TestContinueWatchingOrderAndLimit(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	for i := 0; i < 25; i++ {
		e.mustPut(tok, "me", fmt.Sprintf("v%02d", i), upd(10*minute, hour, "tv", fmt.Sprintf("s%d", i)))
		e.clock.Advance(time.Second)
	}
	// Touching v03 moves it to the front.
	e.mustPut(tok, "me", "v03", upd(11*minute, hour, "tv", "s3"))

	items := e.continueOf(tok, "me", "")
	if len(items) != 20 {
		t.Fatalf("default limit: %d items, want 20", len(items))
	}
	if items[0].Video != "v03" || items[1].Video != "v24" || items[19].Video != "v06" {
		t.Fatalf("order: %s %s … %s", items[0].Video, items[1].Video, items[19].Video)
	}
	for i := 1; i < len(items); i++ {
		if items[i-1].updated() <= items[i].updated() || items[i-1].UpdatedAt < items[i].UpdatedAt {
			t.Fatalf("not newest first at %d: %s then %s", i, items[i-1].UpdatedHLC, items[i].UpdatedHLC)
		}
	}
	if n := len(e.continueOf(tok, "me", "?limit=50")); n != 25 {
		t.Fatalf("limit=50: %d items", n)
	}
	if n := len(e.continueOf(tok, "me", "?limit=1")); n != 1 {
		t.Fatalf("limit=1: %d items", n)
	}
	for _, q := range []string{"?limit=51", "?limit=0", "?limit=-1", "?limit=abc", "?limit="} {
		want(t, e.do("GET", "/v1/profiles/me/continue-watching"+q, tok, nil), 400, "bad_request")
	}
}

func TestContinueWatchingShowsNextEpisode(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "kids", "ep-1", upd(44*minute, 45*minute, "tv", "s1", "state", "completed",
		"series_id", "show-1", "next_video", "ep-2", "title", "Episode 1"))
	e.clock.Advance(time.Second)
	e.mustPut(tok, "kids", "film", upd(20*minute, 2*hour, "tv", "s0"))

	items := e.continueOf(tok, "kids", "")
	if len(items) != 2 || items[0].Video != "film" {
		t.Fatalf("row: %+v", items)
	}
	next := items[1]
	if next.Video != "ep-2" || next.PositionMs != 0 || next.ResumeMs != 0 || next.State != "stopped" ||
		next.DurationMs != 0 || next.Completed || next.SeriesID != "show-1" ||
		next.Epoch != "0" || next.Seq != "0" || next.Title != "" || next.Session != "" || next.Device != "" {
		t.Fatalf("next-episode placeholder: %+v", next)
	}
	ep1, _ := e.get(tok, "kids", "ep-1")
	if next.UpdatedHLC != ep1.UpdatedHLC {
		t.Errorf("placeholder sorts at %s, completed episode at %s", next.UpdatedHLC, ep1.UpdatedHLC)
	}

	// The next episode started and is resumable: it shows itself, once.
	e.clock.Advance(time.Second)
	e.mustPut(tok, "kids", "ep-2", upd(10*minute, 45*minute, "tv", "s2", "series_id", "show-1", "next_video", "ep-3"))
	items = e.continueOf(tok, "kids", "")
	if len(items) != 2 || items[0].Video != "ep-2" || items[0].PositionMs != 10*minute || items[1].Video != "film" {
		t.Fatalf("row with ep-2 started: %+v", items)
	}

	// The next episode barely started (below 5 %): it shows from the start.
	e.mustPut(tok, "kids", "ep-2", upd(1*minute, 45*minute, "tv", "s3"))
	items = e.continueOf(tok, "kids", "")
	if len(items) != 2 || items[0].Video != "ep-2" || items[0].ResumeMs != 0 || items[0].Session != "s3" {
		t.Fatalf("row with ep-2 barely started: %+v", items)
	}

	// The next episode completed too, and names ep-3: the chain moves on.
	e.clock.Advance(time.Second)
	e.mustPut(tok, "kids", "ep-2", upd(45*minute, 45*minute, "tv", "s3"))
	items = e.continueOf(tok, "kids", "")
	if len(items) != 2 || items[0].Video != "ep-3" || items[0].PositionMs != 0 || items[1].Video != "film" {
		t.Fatalf("row with ep-2 completed: %+v", items)
	}
	for _, it := range items {
		if it.Video == "ep-1" || it.Video == "ep-2" {
			t.Fatalf("a completed episode is in the row: %+v", items)
		}
	}
}

func TestHistoryPagingVisitsEveryEntryOnce(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	const total = 25
	for i := 0; i < total; i++ {
		e.mustPut(tok, "me", fmt.Sprintf("h%02d", i), upd(10*minute, hour, "tv", fmt.Sprintf("s%d", i)))
		e.clock.Advance(time.Minute)
	}
	seen := map[string]bool{}
	var all []api.HistoryEntry
	page := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		q := "?limit=7"
		if page != "" {
			q += "&page=" + url.QueryEscape(page)
		}
		h := e.historyOf(tok, "me", q)
		if len(h.Entries) > 7 {
			t.Fatalf("page of %d", len(h.Entries))
		}
		for _, en := range h.Entries {
			if seen[en.ID] {
				t.Fatalf("entry %s on two pages", en.ID)
			}
			seen[en.ID] = true
			all = append(all, en)
		}
		if h.NextPage == nil {
			break
		}
		page = *h.NextPage
	}
	if len(all) != total {
		t.Fatalf("paged through %d entries, want %d", len(all), total)
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].LastAt > all[j].LastAt }) || all[0].Video != "h24" {
		t.Fatalf("not newest first: first %s last %s", all[0].Video, all[len(all)-1].Video)
	}
	en := all[0]
	if en.ID != crdt.EntryID("h24", "s24") || en.Session != "s24" || en.Device != "tv" || en.PositionMs != 10*minute ||
		en.DurationMs != hour || en.CompletionPct != 16.7 || !rfc3339ms.MatchString(en.StartedAt) || !rfc3339ms.MatchString(en.LastAt) {
		t.Fatalf("entry: %+v", en)
	}
	// Exactly one page: next_page null.
	if h := e.historyOf(tok, "me", "?limit=200"); len(h.Entries) != total || h.NextPage != nil {
		t.Fatalf("limit=200: %d entries, next %v", len(h.Entries), h.NextPage)
	}
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != total {
		t.Fatalf("default limit: %d", len(h.Entries))
	}
	for _, q := range []string{"?limit=201", "?limit=0", "?limit=x", "?page=%21%21", "?page=AAAA", "?page="} {
		want(t, e.do("GET", "/v1/profiles/me/history"+q, tok, nil), 400, "bad_request")
	}
}

func TestHistoryFilters(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	titles := []string{"The Great Escape", "Doc about whales", "great expectations", ""}
	for i, title := range titles {
		body := upd(10*minute, hour, "tv", fmt.Sprintf("s%d", i))
		if title != "" {
			body["title"] = title
		}
		e.mustPut(tok, "me", fmt.Sprintf("doc-%d", i), body)
		e.clock.Advance(time.Hour)
	}
	all := e.historyOf(tok, "me", "").Entries // newest first: doc-3 … doc-0
	at := func(video string) string {
		for _, en := range all {
			if en.Video == video {
				return en.LastAt
			}
		}
		t.Fatalf("no entry for %s", video)
		return ""
	}
	videos := func(q string) []string {
		var out []string
		for _, en := range e.historyOf(tok, "me", q).Entries {
			out = append(out, en.Video)
		}
		return out
	}
	check := func(q string, want ...string) {
		t.Helper()
		got := videos(q)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	check("?q=great", "doc-2", "doc-0")
	check("?q=GREAT+ESC", "doc-0")
	check("?q=DOC-3", "doc-3")
	check("?q=whale", "doc-1")
	check("?q=nothing")
	check("?from="+url.QueryEscape(at("doc-1")), "doc-3", "doc-2", "doc-1") // inclusive
	check("?to="+url.QueryEscape(at("doc-1")), "doc-0")                     // exclusive
	check("?from="+url.QueryEscape(at("doc-1"))+"&to="+url.QueryEscape(at("doc-3")), "doc-2", "doc-1")
	check("?from="+url.QueryEscape(at("doc-1"))+"&q=great", "doc-2")
	for _, q := range []string{"?from=yesterday", "?to=2026-13-01T00:00:00Z", "?from=2026-01-02", "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		want(t, e.do("GET", "/v1/profiles/me/history"+q, tok, nil), 400, "bad_request")
	}
}

func TestHistoryDelete(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "a", upd(10*minute, hour, "tv", "s1"))
	e.mustPut(tok, "me", "a", upd(12*minute, hour, "phone", "s2"))
	e.mustPut(tok, "me", "b", upd(10*minute, hour, "tv", "s3"))
	e.mustPut(tok, "me", "c", upd(10*minute, hour, "tv", "s4"))
	if n := len(e.historyOf(tok, "me", "").Entries); n != 4 {
		t.Fatalf("%d entries", n)
	}

	// One entry: gone from history; the cursor stays.
	id := crdt.EntryID("a", "s1")
	want(t, e.do("DELETE", "/v1/profiles/me/history/"+id, tok, nil), 204, "")
	want(t, e.do("DELETE", "/v1/profiles/me/history/"+id, tok, nil), 404, "not_found")
	want(t, e.do("DELETE", "/v1/profiles/me/history/no-such-entry", tok, nil), 404, "not_found")
	for _, en := range e.historyOf(tok, "me", "").Entries {
		if en.ID == id {
			t.Fatal("deleted entry still listed")
		}
	}
	if _, ok := e.get(tok, "me", "a"); !ok {
		t.Fatal("deleting one entry removed the cursor")
	}

	// A video: its entries and cursor.
	want(t, e.do("DELETE", "/v1/profiles/me/history?video=a", tok, nil), 204, "")
	if _, ok := e.get(tok, "me", "a"); ok {
		t.Fatal("cursor of a deleted video still there")
	}
	h := e.historyOf(tok, "me", "")
	if len(h.Entries) != 2 || h.Entries[0].Video == "a" || h.Entries[1].Video == "a" {
		t.Fatalf("after deleting video a: %+v", h.Entries)
	}
	if _, ok := e.get(tok, "me", "b"); !ok {
		t.Fatal("deleting video a removed b")
	}

	// Everything.
	want(t, e.do("DELETE", "/v1/profiles/me/history", tok, nil), 204, "")
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != 0 {
		t.Fatalf("after delete all: %+v", h)
	}
	if items := e.continueOf(tok, "me", ""); len(items) != 0 {
		t.Fatalf("continue watching after delete all: %+v", items)
	}
	for _, v := range []string{"b", "c"} {
		if _, ok := e.get(tok, "me", v); ok {
			t.Fatalf("cursor %s survived delete all", v)
		}
	}
}

// TestDeletionSticksAgainstLateReplays replays old client-stamped updates
// after each kind of delete: they stay deleted; a genuinely newer write
// shows again.
func TestDeletionSticksAgainstLateReplays(t *testing.T) {
	for _, kind := range []string{"entry", "video", "all"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			tok := e.token("acct-1")
			ep := e.hlcAt(-time.Minute, 0)
			old := []any{
				upd(10*minute, hour, "phone", "s1", "video", "v", "epoch", hs(ep), "seq", hs(ep+1)),
				upd(12*minute, hour, "phone", "s1", "video", "v", "epoch", hs(ep), "seq", hs(ep+2)),
			}
			want(t, e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": old}), 200, "")
			e.mustPut(tok, "me", "keep", upd(10*minute, hour, "tv", "s9"))

			switch kind {
			case "entry":
				want(t, e.do("DELETE", "/v1/profiles/me/history/"+crdt.EntryID("v", "s1"), tok, nil), 204, "")
			case "video":
				want(t, e.do("DELETE", "/v1/profiles/me/history?video=v", tok, nil), 204, "")
			case "all":
				want(t, e.do("DELETE", "/v1/profiles/me/history", tok, nil), 204, "")
			}
			e.clock.Advance(time.Second)

			// The offline device replays its queue, in order and reversed.
			for _, ups := range [][]any{old, {old[1], old[0]}} {
				r := e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": ups})
				want(t, r, 200, "")
				var b struct{ Results []tWrite }
				r.decode(t, &b)
				for i, res := range b.Results {
					if res.Applied {
						t.Fatalf("replayed update %d applied after delete %s: %s", i, kind, r.body)
					}
				}
				r, w := e.putPos(tok, "me", "v", old[1])
				want(t, r, 409, "stale_write")
				if kind != "entry" && w.Cursor != nil {
					t.Fatalf("stale write after delete shows the deleted cursor: %s", r.body)
				}
			}
			for _, en := range e.historyOf(tok, "me", "").Entries {
				if en.Video == "v" {
					t.Fatalf("deleted entry came back: %+v", en)
				}
			}
			_, ok := e.get(tok, "me", "v")
			if kind != "entry" && ok {
				t.Fatal("deleted cursor came back")
			}
			if kind == "all" {
				if _, ok := e.get(tok, "me", "keep"); ok {
					t.Fatal("delete all left a cursor")
				}
			}

			// A genuinely newer write shows again.
			c := e.mustPut(tok, "me", "v", upd(30*minute, hour, "phone", "s1"))
			if c.PositionMs != 30*minute {
				t.Fatalf("newer write: %+v", c)
			}
			found := false
			for _, en := range e.historyOf(tok, "me", "").Entries {
				found = found || (en.Video == "v" && en.PositionMs == 30*minute)
			}
			if !found {
				t.Fatal("a newer write after the delete is not in history")
			}
		})
	}
}

func TestPausedHistory(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	r := e.do("GET", "/v1/profiles/me/settings", tok, nil)
	want(t, r, 200, "")
	if string(r.body) != `{"history_paused":false}`+"\n" {
		t.Fatalf("settings: %s", r.body)
	}
	r = e.do("PUT", "/v1/profiles/me/settings", tok, `{"history_paused": true}`)
	want(t, r, 200, "")
	if string(r.body) != `{"history_paused":true}`+"\n" {
		t.Fatalf("settings: %s", r.body)
	}
	e.mustPut(tok, "me", "secret-film", upd(30*minute, 2*hour, "tv", "s1", "title", "Secret"))
	e.mustPut(tok, "me", "secret-film", upd(31*minute, 2*hour, "tv", "s1"))
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != 0 {
		t.Fatalf("history recorded while paused: %+v", h.Entries)
	}
	if c, ok := e.get(tok, "me", "secret-film"); !ok || c.ResumeMs != 31*minute {
		t.Fatalf("resume while paused: %+v", c)
	}
	// The superseded-session rule still holds while paused.
	e.mustPut(tok, "me", "secret-film", upd(40*minute, 2*hour, "phone", "s2"))
	r, _ = e.putPos(tok, "me", "secret-film", upd(32*minute, 2*hour, "tv", "s1"))
	want(t, r, 409, "stale_write")

	want(t, e.do("PUT", "/v1/profiles/me/settings", tok, `{"history_paused": false}`), 200, "")
	r = e.do("GET", "/v1/profiles/me/settings", tok, nil)
	if string(r.body) != `{"history_paused":false}`+"\n" {
		t.Fatalf("settings: %s", r.body)
	}
	e.mustPut(tok, "me", "public-film", upd(5*minute, 2*hour, "tv", "s3"))
	h := e.historyOf(tok, "me", "")
	if len(h.Entries) != 1 || h.Entries[0].Video != "public-film" {
		t.Fatalf("history after unpausing: %+v", h.Entries)
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "old", upd(10*minute, hour, "tv", "s1"))
	e.clock.Advance(20 * 24 * time.Hour)
	e.mustPut(tok, "me", "recent", upd(10*minute, hour, "tv", "s2"))
	e.clock.Advance(11 * 24 * time.Hour) // old: 31 days; recent: 11 days

	if _, ok := e.get(tok, "me", "old"); ok {
		t.Fatal("cursor untouched for 31 days still there (cursor_ttl 30 d)")
	}
	if _, ok := e.get(tok, "me", "recent"); !ok {
		t.Fatal("recent cursor expired")
	}
	items := e.continueOf(tok, "me", "")
	if len(items) != 1 || items[0].Video != "recent" {
		t.Fatalf("continue watching: %+v", items)
	}
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != 2 {
		t.Fatalf("history must outlive cursors (3 y): %d entries", len(h.Entries))
	}
	e.clock.Advance(3*365*24*time.Hour - 15*24*time.Hour) // old: 3 y + 16 d; recent: 3 y - 4 d
	h := e.historyOf(tok, "me", "")
	if len(h.Entries) != 1 || h.Entries[0].Video != "recent" {
		t.Fatalf("history after 3 years: %+v", h.Entries)
	}
	e.clock.Advance(5 * 24 * time.Hour)
	if h := e.historyOf(tok, "me", ""); len(h.Entries) != 0 {
		t.Fatalf("history after expiry: %+v", h.Entries)
	}
}
