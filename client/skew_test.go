package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

const tenMinutesMs = 10 * 60_000

// skewEnv is an env whose server refuses stamps more than 60 s ahead of
// its clock (the node's default max_clock_skew) and whose device clock
// runs 10 minutes ahead.
func skewEnv(t *testing.T) *env {
	e := newEnv(t)
	e.srv.set(func(f *fakeServer) { f.maxSkewMs = 60_000 })
	e.clock.ms.Store(time.Now().UnixMilli() + tenMinutesMs)
	return e
}

// sentVersions returns the versions of the updates in the requests'
// bodies (PUTs and batch items), in the order sent.
func sentVersions(t *testing.T, reqs []fakeReq) []crdt.Version {
	t.Helper()
	var out []crdt.Version
	for _, r := range reqs {
		switch r.Method {
		case http.MethodPut:
			var b api.UpdateBody
			if err := json.Unmarshal(r.Body, &b); err != nil {
				t.Fatal(err)
			}
			out = append(out, crdt.Version{Epoch: b.Epoch, Seq: b.Seq, Session: b.Session})
		case http.MethodPost:
			var br api.BatchRequest
			if err := json.Unmarshal(r.Body, &br); err != nil {
				t.Fatal(err)
			}
			for _, b := range br.Updates {
				out = append(out, crdt.Version{Epoch: b.Epoch, Seq: b.Seq, Session: b.Session})
			}
		}
	}
	return out
}

// checkWithinServerClock fails unless the cursor's stamps lie within the
// server's allowed skew (what the node checks).
func checkWithinServerClock(t *testing.T, what string, c Cursor) {
	t.Helper()
	limit := time.Now().UnixMilli() + 60_000
	if c.Epoch.Physical() > limit || c.Seq.Physical() > limit || c.Seq < c.Epoch {
		t.Fatalf("%s: stored version %v/%v is not a valid version within the server's clock", what, c.Epoch, c.Seq)
	}
}

// TestClockSkewRecovery: a device whose clock runs 10 minutes ahead queues
// a position offline, then reports online. The node refuses the stamps;
// the SDK restarts its HLC from the node's clock, re-stamps what is queued
// and delivers everything. Once the device clock is corrected, the next
// writes (sent at once, and queued offline) are accepted too: the HLC is
// not left poisoned.
func TestClockSkewRecovery(t *testing.T) {
	e := skewEnv(t)

	// Offline: a position stamped by the bad clock waits in the queue.
	e.net.off.Store(true)
	trq := e.c.NewTracker(TrackerConfig{Session: "sq", Video: "ep-q", Meta: Metadata{Title: "Queued"}})
	uq, _ := trq.Start(e.c.NowMs(), 120_000, 3_600_000)
	if res := e.report(uq); res.Outcome != Queued {
		t.Fatalf("offline report: %+v, want queued", res)
	}
	e.net.off.Store(false)

	// Online: a new session reports; the node refuses the bad stamps.
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	u1, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	res, err := e.c.Report(ctxT(t), "kid", u1)
	if err != nil || res.Outcome != Applied {
		t.Fatalf("Report after a clock-skew refusal: %+v, %v; want applied", res, err)
	}
	if n := len(e.srv.requests(http.MethodPost, "/")); n != 2 {
		t.Fatalf("%d batches, want 2 (refused for clock skew, then re-stamped)", n)
	}
	if e.c.Queued() != 0 {
		t.Fatalf("%d updates still queued", e.c.Queued())
	}
	cq, ok := e.srv.cursor("kid", "ep-q")
	if !ok || cq.PositionMs != 120_000 || cq.Session != "sq" || cq.Title != "Queued" {
		t.Fatalf("queued position lost: %+v %v", cq, ok)
	}
	checkWithinServerClock(t, "queued update", cq)
	c1, _ := e.srv.cursor("kid", "ep-1")
	checkWithinServerClock(t, "reported update", c1)

	// The device clock is corrected. Its next write is accepted at once.
	e.clock.ms.Store(time.Now().UnixMilli())
	before := len(e.srv.requests("", "/v1/profiles/kid/positions"))
	u2, ok := tr.Pause(e.c.NowMs(), 30_000)
	if !ok {
		t.Fatal("no pause update")
	}
	if res := e.report(u2); res.Outcome != Applied {
		t.Fatalf("write after the clock fix: %+v, want applied", res)
	}
	if n := len(e.srv.requests("", "/v1/profiles/kid/positions")) - before; n != 1 {
		t.Fatalf("%d requests for one write after the clock fix, want 1 (no refusal)", n)
	}
	c1, _ = e.srv.cursor("kid", "ep-1")
	if c1.PositionMs != 30_000 || c1.State != "paused" {
		t.Fatalf("cursor after the pause: %+v", c1)
	}
	checkWithinServerClock(t, "write after the clock fix", c1)

	// And what it queues offline now goes through too.
	e.net.off.Store(true)
	e.clock.Advance(5 * time.Second)
	u3, _ := tr.Play(e.c.NowMs(), 30_000)
	e.clock.Advance(10 * time.Second)
	u4, _ := trq.SeekTo(e.c.NowMs(), 600_000)
	e.report(u3)
	e.report(u4)
	if e.c.Queued() != 2 {
		t.Fatalf("%d queued, want 2", e.c.Queued())
	}
	e.net.off.Store(false)
	fr, err := e.c.Flush(ctxT(t))
	if err != nil || fr.Applied != 2 || fr.Dropped != 0 || fr.Remaining != 0 || fr.Restamped != 0 {
		t.Fatalf("Flush = %+v, %v; want 2 applied, nothing re-stamped", fr, err)
	}
	if c, _ := e.srv.cursor("kid", "ep-q"); c.PositionMs != 600_000 {
		t.Fatalf("ep-q at %d, want the queued seek to 600000", c.PositionMs)
	}
	if c, _ := e.srv.cursor("kid", "ep-1"); c.State != "playing" {
		t.Fatalf("ep-1 %s, want playing", c.State)
	}
}

// TestClockSkewRecoveryDirect: with nothing queued, a refused report is
// re-stamped and sent once more, and the same tracker's later updates (its
// epoch was stamped by the bad clock) are accepted without a refusal.
func TestClockSkewRecoveryDirect(t *testing.T) {
	e := skewEnv(t)
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	res, err := e.c.Report(ctxT(t), "kid", u)
	if err != nil || res.Outcome != Applied || res.Cursor == nil {
		t.Fatalf("Report: %+v, %v; want applied", res, err)
	}
	vs := sentVersions(t, e.srv.requests(http.MethodPut, "/"))
	if len(vs) != 2 || vs[0] == vs[1] || vs[0] != versionOf(u) || res.Cursor.Version() != vs[1] {
		t.Fatalf("sent %v, want the refused version %v and one re-stamped version", vs, versionOf(u))
	}
	c, _ := e.srv.cursor("kid", "ep-1")
	checkWithinServerClock(t, "re-stamped update", c)

	// The device clock stays wrong (NowMs corrects it) and playback goes
	// on: heartbeats are accepted at the first try.
	// (NowMs went back 10 min after the refusal: the tracker restarts
	// its cadence there, so heartbeats come from the second tick on.)
	beats := 0
	for i := 1; i <= 10 && beats < 3; i++ {
		e.clock.Advance(10 * time.Second)
		u, ok := tr.Observe(e.c.NowMs(), int64(i)*10_000, crdt.StatePlaying)
		if !ok {
			continue
		}
		beats++
		if res := e.report(u); res.Outcome != Applied {
			t.Fatalf("heartbeat %d: %+v", beats, res)
		}
	}
	if beats != 3 {
		t.Fatalf("%d heartbeats, want 3", beats)
	}
	if n := len(e.srv.requests(http.MethodPut, "/")); n != 5 {
		t.Fatalf("%d PUTs, want 5 (one refusal, then every write accepted)", n)
	}
	c, _ = e.srv.cursor("kid", "ep-1")
	if c.PositionMs < 30_000 {
		t.Fatalf("cursor at %d, want the heartbeats' position", c.PositionMs)
	}
	checkWithinServerClock(t, "heartbeat", c)
}

// countMethods counts the POSTs and PUTs among reqs.
func countMethods(reqs []fakeReq) (posts, puts int) {
	for _, r := range reqs {
		switch r.Method {
		case http.MethodPost:
			posts++
		case http.MethodPut:
			puts++
		}
	}
	return posts, puts
}

// TestClockSkewNoRetryLoop: a node that keeps refusing the device's clock
// (whatever the SDK does) gets each update at most once more, re-stamped,
// and never again with the version it refused: Report returns the refusal
// and drops the update, Flush drops the queue and returns.
func TestClockSkewNoRetryLoop(t *testing.T) {
	refuseAll := func(t *testing.T) *env {
		e := skewEnv(t)
		e.srv.set(func(f *fakeServer) { f.skewAll = true })
		return e
	}
	t.Run("report", func(t *testing.T) {
		e := refuseAll(t)
		tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
		u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
		_, err := e.c.Report(ctxT(t), "kid", u)
		var ae *APIError
		if !errors.As(err, &ae) || !ae.ClockSkew() {
			t.Fatalf("err = %v, want the node's clock-skew refusal", err)
		}
		vs := sentVersions(t, e.srv.requests(http.MethodPut, "/"))
		if len(vs) != 2 || vs[0] == vs[1] || vs[0] != versionOf(u) {
			t.Fatalf("sent %v, want %v once and then once re-stamped", vs, versionOf(u))
		}
		if e.c.Queued() != 0 {
			t.Fatal("a refused update was queued")
		}
		// The clock is in step now: the next refusal is final at once
		// (re-stamping would change nothing).
		e.clock.Advance(time.Second)
		u2, _ := tr.Pause(e.c.NowMs(), 1000)
		if _, err := e.c.Report(ctxT(t), "kid", u2); !errors.As(err, &ae) || !ae.ClockSkew() {
			t.Fatalf("err = %v, want the node's clock-skew refusal", err)
		}
		if n := len(e.srv.requests(http.MethodPut, "/")); n != 3 {
			t.Fatalf("%d PUTs, want 3 (the second update sent once)", n)
		}
	})
	t.Run("flush", func(t *testing.T) {
		e := refuseAll(t)
		// Three updates stamped by the bad clock wait in the queue.
		e.net.off.Store(true)
		for _, video := range []string{"ep-2", "ep-3", "ep-4"} {
			tr := e.c.NewTracker(TrackerConfig{Session: "s-" + video, Video: video})
			u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
			e.report(u)
		}
		e.net.off.Store(false)
		fr, err := e.c.Flush(ctxT(t))
		if err != nil || fr.Dropped != 3 || fr.Remaining != 0 || fr.Restamped != 3 {
			t.Fatalf("Flush = %+v, %v; want 3 re-stamped, 3 dropped, nothing left", fr, err)
		}
		reqs := e.srv.requests("", "/")
		if posts, puts := countMethods(reqs); posts != 2 || puts != 3 {
			t.Fatalf("%d batches and %d PUTs, want 2 (refused, then re-stamped and refused) and 3 (each update alone, once)", posts, puts)
		}
		seen := map[crdt.Version]int{}
		for _, v := range sentVersions(t, reqs) {
			if seen[v]++; seen[v] > 2 {
				t.Fatalf("version %v sent %d times", v, seen[v])
			}
		}
		if len(seen) != 6 {
			t.Fatalf("%d versions sent, want 6 (3 refused, 3 re-stamped)", len(seen))
		}
		// Later flushes have nothing to send.
		if fr, err := e.c.Flush(ctxT(t)); err != nil || fr.Batches != 0 {
			t.Fatalf("second Flush = %+v, %v", fr, err)
		}
	})
	t.Run("flush in step", func(t *testing.T) {
		// Updates stamped after the clock was reset are not re-stamped:
		// the refused batch is not sent again, its updates are tried
		// alone once each.
		e := refuseAll(t)
		if _, err := e.c.Resume(ctxT(t), "kid", "ep-0"); err != nil { // learn the node's clock
			t.Fatal(err)
		}
		e.net.off.Store(true)
		for _, video := range []string{"ep-2", "ep-3"} {
			tr := e.c.NewTracker(TrackerConfig{Session: "s-" + video, Video: video})
			u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
			e.report(u)
		}
		e.net.off.Store(false)
		fr, err := e.c.Flush(ctxT(t))
		if err != nil || fr.Dropped != 2 || fr.Remaining != 0 || fr.Restamped != 0 {
			t.Fatalf("Flush = %+v, %v; want 2 dropped, none re-stamped", fr, err)
		}
		if posts, puts := countMethods(e.srv.requests("", "/v1/profiles/kid/positions")); posts != 1 || puts != 2 {
			t.Fatalf("%d batches and %d PUTs, want 1 and 2", posts, puts)
		}
	})
}

// TestAPIErrorClockSkew: only the node's clock-skew refusal counts.
func TestAPIErrorClockSkew(t *testing.T) {
	for _, c := range []struct {
		e    APIError
		want bool
	}{
		{APIError{Status: 400, Code: api.CodeBadRequest, Message: `update 0 (video "v"): crdt: timestamp too far in the future: 600000 ms ahead (allowed 60000 ms); fix the device clock`}, true},
		{APIError{Status: 400, Code: api.CodeBadRequest, Message: `crdt: timestamp too far in the future (update 0: …)`}, true},
		{APIError{Status: 400, Code: api.CodeBadRequest, Message: "crdt: seq must not be below epoch"}, false},
		{APIError{Status: 503, Code: api.CodeUnavailable, Message: "crdt: timestamp too far in the future"}, false},
	} {
		if got := c.e.ClockSkew(); got != c.want {
			t.Errorf("ClockSkew(%v) = %v, want %v", &c.e, got, c.want)
		}
	}
}
