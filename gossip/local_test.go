package gossip

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// testClock is a manual clock.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) NowMs() int64            { return c.ms.Load() }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// recorder is a Notifier that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Notify(evs []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
}

func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

const t0 = 1_780_000_000_000 // 2026-05-28, ms

type fixture struct {
	t     *testing.T
	clock *testClock
	rec   *recorder
	store *storage.Mem
	l     *Local
	ref   Ref
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &testClock{}, rec: &recorder{}, store: storage.NewMem(), ref: Ref{"acct", "prof"}}
	f.clock.ms.Store(t0)
	l, err := NewLocal(f.store, f.clock, f.rec, LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	return f
}

func upd(video, device, session string, pos int64) crdt.Update {
	return crdt.Update{Video: video, Device: device, Session: session, PositionMs: pos, DurationMs: 3_600_000, State: crdt.StatePlaying}
}

func (f *fixture) put(u crdt.Update) WriteResult {
	f.t.Helper()
	res, err := f.l.Put(context.Background(), f.ref, []crdt.Update{u})
	if err != nil {
		f.t.Fatalf("put %+v: %v", u, err)
	}
	return res[0]
}

func (f *fixture) cursor(video string) (crdt.Cursor, bool) {
	f.t.Helper()
	c, ok, err := f.l.Cursor(context.Background(), f.ref, video)
	if err != nil {
		f.t.Fatal(err)
	}
	return c, ok
}

func (f *fixture) history() []HistoryItem {
	f.t.Helper()
	h, err := f.l.History(context.Background(), f.ref)
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

func TestNodeStampingNewAndKnownSession(t *testing.T) {
	f := newFixture(t)
	r1 := f.put(upd("v", "tv", "s1", 600_000))
	if !r1.Applied || r1.Cursor.Version.Epoch != r1.Cursor.Version.Seq {
		t.Fatalf("new session must get epoch = seq = now: %+v", r1)
	}
	f.clock.advance(10 * time.Second)
	r2 := f.put(upd("v", "tv", "s1", 610_000))
	if !r2.Applied || r2.Cursor.Version.Epoch != r1.Cursor.Version.Epoch {
		t.Fatalf("known session must keep its epoch: %+v then %+v", r1.Cursor.Version, r2.Cursor.Version)
	}
	if r2.Cursor.Version.Seq <= r1.Cursor.Version.Seq {
		t.Fatalf("seq must advance")
	}
}

func TestSupersededSessionCannotDragBack(t *testing.T) {
	f := newFixture(t)
	f.put(upd("v", "tv", "s-tv", 600_000))
	f.clock.advance(time.Minute)
	phone := f.put(upd("v", "phone", "s-phone", 900_000))
	if !phone.Applied {
		t.Fatal("new session must take over")
	}
	evs := f.rec.take()
	var takeover *Event
	for i := range evs {
		if evs[i].Type == EventTakeover {
			takeover = &evs[i]
		}
	}
	if takeover == nil || takeover.Superseded.Version.Session != "s-tv" || takeover.Cursor.Device != "phone" {
		t.Fatalf("want takeover of s-tv by phone, got %+v", evs)
	}
	// The TV keeps reporting (node-stamped) later in wall time: its session
	// keeps its old epoch, so it stays stale.
	f.clock.advance(time.Minute)
	tv := f.put(upd("v", "tv", "s-tv", 620_000))
	if tv.Applied || tv.Cursor.PositionMs != 900_000 || !tv.Found {
		t.Fatalf("superseded session must not win: %+v", tv)
	}
	if c, _ := f.cursor("v"); c.PositionMs != 900_000 {
		t.Fatalf("cursor dragged back to %d", c.PositionMs)
	}
	for _, ev := range f.rec.take() {
		if ev.Type == EventCursor {
			t.Fatalf("stale write must not push: %+v", ev)
		}
	}
}

func TestSeekBackwardsInNewEpochHonoured(t *testing.T) {
	f := newFixture(t)
	now := f.l.Now()
	u := upd("v", "tv", "s1", 2_000_000)
	u.Epoch, u.Seq = now, now
	f.put(u)
	seek := upd("v", "tv", "s1", 100_000)
	seek.Epoch, seek.Seq = now+10, now+10
	if r := f.put(seek); !r.Applied || r.Cursor.PositionMs != 100_000 {
		t.Fatalf("seek backwards in a new epoch must win: %+v", r)
	}
	// An update of the old epoch delivered late is stale.
	late := upd("v", "tv", "s1", 2_100_000)
	late.Epoch, late.Seq = now, now+20
	if r := f.put(late); r.Applied {
		t.Fatalf("late update of an older epoch must be stale: %+v", r)
	}
}

func TestBatchValidationIsAllOrNothing(t *testing.T) {
	f := newFixture(t)
	good := upd("a", "tv", "s1", 1000)
	bad := upd("b", "tv", "s1", 5000)
	bad.DurationMs = 10 // position past duration
	_, err := f.l.Put(context.Background(), f.ref, []crdt.Update{good, bad})
	if !errors.Is(err, crdt.ErrBadPosition) {
		t.Fatalf("want ErrBadPosition, got %v", err)
	}
	if _, ok := f.cursor("a"); ok {
		t.Fatal("a rejected batch must write nothing")
	}
	far := upd("a", "tv", "s1", 1000)
	far.Epoch = crdt.NewHLC(t0+61_000, 0)
	far.Seq = far.Epoch
	if _, err := f.l.Put(context.Background(), f.ref, []crdt.Update{far}); !errors.Is(err, crdt.ErrClockSkew) {
		t.Fatalf("want ErrClockSkew, got %v", err)
	}
	if _, ok := f.cursor("a"); ok {
		t.Fatal("a refused far-future write must write nothing")
	}
	if f.l.Now().Physical() > t0+1000 {
		t.Fatal("a refused timestamp must not move the node clock")
	}
	near := far
	near.Epoch = crdt.NewHLC(t0+59_000, 0)
	near.Seq = near.Epoch
	if r := f.put(near); !r.Applied {
		t.Fatal("a timestamp within the skew bound must be accepted")
	}
}

func TestOfflineReplayMergesInTrueOrder(t *testing.T) {
	f := newFixture(t)
	var ups []crdt.Update
	base := crdt.NewHLC(t0-3_600_000, 0)
	for i := 0; i < 20; i++ {
		u := upd("v", "phone", "s1", int64(i)*60_000)
		u.Epoch, u.Seq = base, base+crdt.HLC(i)
		ups = append(ups, u)
	}
	// Deliver in reverse, with duplicates.
	var rev []crdt.Update
	for i := len(ups) - 1; i >= 0; i-- {
		rev = append(rev, ups[i], ups[i])
	}
	res, err := f.l.Put(context.Background(), f.ref, rev)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Applied {
		t.Fatal("first (largest) replayed update must apply")
	}
	for i, r := range res[1:] {
		if r.Applied {
			t.Fatalf("result %d: older replayed update must be stale", i+1)
		}
	}
	if c, _ := f.cursor("v"); c.PositionMs != 19*60_000 {
		t.Fatalf("want the largest version's position, got %d", c.PositionMs)
	}
}

func TestDeletionSticksAgainstReplays(t *testing.T) {
	f := newFixture(t)
	mk := func(video, session string, pos int64) crdt.Update {
		u := upd(video, "phone", session, pos)
		u.Epoch = f.l.Now()
		u.Seq = u.Epoch
		return u
	}
	a1, b1, c1 := mk("a", "sa", 600_000), mk("b", "sb", 600_000), mk("c", "sc", 600_000)
	for _, u := range []crdt.Update{a1, b1, c1} {
		f.put(u)
	}
	if n := len(f.history()); n != 3 {
		t.Fatalf("want 3 entries, got %d", n)
	}
	// Delete one entry, then replay its update: still gone.
	if err := f.l.DeleteEntry(context.Background(), f.ref, crdt.EntryID("a", "sa")); err != nil {
		t.Fatal(err)
	}
	if err := f.l.DeleteEntry(context.Background(), f.ref, crdt.EntryID("a", "sa")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: want ErrNotFound, got %v", err)
	}
	f.put(a1)
	for _, it := range f.history() {
		if it.Entry.Video == "a" {
			t.Fatal("deleted entry resurrected by a replay")
		}
	}
	// Delete video b, replay: cursor and entry stay gone.
	if err := f.l.DeleteVideo(context.Background(), f.ref, "b"); err != nil {
		t.Fatal(err)
	}
	if r := f.put(b1); r.Applied || r.Found {
		t.Fatalf("replay after video delete must not apply: %+v", r)
	}
	if _, ok := f.cursor("b"); ok {
		t.Fatal("deleted cursor resurrected")
	}
	// Delete all, replay c and a: nothing comes back.
	if err := f.l.DeleteAll(context.Background(), f.ref); err != nil {
		t.Fatal(err)
	}
	f.put(c1)
	f.put(a1)
	if h := f.history(); len(h) != 0 {
		t.Fatalf("history must stay empty, got %+v", h)
	}
	if cs, _ := f.l.Cursors(context.Background(), f.ref); len(cs) != 0 {
		t.Fatalf("cursors must stay empty, got %+v", cs)
	}
	// A genuinely newer write shows again.
	if r := f.put(mk("c", "sc2", 700_000)); !r.Applied {
		t.Fatalf("a newer write after the delete must apply: %+v", r)
	}
	if len(f.history()) != 1 {
		t.Fatal("newer write must be recorded in history")
	}
}

func TestPausedHistoryRecordsNothingButResumeWorks(t *testing.T) {
	f := newFixture(t)
	if _, err := f.l.SetHistoryPaused(context.Background(), f.ref, true); err != nil {
		t.Fatal(err)
	}
	f.put(upd("v", "tv", "s1", 600_000))
	if h := f.history(); len(h) != 0 {
		t.Fatalf("paused: no entries, got %+v", h)
	}
	if c, ok := f.cursor("v"); !ok || c.PositionMs != 600_000 {
		t.Fatal("paused: resume position must still be kept")
	}
	// The session's epoch is remembered while paused.
	rec, _, _ := f.store.Get(f.l.rules.key(f.ref, crdt.KindEntry, crdt.EntryID("v", "s1")))
	if rec.Entry.Session.IsZero() || !rec.Entry.Rec.IsZero() || rec.Entry.PositionMs != 0 {
		t.Fatalf("paused: only session memory may be stored, got %+v", rec.Entry)
	}
	f.clock.advance(time.Second)
	if _, err := f.l.SetHistoryPaused(context.Background(), f.ref, false); err != nil {
		t.Fatal(err)
	}
	f.put(upd("v", "tv", "s1", 620_000))
	if h := f.history(); len(h) != 1 || h[0].Entry.PositionMs != 620_000 {
		t.Fatalf("unpaused: entry recorded again, got %+v", h)
	}
}

func TestExpiryAndSweep(t *testing.T) {
	f := newFixture(t)
	f.put(upd("old", "tv", "s1", 600_000))
	f.clock.advance(31 * 24 * time.Hour)
	f.put(upd("new", "tv", "s2", 600_000))
	if _, ok := f.cursor("old"); ok {
		t.Fatal("cursor untouched past cursor_ttl must be absent")
	}
	if _, ok := f.cursor("new"); !ok {
		t.Fatal("fresh cursor must be present")
	}
	if len(f.history()) != 2 {
		t.Fatal("history entries outlive cursors")
	}
	// Sweep: the old cursor record goes; the entry stays (history_ttl).
	if _, err := f.l.Sweep(f.clock.NowMs(), ring.DefaultPartitions); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := f.store.Get(f.l.rules.key(f.ref, crdt.KindCursor, "old")); ok {
		t.Fatal("sweep must purge the expired cursor record")
	}
	if len(f.history()) != 2 {
		t.Fatal("sweep must not change visible history")
	}
	f.clock.advance(3*365*24*time.Hour + time.Hour)
	if len(f.history()) != 0 {
		t.Fatal("entries past history_ttl must be absent")
	}
	if n, err := f.l.Sweep(f.clock.NowMs(), ring.DefaultPartitions); err != nil || n == 0 {
		t.Fatalf("sweep must purge expired entries: n=%d err=%v", n, err)
	}
	left := 0
	f.store.ScanPartition(f.l.Partition(f.ref), func(k storage.Key, r crdt.Record) error {
		if r.Kind != crdt.KindProfile {
			left++
		}
		return nil
	})
	if left != 0 {
		t.Fatalf("%d records left after everything expired", left)
	}
}

func TestSweepScrubsClearedContentWithoutChangingReads(t *testing.T) {
	f := newFixture(t)
	u := upd("v", "tv", "s1", 600_000)
	u.Title = "secret title"
	u.Epoch = f.l.Now() // client-stamped, so it can be replayed as is
	u.Seq = u.Epoch
	f.put(u)
	f.put(upd("w", "tv", "s2", 600_000))
	if err := f.l.DeleteVideo(context.Background(), f.ref, "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Sweep(f.clock.NowMs(), ring.DefaultPartitions); err != nil {
		t.Fatal(err)
	}
	f.store.ScanPartition(f.l.Partition(f.ref), func(k storage.Key, r crdt.Record) error {
		switch {
		case r.Kind == crdt.KindCursor && k.ID == "v" && (r.Cursor.PositionMs != 0 || r.Cursor.Title.Value != ""):
			t.Errorf("cleared cursor content not scrubbed: %+v", r.Cursor)
		case r.Kind == crdt.KindEntry && r.Entry.Video == "v" && (r.Entry.PositionMs != 0 || r.Entry.Title.Value != ""):
			t.Errorf("cleared entry content not scrubbed: %+v", r.Entry)
		case r.Kind == crdt.KindCursor && k.ID == "w" && r.Cursor.PositionMs != 600_000:
			t.Errorf("live cursor must be untouched: %+v", r.Cursor)
		}
		return nil
	})
	// The version memory survives: a replay of the old write is still stale.
	if r := f.put(u); r.Applied {
		t.Fatal("replay after scrub must stay deleted")
	}
	if h := f.history(); len(h) != 1 || h[0].Entry.Video != "w" {
		t.Fatalf("history after scrub: %+v", h)
	}
}

func TestConcurrentWritersOneProfile(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				u := upd(fmt.Sprintf("v%d", i%3), fmt.Sprintf("d%d", g), fmt.Sprintf("s%d", g), int64(i*1000))
				if _, err := f.l.Put(context.Background(), f.ref, []crdt.Update{u}); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	// Events of the profile leave in commit order: updated_hlc strictly
	// increases across cursor events.
	var last crdt.HLC
	for _, ev := range f.rec.take() {
		if ev.Type != EventCursor {
			continue
		}
		if ev.Cursor.UpdatedHLC <= last {
			t.Fatalf("events out of commit order: %v after %v", ev.Cursor.UpdatedHLC, last)
		}
		last = ev.Cursor.UpdatedHLC
	}
}

// TestStripeHashIsFNV1a: the stripe of a profile is FNV-1a-32 of
// account ‖ 0 ‖ profile, as hash/fnv computes it.
func TestStripeHashIsFNV1a(t *testing.T) {
	for _, ref := range []Ref{{}, {"a", "b"}, {"acct-0123456789", "p1"}, {"\xff\x00", "é"}} {
		h := fnv.New32a()
		h.Write([]byte(ref.Account))
		h.Write([]byte{0})
		h.Write([]byte(ref.Profile))
		if got, want := stripeHash(ref), h.Sum32(); got != want {
			t.Errorf("stripeHash(%q) = %#x, want %#x", ref, got, want)
		}
	}
}
