package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// storeDump returns every stored record, in key order.
func storeDump(t *testing.T, s storage.Store) []string {
	t.Helper()
	var out []string
	for p := 0; p < ring.DefaultPartitions; p++ {
		err := s.ScanPartition(uint16(p), func(k storage.Key, r crdt.Record) error {
			out = append(out, fmt.Sprintf("%+v=%+v", k, r))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestMalformedInputIs4xxAndChangesNothing sends every kind of bad request
// and checks each gets the right status and error code, then that stored
// state (through the API and in the store itself) did not change.
func TestMalformedInputIs4xxAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	kids := e.token("acct-1", "kids")
	now := e.clock.Now()
	expired, _ := api.IssueToken(testSecret, "acct-1", nil, false, time.Minute, now.Add(-time.Hour))
	exp := now.Add(time.Hour).Unix()
	wrongAlg := signClaims(t, jwt.SigningMethodHS384, testSecret, jwt.MapClaims{"acct": "acct-1", "exp": exp})
	wrongSecret := signClaims(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 40)), jwt.MapClaims{"acct": "acct-1", "exp": exp})

	// State to protect.
	e.mustPut(tok, "me", "v1", upd(10*minute, hour, "tv", "s1", "title", "One"))
	e.mustPut(tok, "me", "v2", upd(20*minute, hour, "tv", "s2"))
	e.mustPut(tok, "kids", "k1", upd(5*minute, hour, "tablet", "s3"))
	snapshot := func() []string {
		var out []string
		for _, p := range []string{
			"/v1/profiles/me/positions/v1", "/v1/profiles/me/positions/v2", "/v1/profiles/kids/positions/k1",
			"/v1/profiles/me/continue-watching", "/v1/profiles/me/history", "/v1/profiles/kids/history",
			"/v1/profiles/me/settings",
		} {
			r := e.do("GET", p, tok, nil)
			out = append(out, fmt.Sprintf("%s %s", p, r))
		}
		return out
	}
	before, beforeStore := snapshot(), storeDump(t, e.store)

	long := strings.Repeat("x", 129)
	good := func(extra ...any) map[string]any { return upd(30*minute, hour, "tv", "s1", extra...) }
	epoch := e.hlcAt(-time.Second, 0)
	big := `{"position_ms": 1, "duration_ms": 2, "device": "d", "session": "s", "title": "` + strings.Repeat("a", 1<<20) + `"}`
	var tooMany []any
	for i := 0; i < MaxBatchUpdates+1; i++ {
		tooMany = append(tooMany, good("video", "v1"))
	}
	const put = "PUT"
	pos := "/v1/profiles/me/positions/v1"
	cases := []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         string
	}{
		{"bad JSON", put, pos, tok, `{"position_ms": `, 400, "bad_request"},
		{"JSON array", put, pos, tok, `[1,2]`, 400, "bad_request"},
		{"JSON null", put, pos, tok, `null`, 400, "bad_request"},
		{"empty body", put, pos, tok, ``, 400, "bad_request"},
		{"trailing garbage", put, pos, tok, `{"position_ms":1,"duration_ms":2,"device":"d","session":"s"} x`, 400, "bad_request"},
		{"missing position", put, pos, tok, map[string]any{"duration_ms": hour, "device": "tv", "session": "s1"}, 400, "bad_request"},
		{"missing duration", put, pos, tok, map[string]any{"position_ms": 1, "device": "tv", "session": "s1"}, 400, "bad_request"},
		{"missing device", put, pos, tok, map[string]any{"position_ms": 1, "duration_ms": hour, "session": "s1"}, 400, "bad_request"},
		{"missing session", put, pos, tok, map[string]any{"position_ms": 1, "duration_ms": hour, "device": "tv"}, 400, "bad_request"},
		{"negative position", put, pos, tok, upd(-1, hour, "tv", "s1"), 400, "bad_request"},
		{"position over duration", put, pos, tok, upd(hour+1, hour, "tv", "s1"), 400, "bad_request"},
		{"duration 0", put, pos, tok, upd(0, 0, "tv", "s1"), 400, "bad_request"},
		{"negative duration", put, pos, tok, upd(0, -5, "tv", "s1"), 400, "bad_request"},
		{"position as string", put, pos, tok, good("position_ms", "5"), 400, "bad_request"},
		{"position fractional", put, pos, tok, good("position_ms", 1.5), 400, "bad_request"},
		{"position huge", put, pos, tok, `{"position_ms": 1e30, "duration_ms": 2, "device": "d", "session": "s"}`, 400, "bad_request"},
		{"bad state", put, pos, tok, good("state", "rewinding"), 400, "bad_request"},
		{"state number", put, pos, tok, good("state", 2), 400, "bad_request"},
		{"device too long", put, pos, tok, upd(1, hour, long, "s1"), 400, "bad_request"},
		{"device with slash", put, pos, tok, upd(1, hour, "a/b", "s1"), 400, "bad_request"},
		{"device non-printable", put, pos, tok, upd(1, hour, "a\x01b", "s1"), 400, "bad_request"},
		{"device non-ASCII", put, pos, tok, upd(1, hour, "télé", "s1"), 400, "bad_request"},
		{"device empty", put, pos, tok, upd(1, hour, "", "s1"), 400, "bad_request"},
		{"session too long", put, pos, tok, upd(1, hour, "tv", long), 400, "bad_request"},
		{"video too long", put, "/v1/profiles/me/positions/" + long, tok, good(), 400, "bad_request"},
		{"video with slash", put, "/v1/profiles/me/positions/a%2Fb", tok, good(), 400, "bad_request"},
		{"video non-printable", put, "/v1/profiles/me/positions/a%01b", tok, good(), 400, "bad_request"},
		{"profile too long", put, "/v1/profiles/" + long + "/positions/v1", tok, good(), 400, "bad_request"},
		{"profile with slash", "GET", "/v1/profiles/a%2Fb/history", tok, nil, 400, "bad_request"},
		{"epoch not a number", put, pos, tok, good("epoch", "abc"), 400, "bad_request"},
		{"seq negative", put, pos, tok, good("seq", "-1"), 400, "bad_request"},
		{"epoch fractional", put, pos, tok, good("epoch", 1.5), 400, "bad_request"},
		{"epoch bool", put, pos, tok, good("epoch", true), 400, "bad_request"},
		{"epoch over 64 bits", put, pos, tok, good("epoch", "18446744073709551616"), 400, "bad_request"},
		{"seq below epoch", put, pos, tok, good("epoch", hs(epoch), "seq", hs(epoch-1)), 400, "bad_request"},
		{"far-future epoch", put, pos, tok, good("epoch", hs(e.hlcAt(time.Hour, 0))), 400, "bad_request"},
		{"title too long", put, pos, tok, good("title", strings.Repeat("t", MaxTitleLen+1)), 400, "bad_request"},
		{"title bad escape", put, pos, tok, `{"position_ms":1,"duration_ms":2,"device":"d","session":"s","title":"\xff"}`, 400, "bad_request"},
		{"series with slash", put, pos, tok, good("series_id", "a/b"), 400, "bad_request"},
		{"next video too long", put, pos, tok, good("next_video", long), 400, "bad_request"},
		{"body over 1 MiB", put, pos, tok, big, 413, "too_large"},
		{"batch over 1 MiB", "POST", "/v1/profiles/me/positions", tok, `{"updates": [` + big + `]}`, 413, "too_large"},
		{"batch over 500", "POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": tooMany}, 400, "bad_request"},
		{"batch without updates", "POST", "/v1/profiles/me/positions", tok, `{}`, 400, "bad_request"},
		{"batch updates not a list", "POST", "/v1/profiles/me/positions", tok, `{"updates": {}}`, 400, "bad_request"},
		{"batch item without video", "POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": []any{good()}}, 400, "bad_request"},
		{"batch with one bad item", "POST", "/v1/profiles/me/positions", tok,
			map[string]any{"updates": []any{good("video", "v1"), good("video", "v2", "position_ms", -1)}}, 400, "bad_request"},
		{"changes bad after", "GET", "/v1/profiles/me/changes?after=12ab", tok, nil, 400, "bad_request"},
		{"changes negative after", "GET", "/v1/profiles/me/changes?after=-1", tok, nil, 400, "bad_request"},
		{"changes wait over 60s", "GET", "/v1/profiles/me/changes?wait=61s", tok, nil, 400, "bad_request"},
		{"changes wait seconds over 60", "GET", "/v1/profiles/me/changes?wait=61", tok, nil, 400, "bad_request"},
		{"changes wait garbage", "GET", "/v1/profiles/me/changes?wait=soon", tok, nil, 400, "bad_request"},
		{"changes wait negative", "GET", "/v1/profiles/me/changes?wait=-1s", tok, nil, 400, "bad_request"},
		{"events bad after", "GET", "/v1/profiles/me/events?after=x", tok, nil, 400, "bad_request"},
		{"continue limit 0", "GET", "/v1/profiles/me/continue-watching?limit=0", tok, nil, 400, "bad_request"},
		{"continue limit 51", "GET", "/v1/profiles/me/continue-watching?limit=51", tok, nil, 400, "bad_request"},
		{"history limit 201", "GET", "/v1/profiles/me/history?limit=201", tok, nil, 400, "bad_request"},
		{"history bad page", "GET", "/v1/profiles/me/history?page=zz%21", tok, nil, 400, "bad_request"},
		{"history bad from", "GET", "/v1/profiles/me/history?from=monday", tok, nil, 400, "bad_request"},
		{"history bad to", "GET", "/v1/profiles/me/history?to=2026-02-30T00:00:00Z", tok, nil, 400, "bad_request"},
		{"history q too long", "GET", "/v1/profiles/me/history?q=" + strings.Repeat("q", 300), tok, nil, 400, "bad_request"},
		{"delete entry id too long", "DELETE", "/v1/profiles/me/history/" + long, tok, nil, 400, "bad_request"},
		{"delete entry unknown", "DELETE", "/v1/profiles/me/history/" + crdt.EntryID("v1", "nope"), tok, nil, 404, "not_found"},
		{"delete empty video", "DELETE", "/v1/profiles/me/history?video=", tok, nil, 400, "bad_request"},
		{"delete video with slash", "DELETE", "/v1/profiles/me/history?video=a/b", tok, nil, 400, "bad_request"},
		{"settings empty object", put, "/v1/profiles/me/settings", tok, `{}`, 400, "bad_request"},
		{"settings string", put, "/v1/profiles/me/settings", tok, `{"history_paused": "yes"}`, 400, "bad_request"},
		{"settings null", put, "/v1/profiles/me/settings", tok, `{"history_paused": null}`, 400, "bad_request"},
		{"settings bad JSON", put, "/v1/profiles/me/settings", tok, `{history_paused: true}`, 400, "bad_request"},
		{"missing token", put, pos, "", good(), 401, "unauthorized"},
		{"expired token", put, pos, expired, good(), 401, "unauthorized"},
		{"wrong-alg token", put, pos, wrongAlg, good(), 401, "unauthorized"},
		{"wrong-secret token", put, pos, wrongSecret, good(), 401, "unauthorized"},
		{"garbage token", "DELETE", "/v1/profiles/me/history", "abc.def.ghi", nil, 401, "unauthorized"},
		{"other profile PUT", put, pos, kids, good(), 403, "forbidden"},
		{"other profile DELETE", "DELETE", "/v1/profiles/me/history", kids, nil, 403, "forbidden"},
		{"other profile settings", put, "/v1/profiles/me/settings", kids, `{"history_paused": true}`, 403, "forbidden"},
		{"cluster without admin", "GET", "/v1/cluster", tok, nil, 403, "forbidden"},
		{"unknown endpoint", "GET", "/v1/nothing", tok, nil, 404, "not_found"},
		{"wrong method", "PATCH", pos, tok, good(), 405, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.token, tc.body)
			want(t, r, tc.status, tc.code)
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", r.header.Get("Content-Type"))
			}
			if msg := errMessage(r); msg == "" {
				t.Errorf("no error message: %s", r.body)
			}
		})
	}
	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("state changed by bad requests:\nbefore %v\nafter  %v", before, after)
	}
	if after := storeDump(t, e.store); fmt.Sprint(after) != fmt.Sprint(beforeStore) {
		t.Fatalf("store changed by bad requests:\nbefore %v\nafter  %v", beforeStore, after)
	}
}

func errMessage(r *resp) string {
	var b struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if r.decodeQuiet(&b) != nil {
		return ""
	}
	return b.Error.Message
}

func TestUnknownFieldsAreIgnored(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	c := e.mustPut(tok, "me", "v", upd(10*minute, hour, "tv", "s1", "colour", "blue", "nested", map[string]any{"a": 1}, "video", "ignored-in-put"))
	if c.Video != "v" {
		t.Fatalf("cursor %+v", c)
	}
	want(t, e.do("PUT", "/v1/profiles/me/settings", tok, `{"history_paused": false, "theme": "dark"}`), 200, "")
	// HLCs as numbers are accepted too.
	ep := e.hlcAt(time.Second, 0)
	r := e.do("PUT", "/v1/profiles/me/positions/w", tok,
		fmt.Sprintf(`{"position_ms": 1000, "duration_ms": 3600000, "device": "d", "session": "s", "epoch": %d, "seq": %d}`, ep, ep+1))
	want(t, r, 200, "")
	var w tWrite
	r.decode(t, &w)
	if w.Cursor.epoch() != ep || w.Cursor.seq() != ep+1 {
		t.Fatalf("numeric HLCs: %s", r.body)
	}
}
