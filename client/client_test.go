package client

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// env is a Client wired to a fakeServer through a switchable network.
type env struct {
	t     *testing.T
	srv   *fakeServer
	net   *netSwitch
	clock *testClock
	cfg   Config
	c     *Client
}

func newEnv(t *testing.T, tweak ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, srv: newFakeServer(t), clock: newTestClock(time.Now().UnixMilli())}
	e.net = &netSwitch{base: http.DefaultTransport}
	e.cfg = Config{
		BaseURL: e.srv.srv.URL, Token: "test-token", Device: "tv",
		HTTPClient:     &http.Client{Transport: e.net},
		RequestTimeout: 3 * time.Second,
		QueuePath:      filepath.Join(t.TempDir(), "queue"),
		Clock:          e.clock,
		Rand:           rand.New(rand.NewPCG(7, 11)),
		BackoffBase:    5 * time.Millisecond,
		BackoffCap:     40 * time.Millisecond,
		LongPollWait:   400 * time.Millisecond,
		PingInterval:   time.Second,
	}
	for _, f := range tweak {
		f(&e.cfg)
	}
	e.c = e.newClient()
	return e
}

// newClient returns another Client with the env's config (the app
// restarted).
func (e *env) newClient() *Client {
	e.t.Helper()
	c, err := New(e.cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return c
}

// report reports u and fails the test on an error.
func (e *env) report(u crdt.Update) Result {
	e.t.Helper()
	res, err := e.c.Report(ctxT(e.t), "kid", u)
	if err != nil {
		e.t.Fatalf("Report(%s %s): %v", u.Video, u.Session, err)
	}
	return res
}

// TestReportApplied: a report goes out as PUT with the API's JSON (HLCs as
// decimal strings, metadata on the first update only, the video in the
// path) and comes back applied with the merged cursor.
func TestReportApplied(t *testing.T) {
	e := newEnv(t)
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1", Meta: Metadata{Title: "Pilot"}})
	u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	res := e.report(u)
	if res.Outcome != Applied || res.Cursor == nil || res.Cursor.Version() != versionOf(u) {
		t.Fatalf("result %+v, want applied with the update's version", res)
	}
	puts := e.srv.requests(http.MethodPut, "/v1/profiles/kid/positions/ep-1")
	if len(puts) != 1 {
		t.Fatalf("%d PUTs, want 1", len(puts))
	}
	var body map[string]any
	if err := json.Unmarshal(puts[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["epoch"] != u.Epoch.String() || body["seq"] != u.Seq.String() {
		t.Fatalf("epoch/seq %v/%v, want decimal strings %s/%s", body["epoch"], body["seq"], u.Epoch, u.Seq)
	}
	if body["state"] != "playing" || body["device"] != "tv" || body["session"] != "s1" || body["title"] != "Pilot" {
		t.Fatalf("body %v", body)
	}
	if _, ok := body["video"]; ok {
		t.Fatalf("PUT body names the video: %v", body)
	}
	u2, _ := tr.Pause(e.c.NowMs()+1000, 1000)
	e.report(u2)
	puts = e.srv.requests(http.MethodPut, "/v1/profiles/kid/positions/ep-1")
	var body2 map[string]any
	json.Unmarshal(puts[1].Body, &body2)
	if _, ok := body2["title"]; ok {
		t.Fatalf("second update carries metadata: %s", puts[1].Body)
	}
}

// TestHLCHeaderObserved: after any answer, the device's stamps are above
// the node's Playhead-HLC, even with the device clock an hour behind, and
// NowMs follows the node's clock.
func TestHLCHeaderObserved(t *testing.T) {
	e := newEnv(t)
	e.srv.skewMs = 3_600_000 // the node is an hour ahead of the device
	cur, err := e.c.Resume(ctxT(t), "kid", "ep-1")
	if err != nil || cur != nil {
		t.Fatalf("Resume of an unknown video: %v %v, want nil, nil", cur, err)
	}
	server := e.srv.clock.Last() // at least the header's HLC
	if stamp := e.c.Clock().Now(e.clock.NowMs()); stamp <= server {
		t.Fatalf("stamp %v after the answer is not above the node's HLC %v", stamp, server)
	}
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	if u.Epoch <= server {
		t.Fatalf("tracker epoch %v not above the node's HLC %v", u.Epoch, server)
	}
	if d := e.c.NowMs() - server.Physical(); d < -2000 || d > 2000 {
		t.Fatalf("NowMs is %d ms from the node's clock, want it corrected to within 2 s", d)
	}
}

// TestOfflineQueueFlush: offline, reports are queued (coalesced per
// session, persisted); back online, one Flush replays them in one batch
// in true version order.
func TestOfflineQueueFlush(t *testing.T) {
	e := newEnv(t)
	e.net.off.Store(true)
	now := e.c.NowMs()
	s0 := e.c.NewTracker(TrackerConfig{Session: "s0", Video: "ep-1", Meta: Metadata{Title: "Pilot"}})
	s1 := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	s2 := e.c.NewTracker(TrackerConfig{Session: "s2", Video: "ep-2"})
	var sent []crdt.Update
	emit := func(u crdt.Update, ok bool) {
		if ok {
			sent = append(sent, u)
		}
	}
	emit(s0.Start(now, 0, 3_600_000))
	emit(s0.Observe(now+10_000, 10_000, crdt.StatePlaying))
	emit(s0.Stop(now+15_000, 15_000))
	emit(s1.Start(now+20_000, 15_000, 3_600_000))
	emit(s2.Start(now+21_000, 0, 1_800_000))
	emit(s1.Observe(now+30_000, 25_000, crdt.StatePlaying))
	emit(s2.Observe(now+31_000, 10_000, crdt.StatePlaying))
	emit(s1.SeekTo(now+32_000, 0)) // backwards: must win
	emit(s2.Pause(now+33_000, 12_000))
	for _, u := range sent {
		res := e.report(u)
		if res.Outcome != Queued || !errors.Is(res.Cause, ErrOffline) {
			t.Fatalf("offline report: %+v, want queued (offline)", res)
		}
	}
	if n := e.c.Queued(); n != 3 {
		t.Fatalf("Queued = %d, want 3 (one per video and session)", n)
	}
	if n := len(e.srv.requests("", "/v1/")); n != 0 {
		t.Fatalf("%d requests reached the node while offline", n)
	}

	e.net.off.Store(false)
	fr, err := e.c.Flush(ctxT(t))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if fr.Batches != 1 || fr.Sent != 3 || fr.Applied != 3 || fr.Remaining != 0 {
		t.Fatalf("Flush = %+v, want one batch of 3, all applied", fr)
	}
	posts := e.srv.requests(http.MethodPost, "/v1/profiles/kid/positions")
	if len(posts) != 1 {
		t.Fatalf("%d POSTs, want 1", len(posts))
	}
	var batch api.BatchRequest
	json.Unmarshal(posts[0].Body, &batch)
	want := []crdt.Update{sent[2], sent[8], sent[7]} // s0's stop, s2's pause, s1's seek: version order
	if len(batch.Updates) != len(want) {
		t.Fatalf("batch of %d, want %d", len(batch.Updates), len(want))
	}
	for i, b := range batch.Updates {
		u, err := b.Update("")
		if err != nil {
			t.Fatal(err)
		}
		if versionOf(u) != versionOf(want[i]) || u.PositionMs != want[i].PositionMs {
			t.Errorf("batch[%d] = %s %s pos %d, want %s %s pos %d", i, u.Video, u.Session, u.PositionMs,
				want[i].Video, want[i].Session, want[i].PositionMs)
		}
	}
	if batch.Updates[0].Title != "Pilot" {
		t.Errorf("s0's metadata was lost in coalescing: %+v", batch.Updates[0])
	}
	cur, _ := e.srv.cursor("kid", "ep-1")
	if cur.Session != "s1" || cur.PositionMs != 0 {
		t.Fatalf("ep-1 cursor %+v, want s1's seek back to 0", cur)
	}
	if e.c.Queued() != 0 {
		t.Fatal("queue not empty after Flush")
	}
	if e.newClient().Queued() != 0 {
		t.Fatal("queue file not emptied after Flush")
	}
}

// TestQueueSurvivesRestart: updates queued offline are still there when
// the app starts again, and the new Client delivers them.
func TestQueueSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.net.off.Store(true)
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	u1, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	u2, _ := tr.Pause(e.c.NowMs()+5000, 5000)
	tr2 := e.c.NewTracker(TrackerConfig{Session: "s2", Video: "ep-2"})
	u3, _ := tr2.Start(e.c.NowMs()+6000, 0, 3_600_000)
	for _, u := range []crdt.Update{u1, u2, u3} {
		e.report(u)
	}
	c2 := e.newClient() // the app restarted
	if n := c2.Queued(); n != 2 {
		t.Fatalf("after restart Queued = %d, want 2", n)
	}
	e.net.off.Store(false)
	fr, err := c2.Flush(ctxT(t))
	if err != nil || fr.Applied != 2 {
		t.Fatalf("Flush after restart: %+v %v", fr, err)
	}
	if cur, _ := e.srv.cursor("kid", "ep-1"); cur.Version() != versionOf(u2) {
		t.Fatalf("ep-1 cursor %+v, want the pause", cur)
	}
}

// TestReportJoinsBacklog: with updates queued, a report that reaches the
// node goes out in the same batch, after them.
func TestReportJoinsBacklog(t *testing.T) {
	e := newEnv(t)
	e.net.off.Store(true)
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	u1, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	e.report(u1)
	e.net.off.Store(false)
	u2, _ := tr.Pause(e.c.NowMs()+1000, 1000)
	tr2 := e.c.NewTracker(TrackerConfig{Session: "s2", Video: "ep-2"})
	u3, _ := tr2.Start(e.c.NowMs()+2000, 0, 3_600_000)
	e.net.off.Store(true)
	e.report(u2) // coalesces with u1
	e.net.off.Store(false)
	res := e.report(u3)
	if res.Outcome != Applied || res.Cursor == nil || res.Cursor.Version() != versionOf(u3) {
		t.Fatalf("report with a backlog: %+v, want applied", res)
	}
	if n := len(e.srv.requests(http.MethodPut, "/")); n != 0 {
		t.Fatalf("%d PUTs, want none (the backlog and the report share a batch)", n)
	}
	posts := e.srv.requests(http.MethodPost, "/v1/profiles/kid/positions")
	var batch api.BatchRequest
	if len(posts) != 1 || json.Unmarshal(posts[0].Body, &batch) != nil || len(batch.Updates) != 2 {
		t.Fatalf("want one POST of 2 updates, got %d POSTs", len(posts))
	}
	if batch.Updates[0].Seq != u2.Seq || batch.Updates[1].Seq != u3.Seq {
		t.Fatalf("batch order %v, %v; want u2, u3", batch.Updates[0].Seq, batch.Updates[1].Seq)
	}
}

// TestReportConflict: a 409 returns the node's cursor (Stale) and teaches
// the clock its version; a 409 that carries our own version is a retried
// write that had succeeded (Applied).
func TestReportConflict(t *testing.T) {
	e := newEnv(t)
	now := e.c.NowMs()
	other := e.srv.write("kid", crdt.Update{Video: "ep-1", Device: "phone", Session: "p1",
		PositionMs: 600_000, DurationMs: 3_600_000, State: crdt.StatePaused,
		Epoch: crdt.NewHLC(now+30_000, 0), Seq: crdt.NewHLC(now+30_000, 5)})
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
	u, _ := tr.Start(now, 0, 3_600_000)
	res := e.report(u)
	if res.Outcome != Stale || res.Cursor == nil || res.Cursor.Session != "p1" || res.Cursor.PositionMs != 600_000 {
		t.Fatalf("stale report: %+v, want Stale with the phone's cursor", res)
	}
	if e.c.Queued() != 0 {
		t.Fatal("a stale update was queued")
	}
	// The viewer insists: a seek here opens an epoch above the phone's.
	u2, _ := tr.SeekTo(now+1000, 0)
	if !other.Version().Less(versionOf(u2)) {
		t.Fatalf("seek after a 409: %v not above the phone's %v", versionOf(u2), other.Version())
	}
	if res := e.report(u2); res.Outcome != Applied {
		t.Fatalf("seek report: %+v", res)
	}
	// A retry of the same write: 409 with our own version.
	res, err := e.c.Report(ctxT(t), "kid", u2)
	if err != nil || res.Outcome != Applied || res.Cursor.Version() != versionOf(u2) {
		t.Fatalf("retried write: %+v %v, want Applied", res, err)
	}
	if n := len(e.srv.requests(http.MethodPut, "/")); n != 3 {
		t.Fatalf("%d PUTs, want 3", n)
	}
	if outcomeOf(u, api.WriteResult{Applied: false, Cursor: nil}) != Stale {
		t.Fatal("409 without a cursor (deleted history) must be Stale")
	}
}

// TestRetryAfter: after a 503 or 429 with Retry-After, writes are queued
// without a request until the wait has passed; then Flush delivers them.
func TestRetryAfter(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newEnv(t)
			e.srv.set(func(f *fakeServer) { f.writeStatus, f.retryAfter = status, "5" })
			tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-1"})
			u1, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
			res := e.report(u1)
			if res.Outcome != Queued || res.RetryAfter != 5*time.Second || !errors.Is(res.Cause, ErrRetryLater) {
				t.Fatalf("report on %d: %+v, want queued for 5 s", status, res)
			}
			e.srv.set(func(f *fakeServer) { f.writeStatus = 0 }) // healthy again, but the client must wait
			writes := func() int {
				return len(e.srv.requests(http.MethodPut, "/")) + len(e.srv.requests(http.MethodPost, "/"))
			}
			before := writes()
			e.clock.Advance(2 * time.Second)
			u2, _ := tr.Pause(e.c.NowMs(), 2000)
			res = e.report(u2)
			if res.Outcome != Queued || res.RetryAfter != 3*time.Second {
				t.Fatalf("report during Retry-After: %+v, want queued for 3 more s", res)
			}
			if _, err := e.c.Flush(ctxT(t)); !errors.Is(err, ErrRetryLater) {
				t.Fatalf("Flush during Retry-After: %v, want ErrRetryLater", err)
			}
			if writes() != before {
				t.Fatalf("%d writes during Retry-After, want none", writes()-before)
			}
			e.clock.Advance(3 * time.Second)
			fr, err := e.c.Flush(ctxT(t))
			if err != nil || fr.Batches != 1 || fr.Applied != 1 {
				t.Fatalf("Flush after Retry-After: %+v %v, want one batch, applied", fr, err)
			}
			if cur, _ := e.srv.cursor("kid", "ep-1"); cur.Version() != versionOf(u2) {
				t.Fatalf("cursor %+v, want the pause", cur)
			}
		})
	}
}

// TestReportRefused: what the node refuses for good (400) and what the SDK
// knows it would refuse is reported as an error and not queued.
func TestReportRefused(t *testing.T) {
	e := newEnv(t)
	e.srv.set(func(f *fakeServer) { f.badVideo = "ep-bad" })
	tr := e.c.NewTracker(TrackerConfig{Session: "s1", Video: "ep-bad"})
	u, _ := tr.Start(e.c.NowMs(), 0, 3_600_000)
	_, err := e.c.Report(ctxT(t), "kid", u)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != api.CodeBadRequest {
		t.Fatalf("err = %v, want a 400 APIError", err)
	}
	bad := u
	bad.Video, bad.PositionMs = "ep-1", bad.DurationMs+1
	if _, err := e.c.Report(ctxT(t), "kid", bad); !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("err = %v, want ErrInvalidUpdate", err)
	}
	if _, err := e.c.Report(ctxT(t), "a/b", u); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v, want ErrInvalidArgument", err)
	}
	if e.c.Queued() != 0 {
		t.Fatal("a refused update was queued")
	}
	if n := len(e.srv.requests(http.MethodPut, "/")); n != 1 {
		t.Fatalf("%d PUTs, want 1 (invalid updates are not sent)", n)
	}
}

// TestFlushRefusedBatch: a batch the node refuses as a whole is sent one
// update at a time; the bad update is dropped, the others delivered.
func TestFlushRefusedBatch(t *testing.T) {
	e := newEnv(t)
	e.net.off.Store(true)
	now := e.c.NowMs()
	for i, video := range []string{"ep-1", "ep-bad", "ep-2"} {
		tr := e.c.NewTracker(TrackerConfig{Session: "s" + video, Video: video})
		u, _ := tr.Start(now+int64(i), 0, 3_600_000)
		e.report(u)
	}
	e.net.off.Store(false)
	e.srv.set(func(f *fakeServer) { f.badVideo = "ep-bad" })
	fr, err := e.c.Flush(ctxT(t))
	if err != nil || fr.Applied != 2 || fr.Dropped != 1 || fr.Remaining != 0 {
		t.Fatalf("Flush = %+v %v, want 2 applied, 1 dropped", fr, err)
	}
	if n := len(e.srv.requests(http.MethodPut, "/")); n != 3 {
		t.Fatalf("%d PUTs after the refused batch, want 3", n)
	}
}

// TestFlushChunks: more than api.MaxBatch queued updates go in batches of at
// most api.MaxBatch, in version order across batches.
func TestFlushChunks(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.QueuePath = "" })
	// A 503 with Retry-After: the reports that follow are queued without
	// a request (cheaper for the test than going through the network).
	e.srv.set(func(f *fakeServer) { f.writeStatus, f.retryAfter = http.StatusServiceUnavailable, "1" })
	now := e.c.NowMs()
	const n = 1100
	for i := 0; i < n; i++ {
		tr := e.c.NewTracker(TrackerConfig{Session: "s" + itoa(i), Video: "ep-" + itoa(i%7)})
		u, _ := tr.Start(now+int64(i), 0, 3_600_000)
		if res := e.report(u); res.Outcome != Queued {
			t.Fatalf("report %d: %+v", i, res)
		}
	}
	e.srv.set(func(f *fakeServer) { f.writeStatus = 0 })
	e.clock.Advance(time.Second)
	fr, err := e.c.Flush(ctxT(t))
	if err != nil || fr.Batches != 3 || fr.Sent != n {
		t.Fatalf("Flush = %+v %v, want 3 batches, %d sent", fr, err, n)
	}
	var last crdt.Version
	for i, p := range e.srv.requests(http.MethodPost, "/") {
		var b api.BatchRequest
		json.Unmarshal(p.Body, &b)
		if len(b.Updates) > api.MaxBatch {
			t.Fatalf("batch %d has %d updates", i, len(b.Updates))
		}
		for _, ub := range b.Updates {
			v := crdt.Version{Epoch: ub.Epoch, Seq: ub.Seq, Session: ub.Session}
			if !last.Less(v) {
				t.Fatalf("batch %d: %v after %v", i, v, last)
			}
			last = v
		}
	}
}

func itoa(i int) string {
	return string(rune('a'+i/676%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26))
}

// TestResume: the cursor of a known video, nil for an unknown one.
func TestResume(t *testing.T) {
	e := newEnv(t)
	now := e.c.NowMs()
	e.srv.write("kid", crdt.Update{Video: "ep-1", Device: "phone", Session: "p1", PositionMs: 754_000,
		DurationMs: 2_580_000, State: crdt.StatePaused, Epoch: crdt.NewHLC(now, 0), Seq: crdt.NewHLC(now, 1)})
	cur, err := e.c.Resume(ctxT(t), "kid", "ep-1")
	if err != nil || cur == nil || cur.ResumeMs != 754_000 || cur.State != "paused" {
		t.Fatalf("Resume = %+v, %v", cur, err)
	}
	e.net.off.Store(true)
	if _, err := e.c.Resume(ctxT(t), "kid", "ep-1"); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline Resume: %v, want ErrOffline", err)
	}
}

// TestResumeSendsWhatTheDeviceSaw: after the device is answered a cursor
// (its own write here), a resume read of that video carries the version
// in Playhead-Seen, so no node answers an older one; another video's read
// carries none, and a delete of the video forgets it.
func TestResumeSendsWhatTheDeviceSaw(t *testing.T) {
	e := newEnv(t)
	res, err := e.c.Report(ctxT(t), "kid", crdt.Update{Video: "ep-1", Device: "phone", Session: "p1", PositionMs: 1000,
		DurationMs: 60_000, State: crdt.StatePlaying})
	if err != nil || res.Cursor == nil {
		t.Fatalf("Report = %+v, %v", res, err)
	}
	if _, err := e.c.Resume(ctxT(t), "kid", "ep-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Resume(ctxT(t), "kid", "ep-2"); err != nil {
		t.Fatal(err)
	}
	reads := e.srv.requests("GET", "/v1/profiles/kid/positions/")
	if len(reads) != 2 {
		t.Fatalf("%d reads, want 2", len(reads))
	}
	if want := formatSeen(res.Cursor.Version()); reads[0].Seen != want {
		t.Errorf("Playhead-Seen = %q, want %q", reads[0].Seen, want)
	}
	if reads[1].Seen != "" {
		t.Errorf("a video never seen sent Playhead-Seen %q", reads[1].Seen)
	}
	e.c.forget("kid", "ep-1")
	if v := e.c.seenOf("kid", "ep-1"); !v.IsZero() {
		t.Errorf("after forget: %v", v)
	}
}
