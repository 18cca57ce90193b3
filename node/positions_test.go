package node

import (
	"fmt"
	"math/rand"
	"regexp"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
)

const (
	hour   = int64(3600_000)
	minute = int64(60_000)
)

var rfc3339ms = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
var digits = regexp.MustCompile(`^[0-9]+$`)

func TestCrossDeviceResume(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	tv := e.mustPut(tok, "me", "ep-1", upd(754000, 2580000, "tv-livingroom", "s-7f3a", "state", "paused", "title", "Episode 1"))

	phone, ok := e.get(tok, "me", "ep-1")
	if !ok {
		t.Fatal("phone sees no cursor")
	}
	if phone.PositionMs != 754000 || phone.ResumeMs != 754000 || phone.DurationMs != 2580000 ||
		phone.State != "paused" || phone.Device != "tv-livingroom" || phone.Session != "s-7f3a" || phone.Completed {
		t.Fatalf("phone reads %+v", phone)
	}
	if phone.Title != "Episode 1" {
		t.Errorf("title %q", phone.Title)
	}
	raw := e.do("GET", "/v1/profiles/me/positions/ep-1", tok, nil)
	var keys map[string]any
	raw.decode(t, &keys)
	if _, ok := keys["series_id"]; ok {
		t.Errorf("empty series_id not omitted: %s", raw.body)
	}
	if _, ok := keys["next_video"]; ok {
		t.Errorf("empty next_video not omitted: %s", raw.body)
	}
	if !rfc3339ms.MatchString(phone.UpdatedAt) {
		t.Errorf("updated_at %q is not RFC 3339 UTC with milliseconds", phone.UpdatedAt)
	}
	for _, s := range []string{phone.Epoch, phone.Seq, phone.UpdatedHLC} {
		if !digits.MatchString(s) {
			t.Errorf("HLC %q is not a decimal string", s)
		}
	}
	if phone.UpdatedAt != phone.updated().Time().Format(timeLayout) {
		t.Errorf("updated_at %s does not match updated_hlc %s", phone.UpdatedAt, phone.UpdatedHLC)
	}
	if phone != tv {
		t.Errorf("GET %+v differs from the PUT's cursor %+v", phone, tv)
	}
	// Another video is 404 with an error body.
	r := e.do("GET", "/v1/profiles/me/positions/ep-2", tok, nil)
	want(t, r, 404, "not_found")
}

func TestStaleWriteAnswers409WithCurrentCursor(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ep := e.hlcAt(-time.Minute, 0)
	newer := e.mustPut(tok, "me", "v", upd(20*minute, hour, "tv", "s1", "epoch", hs(ep), "seq", hs(ep+10)))

	r, w := e.putPos(tok, "me", "v", upd(10*minute, hour, "tv", "s1", "epoch", hs(ep), "seq", hs(ep+5)))
	want(t, r, 409, "stale_write")
	if w.Applied || w.Cursor == nil || w.Cursor.PositionMs != 20*minute || w.Cursor.seq() != ep+10 {
		t.Fatalf("409 body: %s", r.body)
	}
	got, _ := e.get(tok, "me", "v")
	if got != newer {
		t.Fatalf("stale write changed the cursor: %+v, was %+v", got, newer)
	}
	// A retry of the stored version is stale too: "not larger".
	r, _ = e.putPos(tok, "me", "v", upd(20*minute, hour, "tv", "s1", "epoch", hs(ep), "seq", hs(ep+10)))
	want(t, r, 409, "stale_write")
}

func TestNewerSessionTakesOverAndOldCannotDragBack(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "film", upd(10*minute, 2*hour, "tv", "s-tv"))
	e.clock.Advance(time.Second)
	phone := e.mustPut(tok, "me", "film", upd(40*minute, 2*hour, "phone", "s-phone"))

	// The TV, left playing, keeps reporting (node-stamped): its session is
	// known, keeps its old epoch and loses every time.
	for i := 0; i < 3; i++ {
		e.clock.Advance(5 * time.Second)
		r, w := e.putPos(tok, "me", "film", upd(int64(11+i)*minute, 2*hour, "tv", "s-tv"))
		want(t, r, 409, "stale_write")
		if w.Cursor == nil || w.Cursor.Session != "s-phone" || w.Cursor.PositionMs != 40*minute {
			t.Fatalf("stale answer carries %s", r.body)
		}
	}
	got, _ := e.get(tok, "me", "film")
	if got.PositionMs != 40*minute || got.Session != "s-phone" || got.epoch() != phone.epoch() {
		t.Fatalf("superseded session dragged the cursor: %+v", got)
	}
}

func TestSeekBackwardsInNewEpochIsHonoured(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e1 := e.hlcAt(-10*time.Second, 0)
	e.mustPut(tok, "me", "v", upd(50*minute, hour, "tv", "s1", "epoch", hs(e1), "seq", hs(e1+100)))
	// Same epoch, larger seq, lower position: also the latest in the
	// session, so it applies (within a session the latest update wins).
	// A seek backwards opens a new epoch:
	e2 := e.hlcAt(-5*time.Second, 0)
	c := e.mustPut(tok, "me", "v", upd(5*minute, hour, "tv", "s1", "epoch", hs(e2), "seq", hs(e2)))
	if c.PositionMs != 5*minute || c.epoch() != e2 {
		t.Fatalf("seek not honoured: %+v", c)
	}
	// A late heartbeat of the old epoch (queued before the seek) is stale.
	r, _ := e.putPos(tok, "me", "v", upd(51*minute, hour, "tv", "s1", "epoch", hs(e1), "seq", hs(e1+200)))
	want(t, r, 409, "stale_write")
	got, _ := e.get(tok, "me", "v")
	if got.PositionMs != 5*minute {
		t.Fatalf("old epoch dragged the seek back: %+v", got)
	}
}

func TestOfflineBatchReplayMergesToMax(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	seed := time.Now().UnixNano()
	t.Logf("seed %d (go test ./node -run TestOfflineBatchReplayMergesToMax; the order is the only random part)", seed)
	rng := rand.New(rand.NewSource(seed))
	epoch := e.hlcAt(-30*time.Second, 0)
	type item struct {
		video string
		pos   int64
		seq   crdt.HLC
	}
	var items []item
	for v := 0; v < 3; v++ {
		for i := 0; i < 15; i++ {
			items = append(items, item{fmt.Sprintf("ep-%d", v), int64(i+1) * minute, epoch + crdt.HLC(i)})
		}
	}
	rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	ups := make([]map[string]any, len(items))
	for i, it := range items {
		ups[i] = upd(it.pos, hour, "phone", "s-offline", "video", it.video, "epoch", hs(epoch), "seq", hs(it.seq), "state", "playing")
	}
	r := e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": ups})
	want(t, r, 200, "")
	var b struct{ Results []tWrite }
	r.decode(t, &b)
	if len(b.Results) != len(items) {
		t.Fatalf("%d results for %d updates", len(b.Results), len(items))
	}
	best := map[string]int64{}
	for i, it := range items {
		res := b.Results[i]
		if res.Cursor == nil || res.Cursor.Video != it.video {
			t.Fatalf("result %d is not for %s: %+v", i, it.video, res)
		}
		if res.Applied != (it.pos > best[it.video]) {
			t.Errorf("result %d (pos %d, best so far %d): applied=%v", i, it.pos, best[it.video], res.Applied)
		}
		best[it.video] = max(best[it.video], it.pos)
	}
	for v := 0; v < 3; v++ {
		got, _ := e.get(tok, "me", fmt.Sprintf("ep-%d", v))
		if got.PositionMs != 15*minute || got.seq() != epoch+14 {
			t.Errorf("ep-%d: %+v, want the max (15 min)", v, got)
		}
	}
	// Replaying the same batch again changes nothing and is still 200.
	r = e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": ups})
	want(t, r, 200, "")
	r.decode(t, &b)
	for i, res := range b.Results {
		if res.Applied {
			t.Fatalf("replayed result %d applied", i)
		}
	}
}

func TestFarFutureVersionRefused(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	before := e.mustPut(tok, "me", "v", upd(5*minute, hour, "tv", "s1"))
	future := e.hlcAt(2*time.Minute, 0) // beyond the 60 s skew
	for _, body := range []map[string]any{
		upd(50*minute, hour, "tv", "s2", "epoch", hs(future), "seq", hs(future)),
		upd(50*minute, hour, "tv", "s2", "seq", hs(future)),
		upd(50*minute, hour, "tv", "s2", "epoch", hs(future)),
	} {
		r, _ := e.putPos(tok, "me", "v", body)
		want(t, r, 400, "bad_request")
	}
	// In a batch, one far-future update fails the whole batch.
	r := e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": []any{
		upd(1*minute, hour, "tv", "s3", "video", "other"),
		upd(2*minute, hour, "tv", "s3", "video", "v", "epoch", hs(future)),
	}})
	want(t, r, 400, "bad_request")
	if got, _ := e.get(tok, "me", "v"); got != before {
		t.Fatalf("refused write changed the cursor: %+v", got)
	}
	if _, ok := e.get(tok, "me", "other"); ok {
		t.Fatal("a refused batch wrote its valid part")
	}
	// Within the skew is fine.
	near := e.hlcAt(30*time.Second, 0)
	e.mustPut(tok, "me", "v", upd(6*minute, hour, "tv", "s4", "epoch", hs(near), "seq", hs(near)))
}

func TestNodeStamping(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	r := e.do("GET", "/healthz", "", nil)
	low := mustHLC(r.header.Get("Playhead-HLC"))
	first := e.mustPut(tok, "me", "v", upd(5*minute, hour, "tv", "s1"))
	if first.epoch() != first.seq() || first.epoch() <= low {
		t.Fatalf("new session: epoch %s seq %s (node clock before %d): want epoch = seq = now", first.Epoch, first.Seq, low)
	}
	e.clock.Advance(10 * time.Second)
	second := e.mustPut(tok, "me", "v", upd(6*minute, hour, "tv", "s1"))
	if second.epoch() != first.epoch() || second.seq() <= first.seq() {
		t.Fatalf("known session: epoch %s→%s seq %s→%s: want the epoch kept and seq = now", first.Epoch, second.Epoch, first.Seq, second.Seq)
	}
	if second.seq().Physical() != e.clock.NowMs() {
		t.Errorf("seq %d ms, node clock %d ms", second.seq().Physical(), e.clock.NowMs())
	}
	third := e.mustPut(tok, "me", "v", upd(1*minute, hour, "phone", "s2"))
	if third.epoch() != third.seq() || third.epoch() <= second.seq() {
		t.Fatalf("new session s2: %+v", third)
	}
	// A device that sends only its epoch gets seq = now.
	ep := e.hlcAt(time.Second, 0) // a device clock slightly ahead: within the skew
	fourth := e.mustPut(tok, "me", "v", upd(2*minute, hour, "phone", "s3", "epoch", hs(ep)))
	if fourth.epoch() != ep || fourth.seq() < ep {
		t.Fatalf("epoch-only update: %+v", fourth)
	}
}

func TestThresholdsAndCompletion(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	cases := []struct {
		name      string
		pos, dur  int64
		state     string
		resume    int64
		completed bool
	}{
		{"below 5 %", 2 * minute, hour, "paused", 0, false},
		{"at 5 %", 3 * minute, hour, "paused", 3 * minute, false},
		{"middle", 30 * minute, hour, "paused", 30 * minute, false},
		{"just below 90 %", 53*minute + 59_000, hour, "playing", 53*minute + 59_000, false},
		{"at 90 %", 54 * minute, hour, "playing", 0, true},
		{"end", hour, hour, "stopped", 0, true},
		{"state completed", 10 * minute, hour, "completed", 0, true},
		{"short video", 2 * minute, 4 * minute, "paused", 0, false},
		{"exactly 5 min", 2 * minute, 5 * minute, "paused", 2 * minute, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			video := fmt.Sprintf("v%d", i)
			c := e.mustPut(tok, "me", video, upd(tc.pos, tc.dur, "tv", "s"+video, "state", tc.state))
			if c.ResumeMs != tc.resume || c.Completed != tc.completed || c.State != tc.state {
				t.Fatalf("resume_ms %d completed %v state %s; want %d %v %s", c.ResumeMs, c.Completed, c.State, tc.resume, tc.completed, tc.state)
			}
			inRow := false
			for _, it := range e.continueOf(tok, "me", "?limit=50") {
				inRow = inRow || it.Video == video
			}
			if inRow != (tc.resume > 0) {
				t.Fatalf("in continue watching: %v, want %v", inRow, tc.resume > 0)
			}
		})
	}
}

func TestStateDefaultsToPlaying(t *testing.T) {
	e := newEnv(t)
	c := e.mustPut(e.token("a"), "me", "v", upd(5*minute, hour, "tv", "s1"))
	if c.State != "playing" {
		t.Fatalf("state %q", c.State)
	}
}

func TestMetadataSentOnceIsKept(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "ep-1", upd(5*minute, hour, "tv", "s1", "title", "Pilot", "series_id", "show-9", "next_video", "ep-2"))
	for i := 0; i < 2; i++ {
		e.mustPut(tok, "me", "ep-1", upd(int64(6+i)*minute, hour, "tv", "s1"))
	}
	c, _ := e.get(tok, "me", "ep-1")
	if c.Title != "Pilot" || c.SeriesID != "show-9" || c.NextVideo != "ep-2" {
		t.Fatalf("metadata lost: %+v", c)
	}
	if c.PositionMs != 7*minute {
		t.Fatalf("position %d", c.PositionMs)
	}
	e.mustPut(tok, "me", "ep-1", upd(8*minute, hour, "tv", "s1", "title", "Pilot (director's cut)"))
	c, _ = e.get(tok, "me", "ep-1")
	if c.Title != "Pilot (director's cut)" || c.SeriesID != "show-9" {
		t.Fatalf("metadata update: %+v", c)
	}
	// History shows the title too.
	h := e.historyOf(tok, "me", "")
	if len(h.Entries) != 1 || h.Entries[0].Title != "Pilot (director's cut)" {
		t.Fatalf("history: %+v", h)
	}
}

func TestBatchResultsInOrderAndLimit(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	ep := e.hlcAt(-time.Second, 0)
	r := e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": []any{
		upd(10*minute, hour, "tv", "s1", "video", "a", "epoch", hs(ep), "seq", hs(ep+2)),
		upd(5*minute, hour, "tv", "s1", "video", "a", "epoch", hs(ep), "seq", hs(ep+1)), // stale
		upd(7*minute, hour, "tv", "s1", "video", "b"),
	}})
	want(t, r, 200, "")
	var b struct{ Results []tWrite }
	r.decode(t, &b)
	if len(b.Results) != 3 || !b.Results[0].Applied || b.Results[1].Applied || !b.Results[2].Applied ||
		b.Results[1].Cursor.PositionMs != 10*minute || b.Results[2].Cursor.Video != "b" {
		t.Fatalf("results: %s", r.body)
	}
	// Exactly 500 is fine.
	ups := make([]any, MaxBatchUpdates)
	for i := range ups {
		ups[i] = upd(int64(i+1)*1000, hour, "tv", "s9", "video", "c")
	}
	want(t, e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": ups}), 200, "")
	got, _ := e.get(tok, "me", "c")
	if got.PositionMs != 500_000 {
		t.Fatalf("after 500 updates: %+v", got)
	}
}
