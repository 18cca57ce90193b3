package crdt_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/playhead/playhead/crdt"
)

const (
	minuteMs = int64(60_000)
	dayMs    = 24 * 60 * minuteMs
	yearMs   = 365 * dayMs
)

// TestPolicyThresholds: DESIGN.md §3 with the default policy — below 5 %
// nothing to resume; at 5 % resumable; at or past 90 %, or state completed,
// watched (resume point 0); shorter than 5 min never resumable.
func TestPolicyThresholds(t *testing.T) {
	p := crdt.DefaultPolicy()
	for _, c := range []struct {
		name                 string
		pos, dur             int64
		state                crdt.State
		resumable, completed bool
		resumeMs             int64
	}{
		{"at the start", 0, 100 * minuteMs, crdt.StatePlaying, false, false, 0},
		{"just below 5%", 5*minuteMs - 1, 100 * minuteMs, crdt.StatePaused, false, false, 0},
		{"exactly 5%", 5 * minuteMs, 100 * minuteMs, crdt.StatePaused, true, false, 5 * minuteMs},
		{"5% of a 1-min video", 3_000, minuteMs, crdt.StatePaused, false, false, 0}, // 1 min: too short
		{"exactly 5% of 7 min", 21_000, 7 * minuteMs, crdt.StatePaused, true, false, 21_000},
		{"middle, stopped", 50 * minuteMs, 100 * minuteMs, crdt.StateStopped, true, false, 50 * minuteMs},
		{"middle, playing", 50 * minuteMs, 100 * minuteMs, crdt.StatePlaying, true, false, 50 * minuteMs},
		{"just below 90%", 90*minuteMs - 1, 100 * minuteMs, crdt.StatePlaying, true, false, 90*minuteMs - 1},
		{"exactly 90%", 90 * minuteMs, 100 * minuteMs, crdt.StatePaused, false, true, 0},
		{"at the end", 100 * minuteMs, 100 * minuteMs, crdt.StatePaused, false, true, 0},
		{"state completed early", 10 * minuteMs, 100 * minuteMs, crdt.StateCompleted, false, true, 0},
		{"state completed at 0", 0, 100 * minuteMs, crdt.StateCompleted, false, true, 0},
		{"1 ms shorter than 5 min", 2 * minuteMs, 5*minuteMs - 1, crdt.StatePaused, false, false, 0},
		{"exactly 5 min long", 2 * minuteMs, 5 * minuteMs, crdt.StatePaused, true, false, 2 * minuteMs},
		{"short and finished", 4 * minuteMs, 4 * minuteMs, crdt.StatePaused, false, true, 0},
		{"scrubbed (no duration)", 0, 0, crdt.StateUnknown, false, false, 0},
	} {
		cur := crdt.Cursor{PositionMs: c.pos, DurationMs: c.dur, State: c.state}
		r, done, at := p.Resumable(cur), p.Completed(cur), p.ResumeMs(cur)
		if r != c.resumable || done != c.completed || at != c.resumeMs {
			t.Errorf("%s (%d/%d %v): resumable %v completed %v resume %d; want %v %v %d",
				c.name, c.pos, c.dur, c.state, r, done, at, c.resumable, c.completed, c.resumeMs)
		}
	}
}

// TestPolicyThresholdsMatchIntegerModel compares the floating-point
// thresholds with exact integer arithmetic, for the default and a custom
// policy, across durations up to 10 hours.
func TestPolicyThresholdsMatchIntegerModel(t *testing.T) {
	custom := crdt.Policy{MinResumePct: 12.5, MaxResumePct: 97.5, MinResumeDuration: time.Minute}
	custom.EnsureDefaults()
	for _, c := range []struct {
		name string
		pol  crdt.Policy
		// thresholds in tenths of a percent, duration in ms
		min10, max10, minDur int64
	}{
		{"default", crdt.DefaultPolicy(), 50, 900, 5 * minuteMs},
		{"custom", custom, 125, 975, minuteMs},
	} {
		t.Run(c.name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				dur := rapid.Int64Range(1, 600*minuteMs).Draw(t, "duration")
				// Half the time, land exactly on or next to a threshold.
				pos := rapid.Int64Range(0, dur).Draw(t, "position")
				if rapid.Bool().Draw(t, "nearThreshold") {
					th := rapid.SampledFrom([]int64{c.min10, c.max10}).Draw(t, "threshold")
					pos = min(dur, max(0, th*dur/1000+rapid.Int64Range(-1, 1).Draw(t, "nudge")))
				}
				state := crdt.State(rapid.IntRange(1, 4).Draw(t, "state"))
				cur := crdt.Cursor{PositionMs: pos, DurationMs: dur, State: state}

				completed := state == crdt.StateCompleted || 1000*pos >= c.max10*dur
				resumable := dur >= c.minDur && !completed && 1000*pos >= c.min10*dur
				resume := int64(0)
				if resumable {
					resume = pos
				}
				if c.pol.Completed(cur) != completed || c.pol.Resumable(cur) != resumable || c.pol.ResumeMs(cur) != resume {
					t.Fatalf("%d/%d %v: completed %v resumable %v resume %d; model %v %v %d", pos, dur, state,
						c.pol.Completed(cur), c.pol.Resumable(cur), c.pol.ResumeMs(cur), completed, resumable, resume)
				}
			})
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	want := crdt.Policy{
		MinResumePct:      5,
		MaxResumePct:      90,
		MinResumeDuration: 5 * time.Minute,
		CursorTTL:         30 * 24 * time.Hour,
		HistoryTTL:        3 * 365 * 24 * time.Hour,
	}
	if got := crdt.DefaultPolicy(); got != want {
		t.Fatalf("DefaultPolicy() = %+v, want %+v", got, want)
	}
	var zero crdt.Policy
	zero.EnsureDefaults()
	if zero != want {
		t.Fatalf("EnsureDefaults on zero = %+v", zero)
	}
	set := crdt.Policy{MinResumePct: 1, MaxResumePct: 99, MinResumeDuration: time.Second, CursorTTL: time.Hour, HistoryTTL: 2 * time.Hour}
	kept := set
	kept.EnsureDefaults()
	if kept != set {
		t.Fatalf("EnsureDefaults overwrote set fields: %+v", kept)
	}
	partial := crdt.Policy{MaxResumePct: 80, CursorTTL: 7 * 24 * time.Hour}
	partial.EnsureDefaults()
	if partial.MaxResumePct != 80 || partial.CursorTTL != 7*24*time.Hour || partial.MinResumePct != 5 || partial.HistoryTTL != want.HistoryTTL {
		t.Fatalf("partial EnsureDefaults = %+v", partial)
	}
	if err := crdt.DefaultPolicy().Validate(); err != nil {
		t.Fatalf("default policy invalid: %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		name    string
		edit    func(*crdt.Policy)
		mention string // empty: valid
	}{
		{"defaults", func(*crdt.Policy) {}, ""},
		{"min 0 is allowed", func(p *crdt.Policy) { p.MinResumePct = 0 }, ""},
		{"max 100 is allowed", func(p *crdt.Policy) { p.MaxResumePct = 100 }, ""},
		{"history ttl equal to cursor ttl", func(p *crdt.Policy) { p.HistoryTTL = p.CursorTTL }, ""},
		{"min resume duration 0", func(p *crdt.Policy) { p.MinResumeDuration = 0 }, ""},
		{"negative min", func(p *crdt.Policy) { p.MinResumePct = -1 }, "min_resume_pct must be in"},
		{"min 100", func(p *crdt.Policy) { p.MinResumePct = 100; p.MaxResumePct = 100 }, "min_resume_pct must be in"},
		{"max below min", func(p *crdt.Policy) { p.MaxResumePct = 3 }, "max_resume_pct must"},
		{"max equal to min", func(p *crdt.Policy) { p.MaxResumePct = p.MinResumePct }, "max_resume_pct must"},
		{"max above 100", func(p *crdt.Policy) { p.MaxResumePct = 100.5 }, "max_resume_pct must"},
		{"min NaN", func(p *crdt.Policy) { p.MinResumePct = math.NaN() }, "min_resume_pct must be in"},
		{"max NaN", func(p *crdt.Policy) { p.MaxResumePct = math.NaN() }, "max_resume_pct must"},
		{"max +Inf", func(p *crdt.Policy) { p.MaxResumePct = math.Inf(1) }, "max_resume_pct must"},
		{"min -Inf", func(p *crdt.Policy) { p.MinResumePct = math.Inf(-1) }, "min_resume_pct must be in"},
		{"negative min duration", func(p *crdt.Policy) { p.MinResumeDuration = -time.Second }, "min_resume_duration"},
		{"zero cursor ttl", func(p *crdt.Policy) { p.CursorTTL = 0 }, "cursor_ttl"},
		{"negative history ttl", func(p *crdt.Policy) { p.HistoryTTL = -time.Hour }, "history_ttl"},
		{"history ttl below cursor ttl", func(p *crdt.Policy) { p.HistoryTTL = p.CursorTTL - time.Millisecond }, "history_ttl must be at least cursor_ttl"},
	} {
		p := crdt.DefaultPolicy()
		c.edit(&p)
		err := p.Validate()
		switch {
		case c.mention == "" && err != nil:
			t.Errorf("%s: %+v refused: %v", c.name, p, err)
		case c.mention != "" && err == nil:
			t.Errorf("%s: %+v accepted", c.name, p)
		case err != nil && (!strings.HasPrefix(err.Error(), "crdt: policy: ") || !strings.Contains(err.Error(), c.mention)):
			t.Errorf("%s: error %q should start with \"crdt: policy: \" and name %q", c.name, err, c.mention)
		}
	}
}

// TestCursorExpiry: a cursor is absent once CursorTTL has passed since the
// physical time of its Seq — not of its Epoch, not of UpdatedHLC.
func TestCursorExpiry(t *testing.T) {
	p := crdt.DefaultPolicy()
	seq := crdt.NewHLC(100*dayMs, 42) // the logical part plays no role
	c := crdt.Cursor{
		Version:    crdt.Version{Epoch: crdt.NewHLC(dayMs, 0), Seq: seq, Session: "s"},
		PositionMs: 1, DurationMs: 10, State: crdt.StatePlaying,
		UpdatedHLC: crdt.NewHLC(dayMs, 0),
	}
	expires := 100*dayMs + 30*dayMs
	for _, at := range []struct {
		now  int64
		live bool
	}{{0, true}, {100 * dayMs, true}, {expires - 1, true}, {expires, true}, {expires + 1, false}, {expires + yearMs, false}} {
		if got := c.Live(crdt.Profile{}, p, at.now); got != at.live {
			t.Errorf("Live at seq+%d ms = %v, want %v", at.now-100*dayMs, got, at.live)
		}
	}
	short := p
	short.CursorTTL = time.Hour
	if !c.Live(crdt.Profile{}, short, 100*dayMs+3_600_000) || c.Live(crdt.Profile{}, short, 100*dayMs+3_600_001) {
		t.Error("a configured CursorTTL is not honoured")
	}
	if (crdt.Cursor{ClearedAt: 5}).Live(crdt.Profile{}, p, 0) {
		t.Error("a cursor that was never written (only a deletion register) is not live")
	}
}

// TestEntryExpiry: a history entry is absent once HistoryTTL has passed since
// the physical time of its recorded Seq.
func TestEntryExpiry(t *testing.T) {
	p := crdt.DefaultPolicy()
	rec := crdt.Version{Epoch: crdt.NewHLC(10*dayMs, 0), Seq: crdt.NewHLC(20*dayMs, 3), Session: "s"}
	e := crdt.Entry{Video: "v", Session: rec, StartedAt: rec.Epoch, Rec: rec, PositionMs: 1, DurationMs: 10}
	expires := 20*dayMs + 3*yearMs
	for _, at := range []struct {
		now     int64
		visible bool
	}{{0, true}, {20*dayMs + 31*dayMs, true}, {expires, true}, {expires + 1, false}} {
		if got := e.Visible(crdt.Profile{}, 0, p, at.now); got != at.visible {
			t.Errorf("Visible at rec+%d ms = %v, want %v", at.now-20*dayMs, got, at.visible)
		}
	}
	// Recording nothing (history paused) shows nothing.
	if (crdt.Entry{Video: "v", Session: rec, StartedAt: rec.Epoch}).Visible(crdt.Profile{}, 0, p, 0) {
		t.Error("an entry with only session memory is visible")
	}
}

// TestPurgeable: storage may drop a record only when nothing it holds can
// still matter: expired writes, and deletion registers kept as long as what
// they delete could have lived.
func TestPurgeable(t *testing.T) {
	p := crdt.DefaultPolicy()
	cursorTTL, historyTTL := p.CursorTTL.Milliseconds(), p.HistoryTTL.Milliseconds()
	v := crdt.Version{Epoch: crdt.NewHLC(10*dayMs, 0), Seq: crdt.NewHLC(10*dayMs, 0), Session: "s"}
	written := crdt.Cursor{Version: v, PositionMs: 5, DurationMs: 10, State: crdt.StatePaused}
	clearedLater := written
	clearedLater.ClearedAt = crdt.NewHLC(20*dayMs, 5)
	clearOnly := crdt.Cursor{Video: "v", ClearedAt: crdt.NewHLC(20*dayMs, 5)}
	clearedBefore := written
	clearedBefore.ClearedAt = crdt.NewHLC(5*dayMs, 0)

	tomb := crdt.Entry{Video: "v", Session: v, StartedAt: v.Epoch, Rec: v, PositionMs: 5, DurationMs: 10}.Tombstone()
	scrubbed := crdt.Entry{Video: "v", Session: v, StartedAt: v.Epoch, Deleted: v} // Rec moved into the tombstone
	newer := crdt.Version{Epoch: v.Epoch, Seq: crdt.NewHLC(50*dayMs, 0), Session: "s"}
	reshown := crdt.Entry{Video: "v", Session: newer, StartedAt: v.Epoch, Rec: newer, Deleted: v}
	sessionOnly := crdt.Entry{Video: "v", Session: newer, StartedAt: v.Epoch}

	for _, c := range []struct {
		name string
		rec  crdt.Record
		prof crdt.Profile
		// last is the last millisecond the record must be kept; it is
		// purgeable from last+1 on.
		last int64
	}{
		{"cursor: until its write expires", cursorRec(written), crdt.Profile{}, 10*dayMs + cursorTTL},
		{"cursor with a video deletion: until ClearedAt+HistoryTTL", cursorRec(clearedLater), crdt.Profile{}, 20*dayMs + historyTTL},
		{"deletion register alone: until ClearedAt+HistoryTTL", cursorRec(clearOnly), crdt.Profile{}, 20*dayMs + historyTTL},
		{"cursor whose write outlives its old deletion register", cursorRec(crdt.Cursor{
			Version: crdt.Version{Epoch: 1, Seq: crdt.NewHLC(yearMs*4, 0), Session: "s"}, ClearedAt: crdt.NewHLC(dayMs, 0),
		}), crdt.Profile{}, 4*yearMs + cursorTTL},
		{"cursor: a deletion register older than the write outlives it", cursorRec(clearedBefore), crdt.Profile{}, 5*dayMs + historyTTL},
		{"tombstone: until the deleted record would have expired", entryRec(tomb), crdt.Profile{}, 10*dayMs + historyTTL},
		{"scrubbed entry: tombstone and session memory", entryRec(scrubbed), crdt.Profile{}, 10*dayMs + historyTTL},
		{"re-shown entry: its newer point", entryRec(reshown), crdt.Profile{}, 50*dayMs + historyTTL},
		{"session memory only: until the session could no longer win", entryRec(sessionOnly), crdt.Profile{}, 50*dayMs + cursorTTL},
		{"entry wiped by the profile: only its session memory", entryRec(reshown), crdt.Profile{ClearedAt: crdt.NewHLC(60*dayMs, 0)}, 50*dayMs + cursorTTL},
		{"scrubbed entry wiped by the profile: only its session memory", entryRec(scrubbed), crdt.Profile{ClearedAt: crdt.NewHLC(60*dayMs, 0)}, 10*dayMs + cursorTTL},
	} {
		if c.rec.Purgeable(c.prof, p, c.last) {
			t.Errorf("%s: purgeable at %d, must be kept", c.name, c.last)
		}
		if !c.rec.Purgeable(c.prof, p, c.last+1) {
			t.Errorf("%s: still kept at %d", c.name, c.last+1)
		}
	}
	prof := crdt.Record{Kind: crdt.KindProfile, Profile: crdt.Profile{ClearedAt: 1}}
	if prof.Purgeable(crdt.Profile{}, p, 100*yearMs) {
		t.Error("profile registers are never purged")
	}
	if !cursorRec(crdt.Cursor{Video: "v"}).Purgeable(crdt.Profile{}, p, 0) {
		t.Error("an empty cursor record holds nothing worth keeping")
	}
	// The typed methods agree with the record-level one.
	if cursorRec(clearedLater).Purgeable(crdt.Profile{}, p, 20*dayMs+historyTTL+1) != clearedLater.Purgeable(p, 20*dayMs+historyTTL+1) ||
		entryRec(tomb).Purgeable(crdt.Profile{}, p, 10*dayMs+historyTTL) != tomb.Purgeable(p, 10*dayMs+historyTTL) {
		t.Error("Record.Purgeable disagrees with Cursor/Entry.Purgeable")
	}
}

func cursorRec(c crdt.Cursor) crdt.Record { return crdt.Record{Kind: crdt.KindCursor, Cursor: c} }
func entryRec(e crdt.Entry) crdt.Record   { return crdt.Record{Kind: crdt.KindEntry, Entry: e} }

func TestCompletionPct(t *testing.T) {
	for _, c := range []struct {
		pos, dur int64
		want     float64
	}{{0, 0, 0}, {0, 100, 0}, {1, 3, 33.3}, {2, 3, 66.7}, {999, 1000, 99.9}, {9995, 10000, 100}, {100, 100, 100}} {
		if got := (crdt.Entry{PositionMs: c.pos, DurationMs: c.dur}).CompletionPct(); got != c.want {
			t.Errorf("CompletionPct(%d/%d) = %v, want %v", c.pos, c.dur, got, c.want)
		}
	}
}
