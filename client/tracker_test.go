package client

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/playhead/playhead/crdt"
)

// baseMs is "t=0s" in the tracker scripts: a realistic wall-clock time, so
// that HLCs are not zero.
const baseMs = 1_790_000_000_000

// TestTrackerScripts runs the stories in testdata/tracker. Commands:
//
//	tracker video=V session=S [title=T series=S next=N] [tolerance=5s]
//	start t=DUR pos=DUR dur=DUR
//	observe t=DUR pos=DUR state=playing|paused|stopped|completed
//	play|pause|stop|seek t=DUR pos=DUR
//	complete t=DUR
//	tick t=DUR
//	duration dur=DUR
//	remote t=DUR       the clock observes another device's HLC at t
//	play-for to=DUR [every=1s] [rate=1]
//	                   observe playing every step from the last
//	                   observation until to, the position advancing at rate
//
// Each emitted update prints as one line: its time, position, state,
// version (relative to t=0, "+n" for a logical counter) and "new-epoch" when
// it opened one; "-" when nothing was emitted. Regenerate with
// go test ./client -run TestTrackerScripts -rewrite.
func TestTrackerScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/tracker", func(t *testing.T, path string) {
		var (
			clock *crdt.Clock
			tr    *Tracker
			lastT int64 // ms since base of the last observation
			lastP int64
		)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			ms := func(key string) int64 {
				var s string
				d.ScanArgs(t, key, &s)
				dur, err := time.ParseDuration(s)
				if err != nil {
					d.Fatalf(t, "%s=%s: %v", key, s, err)
				}
				return dur.Milliseconds()
			}
			opt := func(key, def string) string {
				if !d.HasArg(key) {
					return def
				}
				var s string
				d.ScanArgs(t, key, &s)
				return s
			}
			var out []string
			show := func(now int64, u crdt.Update, ok bool) {
				if ok {
					out = append(out, fmtEmit(now, u))
				}
			}
			switch d.Cmd {
			case "tracker":
				clock = crdt.NewClock(0)
				tol, _ := time.ParseDuration(opt("tolerance", "0s"))
				tr = NewTracker(clock, TrackerConfig{
					Device: "tv", Video: opt("video", "ep-1"), Session: opt("session", "s1"),
					Meta:          Metadata{Title: opt("title", ""), SeriesID: opt("series", ""), NextVideo: opt("next", "")},
					SeekTolerance: tol,
				})
				return "ok"
			case "start":
				now := ms("t")
				lastT, lastP = now, ms("pos")
				u, ok := tr.Start(baseMs+now, lastP, ms("dur"))
				show(now, u, ok)
			case "observe":
				now := ms("t")
				lastT, lastP = now, ms("pos")
				st, ok := crdt.ParseState(opt("state", "playing"))
				if !ok {
					d.Fatalf(t, "bad state")
				}
				u, ok := tr.Observe(baseMs+now, lastP, st)
				show(now, u, ok)
			case "play", "pause", "stop", "seek":
				now := ms("t")
				lastT, lastP = now, ms("pos")
				op := map[string]func(int64, int64) (crdt.Update, bool){
					"play": tr.Play, "pause": tr.Pause, "stop": tr.Stop, "seek": tr.SeekTo,
				}[d.Cmd]
				u, ok := op(baseMs+now, lastP)
				show(now, u, ok)
			case "complete":
				now := ms("t")
				lastT = now
				u, ok := tr.Complete(baseMs + now)
				show(now, u, ok)
			case "tick":
				now := ms("t")
				u, ok := tr.Tick(baseMs + now)
				show(now, u, ok)
			case "duration":
				tr.SetDuration(ms("dur"))
				return "ok"
			case "remote":
				clock.Observe(crdt.NewHLC(baseMs+ms("t"), 0))
				return "ok"
			case "play-for":
				to := ms("to")
				every, _ := time.ParseDuration(opt("every", "1s"))
				var rate float64
				fmt.Sscan(opt("rate", "1"), &rate)
				for now := lastT + every.Milliseconds(); now <= to; now += every.Milliseconds() {
					pos := lastP + int64(float64(now-lastT)*rate)
					u, ok := tr.Observe(baseMs+now, pos, crdt.StatePlaying)
					show(now, u, ok)
					lastT, lastP = now, pos
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			if len(out) == 0 {
				return "-"
			}
			return strings.Join(out, "\n")
		})
	})
}

func fmtEmit(now int64, u crdt.Update) string {
	var b strings.Builder
	fmt.Fprintf(&b, "emit t=%v pos=%v state=%v epoch=%s seq=%s", msDur(now), msDur(u.PositionMs), u.State,
		relHLC(u.Epoch), relHLC(u.Seq))
	if u.Epoch == u.Seq {
		b.WriteString(" new-epoch")
	}
	if u.Title != "" || u.SeriesID != "" || u.NextVideo != "" {
		fmt.Fprintf(&b, " meta=%s/%s/%s", u.Title, u.SeriesID, u.NextVideo)
	}
	return b.String()
}

func msDur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

func relHLC(h crdt.HLC) string {
	s := msDur(h.Physical() - baseMs).String()
	if h.Logical() != 0 {
		s += fmt.Sprintf("+%d", h.Logical())
	}
	return s
}

// emits drives a tracker through a list of steps and collects what it
// emitted, with the time of each.
type emitted struct {
	at int64
	u  crdt.Update
}

func newTestTracker() (*crdt.Clock, *Tracker) {
	clock := crdt.NewClock(0)
	return clock, NewTracker(clock, TrackerConfig{Device: "tv", Session: "s1", Video: "ep-1",
		Meta: Metadata{Title: "Pilot", SeriesID: "show", NextVideo: "ep-2"}})
}

// TestTrackerPlayingCadence: an hour-long video observed every 250 ms for
// 61 s emits exactly at 0, 10, …, 60 s.
func TestTrackerPlayingCadence(t *testing.T) {
	_, tr := newTestTracker()
	var got []int64
	if _, ok := tr.Start(baseMs, 0, 3_600_000); !ok {
		t.Fatal("Start emitted nothing")
	}
	got = append(got, 0)
	for now := int64(250); now <= 61_000; now += 250 {
		if _, ok := tr.Observe(baseMs+now, now, crdt.StatePlaying); ok {
			got = append(got, now)
		}
	}
	want := []int64{0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("emitted at %v ms, want %v", got, want)
	}
}

// TestTrackerImmediate: pause, seek, stop and complete emit at once, even
// 1 s after the last update; resuming emits at once too.
func TestTrackerImmediate(t *testing.T) {
	type op func(tr *Tracker, now int64) (crdt.Update, bool)
	ops := map[string]op{
		"pause":    func(tr *Tracker, now int64) (crdt.Update, bool) { return tr.Pause(now, 1000) },
		"seek":     func(tr *Tracker, now int64) (crdt.Update, bool) { return tr.SeekTo(now, 900_000) },
		"seekback": func(tr *Tracker, now int64) (crdt.Update, bool) { return tr.SeekTo(now, 0) },
		"stop":     func(tr *Tracker, now int64) (crdt.Update, bool) { return tr.Stop(now, 1000) },
		"complete": func(tr *Tracker, now int64) (crdt.Update, bool) { return tr.Complete(now) },
		"observe-paused": func(tr *Tracker, now int64) (crdt.Update, bool) {
			return tr.Observe(now, 1000, crdt.StatePaused)
		},
	}
	for name, f := range ops {
		t.Run(name, func(t *testing.T) {
			_, tr := newTestTracker()
			tr.Start(baseMs, 0, 3_600_000)
			u, ok := f(tr, baseMs+1000)
			if !ok {
				t.Fatalf("%s 1 s after start emitted nothing", name)
			}
			if u.Seq.Physical() != baseMs+1000 {
				t.Fatalf("%s stamped at %d, want %d", name, u.Seq.Physical(), baseMs+1000)
			}
			if _, ok := tr.Tick(baseMs + 1500); ok {
				t.Fatalf("%s: a tick 0.5 s later emitted again", name)
			}
		})
	}
	t.Run("resume", func(t *testing.T) {
		_, tr := newTestTracker()
		tr.Start(baseMs, 0, 3_600_000)
		tr.Pause(baseMs+1000, 1000)
		if _, ok := tr.Play(baseMs+2000, 1000); !ok {
			t.Fatal("resume 1 s after pause emitted nothing")
		}
	})
}

// TestTrackerEndingCadence: in the last 5 % of a video the cadence is
// 2 s; before it, 10 s.
func TestTrackerEndingCadence(t *testing.T) {
	_, tr := newTestTracker()
	const dur = 400_000 // last 5 %: from 380 s
	tr.Start(baseMs, 300_000, dur)
	var at []int64
	for now := int64(100); now <= 100_000; now += 100 {
		pos := min(300_000+now, dur)
		if u, ok := tr.Observe(baseMs+now, pos, crdt.StatePlaying); ok {
			at = append(at, u.PositionMs)
		}
	}
	prev := int64(300_000)
	for _, p := range at {
		gap := p - prev
		switch {
		case prev >= 380_000 && gap != 2000:
			t.Errorf("in the last 5 %%: update at %d ms %d ms after the previous, want 2000", p, gap)
		case prev < 380_000 && p < 380_000 && gap != 10_000:
			t.Errorf("before the last 5 %%: update at %d ms %d ms after the previous, want 10000", p, gap)
		}
		prev = p
	}
	if len(at) < 10 {
		t.Fatalf("only %d updates: %v", len(at), at)
	}
}

// TestTrackerEpochs: seek and resume open a new epoch; pause and
// heartbeats keep it; every version is larger than the one before.
func TestTrackerEpochs(t *testing.T) {
	_, tr := newTestTracker()
	u0, _ := tr.Start(baseMs, 0, 3_600_000)
	u1, _ := tr.Observe(baseMs+10_000, 10_000, crdt.StatePlaying)
	u2, _ := tr.Pause(baseMs+12_000, 12_000)
	u3, _ := tr.Play(baseMs+20_000, 12_000)
	u4, _ := tr.SeekTo(baseMs+21_000, 600_000)
	u5, _ := tr.Observe(baseMs+31_000, 610_000, crdt.StatePlaying)
	steps := []struct {
		name     string
		u        crdt.Update
		newEpoch bool
	}{{"start", u0, true}, {"heartbeat", u1, false}, {"pause", u2, false}, {"resume", u3, true},
		{"seek", u4, true}, {"heartbeat after seek", u5, false}}
	for i, s := range steps {
		if s.u.Seq == 0 {
			t.Fatalf("%s: nothing emitted", s.name)
		}
		if got := s.u.Epoch == s.u.Seq; got != s.newEpoch {
			t.Errorf("%s: new epoch %v, want %v (epoch %v seq %v)", s.name, got, s.newEpoch, s.u.Epoch, s.u.Seq)
		}
		if i > 0 {
			prev := steps[i-1].u
			if !versionOf(prev).Less(versionOf(s.u)) {
				t.Errorf("%s: version %v not above the previous %v", s.name, versionOf(s.u), versionOf(prev))
			}
			if !s.newEpoch && s.u.Epoch != prev.Epoch {
				t.Errorf("%s: epoch changed from %v to %v", s.name, prev.Epoch, s.u.Epoch)
			}
		}
	}
}

// TestTrackerBackwardsSeekWins: a seek back to the start, on a device
// whose clock has seen a newer version elsewhere, gets a version above
// everything before it — this device's updates and the observed one.
func TestTrackerBackwardsSeekWins(t *testing.T) {
	clock, tr := newTestTracker()
	var all []crdt.Update
	u, _ := tr.Start(baseMs, 0, 3_600_000)
	all = append(all, u)
	for now := int64(1000); now <= 120_000; now += 1000 {
		if u, ok := tr.Observe(baseMs+now, now, crdt.StatePlaying); ok {
			all = append(all, u)
		}
	}
	// Another device's session, stamped by a clock 5 minutes ahead.
	remote := crdt.Version{Epoch: crdt.NewHLC(baseMs+420_000, 3), Seq: crdt.NewHLC(baseMs+420_000, 9), Session: "zz-other"}
	clock.Observe(remote.Seq)
	back, ok := tr.SeekTo(baseMs+121_000, 0)
	if !ok {
		t.Fatal("seek emitted nothing")
	}
	if back.PositionMs != 0 || back.Epoch != back.Seq {
		t.Fatalf("seek update %+v: want position 0 in a new epoch", back)
	}
	for _, u := range all {
		if !versionOf(u).Less(versionOf(back)) {
			t.Fatalf("seek back %v not above earlier %v", versionOf(back), versionOf(u))
		}
	}
	if !remote.Less(versionOf(back)) {
		t.Fatalf("seek back %v not above the observed remote version %v", versionOf(back), remote)
	}
}

// TestTrackerImpliedSeek: a position jump that playback cannot explain
// opens a new epoch; stalls, faster playback and jitter do not.
func TestTrackerImpliedSeek(t *testing.T) {
	cases := []struct {
		name     string
		dtMs     int64 // time since the last observation (at 60 s)
		pos      int64
		newEpoch bool
	}{
		{"normal play", 1000, 61_000, false},
		{"stall: position stands still", 8000, 60_000, false},
		{"2x playback", 2000, 64_000, false},
		{"jitter back 1 s", 1000, 59_000, false},
		{"jump forward 60 s", 1000, 121_000, true},
		{"jump back 30 s", 1000, 30_000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, tr := newTestTracker()
			tr.Start(baseMs, 0, 3_600_000)
			tr.Observe(baseMs+60_000, 60_000, crdt.StatePlaying) // heartbeat
			epoch := tr.Epoch()
			u, ok := tr.Observe(baseMs+60_000+c.dtMs, c.pos, crdt.StatePlaying)
			if c.newEpoch {
				if !ok || u.Epoch == epoch || u.Epoch != u.Seq {
					t.Fatalf("want an update in a new epoch at once, got ok=%v %+v", ok, u)
				}
				return
			}
			if ok {
				t.Fatalf("want no update (cadence), got %+v", u)
			}
			if tr.Epoch() != epoch {
				t.Fatalf("epoch changed")
			}
		})
	}
	t.Run("scrub while paused", func(t *testing.T) {
		_, tr := newTestTracker()
		tr.Start(baseMs, 0, 3_600_000)
		tr.Pause(baseMs+5000, 5000)
		if _, ok := tr.Observe(baseMs+9000, 5000, crdt.StatePaused); ok {
			t.Fatal("paused, same position: emitted")
		}
		u, ok := tr.Observe(baseMs+10_000, 400_000, crdt.StatePaused)
		if !ok || u.Epoch != u.Seq || u.State != crdt.StatePaused {
			t.Fatalf("scrub while paused: want a paused update in a new epoch, got ok=%v %+v", ok, u)
		}
	})
}

// TestTrackerMetadataOnce: metadata rides on the first update only.
func TestTrackerMetadataOnce(t *testing.T) {
	_, tr := newTestTracker()
	u0, _ := tr.Start(baseMs, 0, 3_600_000)
	if u0.Title != "Pilot" || u0.SeriesID != "show" || u0.NextVideo != "ep-2" {
		t.Fatalf("first update lacks metadata: %+v", u0)
	}
	u1, _ := tr.Pause(baseMs+1000, 1000)
	u2, _ := tr.SeekTo(baseMs+2000, 5000)
	for _, u := range []crdt.Update{u1, u2} {
		if u.Title != "" || u.SeriesID != "" || u.NextVideo != "" {
			t.Fatalf("later update carries metadata: %+v", u)
		}
	}
}

// TestTrackerUnknownDuration: nothing is emitted until the duration is
// known; then the held-back start goes out on the next tick.
func TestTrackerUnknownDuration(t *testing.T) {
	_, tr := newTestTracker()
	if _, ok := tr.Start(baseMs, 0, 0); ok {
		t.Fatal("emitted without a duration")
	}
	if _, ok := tr.Tick(baseMs + 500); ok {
		t.Fatal("emitted without a duration")
	}
	tr.SetDuration(1_200_000)
	u, ok := tr.Tick(baseMs + 600)
	if !ok || u.DurationMs != 1_200_000 || u.Epoch != u.Seq || u.PositionMs != 600 {
		t.Fatalf("after SetDuration: ok=%v %+v", ok, u)
	}
	if err := ValidateUpdate(u); err != nil {
		t.Fatal(err)
	}
}

// TestTrackerClockBack: a device clock set back (corrected) does not
// silence the tracker.
func TestTrackerClockBack(t *testing.T) {
	_, tr := newTestTracker()
	tr.Start(baseMs+600_000, 0, 3_600_000)
	// Five minutes back; the heartbeats go on from there every 10 s.
	n := 0
	for now := int64(300_000); now <= 330_000; now += 1000 {
		if _, ok := tr.Observe(baseMs+now, now-300_000+1000, crdt.StatePlaying); ok {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("%d heartbeats in 30 s after the clock went back, want >= 3", n)
	}
}

// TestTrackerRandomWalk drives a tracker with random operations and checks
// the invariants: every emitted update is valid, its version is above every
// earlier one, seq >= epoch, and while playing no two heartbeats are closer
// than the cadence allows.
func TestTrackerRandomWalk(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 0xc0ffee))
		clock, tr := newTestTracker()
		now, pos := int64(baseMs), int64(0)
		const dur = 1_800_000
		var last crdt.Version
		check := func(op string, u crdt.Update, ok bool) {
			if !ok {
				return
			}
			if err := ValidateUpdate(u); err != nil {
				t.Fatalf("seed %d: %s emitted an invalid update: %v (reproduce: go test ./client -run TestTrackerRandomWalk)", seed, op, err)
			}
			v := versionOf(u)
			if !last.Less(v) || u.Seq < u.Epoch {
				t.Fatalf("seed %d: %s: version %v after %v (reproduce: go test ./client -run TestTrackerRandomWalk)", seed, op, v, last)
			}
			last = v
		}
		u, ok := tr.Start(now, 0, dur)
		check("start", u, ok)
		for i := 0; i < 400; i++ {
			now += rnd.Int64N(3000)
			switch r := rnd.IntN(100); {
			case r < 70:
				pos = min(pos+rnd.Int64N(3000), dur)
				u, ok = tr.Observe(now, pos, crdt.StatePlaying)
				check("observe", u, ok)
			case r < 78:
				u, ok = tr.Pause(now, pos)
				check("pause", u, ok)
			case r < 86:
				pos = rnd.Int64N(dur)
				u, ok = tr.SeekTo(now, pos)
				check("seek", u, ok)
			case r < 92:
				u, ok = tr.Tick(now)
				check("tick", u, ok)
			case r < 96:
				clock.Observe(crdt.NewHLC(now+rnd.Int64N(60_000), uint16(rnd.IntN(5))))
			case r < 98:
				u, ok = tr.Stop(now, pos)
				check("stop", u, ok)
			default:
				u, ok = tr.Complete(now)
				check("complete", u, ok)
				pos = dur
			}
		}
	}
}
