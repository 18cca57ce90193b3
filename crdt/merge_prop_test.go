package crdt_test

// Property tests of the merge laws (STYLE.md conventions 6–7): every merge in
// package crdt is a semilattice join (commutative, associative, idempotent),
// and merging any permutation of any multiset of deltas gives what the model
// "max over all writes" says.
//
// Reproducing a failure: rapid prints the seed and a fail file, e.g.
//
//	go test ./crdt -run 'TestCursorModel$' -rapid.seed=1234
//	go test ./crdt -run 'TestCursorModel$' -rapid.failfile=testdata/rapid/...
//
// and replays fail files under testdata/rapid automatically. More cases:
// -rapid.checks=10000 (or RAPID_CHECKS); fewer: -short.

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"pgregory.net/rapid"

	"github.com/playhead/playhead/crdt"
)

// defaultRapidChecks is the number of cases each property runs unless
// -rapid.checks or RAPID_CHECKS says otherwise. The generators draw from tiny
// ranges, so this many cases cover the interesting ties many times over, and
// the whole package still runs in a few seconds under -race.
const defaultRapidChecks = 1000

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := os.Getenv("RAPID_CHECKS") != ""
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.checks" })
	if !explicit {
		if err := flag.Set("rapid.checks", fmt.Sprint(defaultRapidChecks)); err != nil {
			fmt.Fprintln(os.Stderr, "crdt tests:", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// ---------------------------------------------------------------------------
// Generators. They draw from small ranges so that ties and collisions (equal
// versions carrying different content) happen often. The laws must hold for
// any values, so these generators do not enforce Seq >= Epoch; the model tests
// below build realistic writes through Update instead.

func genHLC(max uint64) *rapid.Generator[crdt.HLC] {
	return rapid.Map(rapid.Uint64Range(0, max), func(v uint64) crdt.HLC { return crdt.HLC(v) })
}

func genVersion() *rapid.Generator[crdt.Version] {
	return rapid.Custom(func(t *rapid.T) crdt.Version {
		if rapid.IntRange(0, 4).Draw(t, "zeroVersion") == 0 {
			return crdt.Version{}
		}
		return crdt.Version{
			Epoch:   genHLC(2).Draw(t, "epoch"),
			Seq:     genHLC(2).Draw(t, "seq"),
			Session: rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "session"),
		}
	})
}

func genMeta() *rapid.Generator[crdt.Meta] {
	return rapid.Custom(func(t *rapid.T) crdt.Meta {
		if rapid.Bool().Draw(t, "noMeta") {
			return crdt.Meta{}
		}
		return crdt.Meta{Value: rapid.SampledFrom([]string{"x", "y"}).Draw(t, "metaValue"), Ver: genVersion().Draw(t, "metaVer")}
	})
}

func genCursor() *rapid.Generator[crdt.Cursor] {
	return rapid.Custom(func(t *rapid.T) crdt.Cursor {
		return crdt.Cursor{
			Video:      rapid.SampledFrom([]string{"v", ""}).Draw(t, "video"),
			PositionMs: rapid.Int64Range(0, 2).Draw(t, "pos"),
			DurationMs: rapid.Int64Range(1, 2).Draw(t, "dur"),
			State:      crdt.State(rapid.IntRange(0, 4).Draw(t, "state")),
			Version:    genVersion().Draw(t, "version"),
			Device:     rapid.SampledFrom([]string{"tv", "phone", ""}).Draw(t, "device"),
			UpdatedHLC: genHLC(2).Draw(t, "updated"),
			Title:      genMeta().Draw(t, "title"),
			SeriesID:   genMeta().Draw(t, "series"),
			NextVideo:  genMeta().Draw(t, "next"),
			ClearedAt:  genHLC(3).Draw(t, "clearedAt"),
		}
	})
}

func genEntry() *rapid.Generator[crdt.Entry] {
	return rapid.Custom(func(t *rapid.T) crdt.Entry {
		return crdt.Entry{
			Video:      rapid.SampledFrom([]string{"v", ""}).Draw(t, "video"),
			Session:    genVersion().Draw(t, "session"),
			StartedAt:  genHLC(3).Draw(t, "startedAt"),
			Rec:        genVersion().Draw(t, "rec"),
			Device:     rapid.SampledFrom([]string{"tv", "phone", ""}).Draw(t, "device"),
			LastAt:     genHLC(2).Draw(t, "lastAt"),
			PositionMs: rapid.Int64Range(0, 2).Draw(t, "pos"),
			DurationMs: rapid.Int64Range(0, 2).Draw(t, "dur"),
			Title:      genMeta().Draw(t, "title"),
			Deleted:    genVersion().Draw(t, "deleted"),
		}
	})
}

func genProfile() *rapid.Generator[crdt.Profile] {
	return rapid.Custom(func(t *rapid.T) crdt.Profile {
		return crdt.Profile{
			ClearedAt:     genHLC(3).Draw(t, "clearedAt"),
			HistoryPaused: rapid.Bool().Draw(t, "paused"),
			PausedAt:      genHLC(2).Draw(t, "pausedAt"),
		}
	})
}

// genRecordOf draws a record of the given kind; only the field Kind names is
// set, as the Record contract says.
func genRecordOf(kind crdt.Kind) *rapid.Generator[crdt.Record] {
	return rapid.Custom(func(t *rapid.T) crdt.Record {
		r := crdt.Record{Kind: kind}
		switch kind {
		case crdt.KindCursor:
			r.Cursor = genCursor().Draw(t, "cursor")
		case crdt.KindEntry:
			r.Entry = genEntry().Draw(t, "entry")
		case crdt.KindProfile:
			r.Profile = genProfile().Draw(t, "profile")
		case crdt.KindHide:
			r.Hide = crdt.Hide{At: genHLC(3).Draw(t, "hideAt")}
		}
		return r
	})
}

// Collisions: half the time, the second and third value copy the version
// registers of the first while keeping their own content, so the content
// tie-breaks are exercised on every run.

func cursorLike(a, b crdt.Cursor) crdt.Cursor {
	b.Version, b.Title.Ver = a.Version, a.Title.Ver
	return b
}

func entryLike(a, b crdt.Entry) crdt.Entry {
	b.Rec, b.Session, b.Deleted, b.Title.Ver = a.Rec, a.Session, a.Deleted, a.Title.Ver
	return b
}

func profileLike(a, b crdt.Profile) crdt.Profile {
	b.PausedAt = a.PausedAt
	return b
}

func recordLike(a, b crdt.Record) crdt.Record {
	b.Cursor = cursorLike(a.Cursor, b.Cursor)
	b.Entry = entryLike(a.Entry, b.Entry)
	b.Profile = profileLike(a.Profile, b.Profile)
	return b
}

func drawThree[T any](t *rapid.T, gen *rapid.Generator[T], like func(a, b T) T) (a, b, c T) {
	a, b, c = gen.Draw(t, "a"), gen.Draw(t, "b"), gen.Draw(t, "c")
	if rapid.Bool().Draw(t, "bCollides") {
		b = like(a, b)
	}
	if rapid.Bool().Draw(t, "cCollides") {
		c = like(a, c)
	}
	return a, b, c
}

// checkLaws checks that merge is a semilattice join on a, b, c.
func checkLaws[T comparable](t *rapid.T, a, b, c T, merge func(x, y T) T) {
	if ab, ba := merge(a, b), merge(b, a); ab != ba {
		t.Fatalf("not commutative:\n a   =%+v\n b   =%+v\n a⊔b=%+v\n b⊔a=%+v", a, b, ab, ba)
	}
	if l, r := merge(merge(a, b), c), merge(a, merge(b, c)); l != r {
		t.Fatalf("not associative:\n a=%+v\n b=%+v\n c=%+v\n (a⊔b)⊔c=%+v\n a⊔(b⊔c)=%+v", a, b, c, l, r)
	}
	if aa := merge(a, a); aa != a {
		t.Fatalf("not idempotent:\n a  =%+v\n a⊔a=%+v", a, aa)
	}
}

func TestMergeCursorLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawThree(t, genCursor(), cursorLike)
		checkLaws(t, a, b, c, crdt.MergeCursor)
		// A join selects, it does not invent: the position part is one
		// input's (the larger version's), each metadata field is one
		// input's (the larger register's), the deletion register the max.
		// (Video is the record's key, filled in from whichever side has it.)
		m := crdt.MergeCursor(a, b)
		keyless := func(c crdt.Cursor) cursorPointT { p := cursorPoint(c); p.Video = ""; return p }
		if p := keyless(m); p != keyless(a) && p != keyless(b) {
			t.Fatalf("position part mixed from both inputs: %+v", p)
		}
		if m.Video == "" && (a.Video != "" || b.Video != "") {
			t.Fatalf("key lost: %q ⊔ %q = %q", a.Video, b.Video, m.Video)
		}
		if m.Version != crdt.MaxVersion(a.Version, b.Version) {
			t.Fatalf("version %+v, want max of %+v and %+v", m.Version, a.Version, b.Version)
		}
		for i, f := range metaFields {
			if got, x, y := f(m), f(a), f(b); got != x && got != y || got.Ver.Less(x.Ver) || got.Ver.Less(y.Ver) {
				t.Fatalf("meta field %d: %+v from %+v and %+v", i, got, x, y)
			}
		}
		if m.ClearedAt != max(a.ClearedAt, b.ClearedAt) {
			t.Fatalf("ClearedAt %v from %v and %v", m.ClearedAt, a.ClearedAt, b.ClearedAt)
		}
	})
}

func TestMergeEntryLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawThree(t, genEntry(), entryLike)
		checkLaws(t, a, b, c, crdt.MergeEntry)
		m := crdt.MergeEntry(a, b)
		if p := entryPoint(m); p != entryPoint(a) && p != entryPoint(b) {
			t.Fatalf("recorded point mixed from both inputs: %+v", p)
		}
		if m.Rec != crdt.MaxVersion(a.Rec, b.Rec) || m.Session != crdt.MaxVersion(a.Session, b.Session) ||
			m.Deleted != crdt.MaxVersion(a.Deleted, b.Deleted) {
			t.Fatalf("registers of %+v ⊔ %+v = %+v", a, b, m)
		}
		if m.StartedAt != minNonZero(a.StartedAt, b.StartedAt) {
			t.Fatalf("StartedAt %v from %v and %v", m.StartedAt, a.StartedAt, b.StartedAt)
		}
	})
}

func TestMergeProfileLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := drawThree(t, genProfile(), profileLike)
		checkLaws(t, a, b, c, crdt.MergeProfile)
	})
}

func TestMergeRecordLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		kind := rapid.SampledFrom([]crdt.Kind{crdt.KindProfile, crdt.KindCursor, crdt.KindEntry, crdt.KindHide}).Draw(t, "kind")
		a, b, c := drawThree(t, genRecordOf(kind), recordLike)
		checkLaws(t, a, b, c, crdt.MergeRecord)
		// MergeRecord is the typed merge of the field Kind names.
		m := crdt.MergeRecord(a, b)
		want := crdt.Record{Kind: kind}
		switch kind {
		case crdt.KindCursor:
			want.Cursor = crdt.MergeCursor(a.Cursor, b.Cursor)
		case crdt.KindEntry:
			want.Entry = crdt.MergeEntry(a.Entry, b.Entry)
		case crdt.KindProfile:
			want.Profile = crdt.MergeProfile(a.Profile, b.Profile)
		case crdt.KindHide:
			want.Hide = crdt.MergeHide(a.Hide, b.Hide)
		}
		if m != want {
			t.Fatalf("MergeRecord %+v, want %+v", m, want)
		}
	})
}

func TestMergeRecordPanicsOnKindMismatch(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b crdt.Kind
	}{
		{"cursor with entry", crdt.KindCursor, crdt.KindEntry},
		{"profile with cursor", crdt.KindProfile, crdt.KindCursor},
		{"unknown kind", crdt.Kind(9), crdt.Kind(9)},
		{"zero kind", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("merging records of different or unknown kinds must panic")
				}
			}()
			crdt.MergeRecord(crdt.Record{Kind: c.a}, crdt.Record{Kind: c.b})
		})
	}
}

// ---------------------------------------------------------------------------
// Model tests.

// cursorPointT is the position part of a cursor: everything the winning write
// decides on its own.
type cursorPointT struct {
	Video      string
	PositionMs int64
	DurationMs int64
	State      crdt.State
	Version    crdt.Version
	Device     string
	UpdatedHLC crdt.HLC
}

func cursorPoint(c crdt.Cursor) cursorPointT {
	return cursorPointT{c.Video, c.PositionMs, c.DurationMs, c.State, c.Version, c.Device, c.UpdatedHLC}
}

var metaFields = []func(crdt.Cursor) crdt.Meta{
	func(c crdt.Cursor) crdt.Meta { return c.Title },
	func(c crdt.Cursor) crdt.Meta { return c.SeriesID },
	func(c crdt.Cursor) crdt.Meta { return c.NextVideo },
}

// entryPointT is the recorded point of an entry.
type entryPointT struct {
	Rec        crdt.Version
	Device     string
	LastAt     crdt.HLC
	PositionMs int64
	DurationMs int64
}

func entryPoint(e crdt.Entry) entryPointT {
	return entryPointT{e.Rec, e.Device, e.LastAt, e.PositionMs, e.DurationMs}
}

func minNonZero(a, b crdt.HLC) crdt.HLC {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// drawDelivery returns the order in which a replica receives n deltas: each
// at least once, some several times, in a random permutation.
func drawDelivery(t *rapid.T, n int) []int {
	order := indices(n)
	if n > 0 {
		order = append(order, rapid.SliceOfN(rapid.IntRange(0, n-1), 0, 2*n).Draw(t, "duplicates")...)
	}
	return rapid.Permutation(order).Draw(t, "delivery")
}

func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// drawWrite draws one realistic device write of video "v": a version that
// satisfies Seq >= Epoch, from one of a few sessions, with small values so
// that versions are often equal in epoch or seq.
func drawWrite(t *rapid.T, sessions []string) (crdt.Update, crdt.Version) {
	sess := rapid.SampledFrom(sessions).Draw(t, "session")
	epoch := crdt.HLC(rapid.Uint64Range(1, 4).Draw(t, "epoch"))
	v := crdt.Version{Epoch: epoch, Seq: epoch + crdt.HLC(rapid.Uint64Range(0, 3).Draw(t, "dseq")), Session: sess}
	meta := func(label string) string {
		return rapid.SampledFrom([]string{"", "", label + "1", label + "2"}).Draw(t, label)
	}
	dur := rapid.Int64Range(1, 100).Draw(t, "duration")
	u := crdt.Update{
		Video:      "v",
		Device:     "dev-" + sess,
		Session:    sess,
		PositionMs: rapid.Int64Range(0, dur).Draw(t, "position"),
		DurationMs: dur,
		State:      crdt.State(rapid.IntRange(1, 4).Draw(t, "state")),
		Title:      meta("title"),
		SeriesID:   meta("series"),
		NextVideo:  meta("next"),
	}
	return u, v
}

// TestCursorModel: devices write a random set of updates (a version names one
// write: a repeated version is the same write delivered again), plus per-video
// deletions; a replica receives the deltas in any order with any duplication.
// The merged cursor must be the model's — the position part of the write with
// the largest version; per metadata field, the non-empty value written by the
// largest version that carried one; ClearedAt the largest deletion — and its
// registers never decrease along the way. Replicas that split the deltas
// between them and then merge each other's state converge on the same value.
func TestCursorModel(t *testing.T) {
	pol := crdt.DefaultPolicy()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 10).Draw(t, "writes")
		written := map[crdt.Version]bool{}
		var deltas []crdt.Cursor
		var best crdt.Cursor
		var metas [3]crdt.Meta
		for i := 0; i < n; i++ {
			u, v := drawWrite(t, []string{"tv", "phone", "web"})
			if written[v] {
				continue // a device never reuses a version for different content
			}
			written[v] = true
			d := u.CursorDelta(v, genHLC(20).Draw(t, "updatedHLC"))
			deltas = append(deltas, d)
			if best.Version.Less(v) {
				best = d
			}
			for j, value := range []string{u.Title, u.SeriesID, u.NextVideo} {
				if value != "" && (metas[j].Value == "" || metas[j].Ver.Less(v)) {
					metas[j] = crdt.Meta{Value: value, Ver: v}
				}
			}
		}
		var videoClear crdt.HLC
		for i := rapid.IntRange(0, 2).Draw(t, "videoClears"); i > 0; i-- {
			at := genHLC(8).Draw(t, "videoClearAt")
			videoClear = max(videoClear, at)
			deltas = append(deltas, crdt.Cursor{Video: "v", ClearedAt: at})
		}
		profile := crdt.Profile{ClearedAt: genHLC(8).Draw(t, "profileClearAt")}

		var acc crdt.Cursor
		for _, i := range drawDelivery(t, len(deltas)) {
			next := crdt.MergeCursor(acc, deltas[i])
			if next.Version.Less(acc.Version) || next.ClearedAt < acc.ClearedAt {
				t.Fatalf("register decreased merging %+v:\n before %+v\n after  %+v", deltas[i], acc, next)
			}
			for j, f := range metaFields {
				if f(next).Ver.Less(f(acc).Ver) {
					t.Fatalf("meta field %d decreased: %+v → %+v", j, f(acc), f(next))
				}
			}
			acc = next
		}
		checkCursorModel(t, "accumulator", acc, best, metas, videoClear)
		if live, want := acc.Live(profile, pol, 0), best.Version.Seq > max(videoClear, profile.ClearedAt); live != want {
			t.Fatalf("Live %v, model says %v (winner seq %v, video clear %v, profile clear %v)",
				live, want, best.Version.Seq, videoClear, profile.ClearedAt)
		}

		// Replicas: each delta goes to at least one of three replicas (any
		// order, any duplication); then replicas exchange their states.
		replicas := make([]crdt.Cursor, 3)
		for _, i := range drawDelivery(t, len(deltas)) {
			r := rapid.IntRange(0, 2).Draw(t, "replica")
			replicas[r] = crdt.MergeCursor(replicas[r], deltas[i])
		}
		var converged crdt.Cursor
		for _, r := range drawDelivery(t, len(replicas)) {
			converged = crdt.MergeCursor(converged, replicas[r])
		}
		if converged != acc {
			t.Fatalf("replicas converged on\n %+v\nthe single accumulator on\n %+v", converged, acc)
		}
	})
}

func checkCursorModel(t *rapid.T, what string, got, best crdt.Cursor, metas [3]crdt.Meta, clear crdt.HLC) {
	if cursorPoint(got) != cursorPoint(best) {
		t.Fatalf("%s: position part\n %+v\nmodel (largest version) says\n %+v", what, cursorPoint(got), cursorPoint(best))
	}
	for j, f := range metaFields {
		if f(got) != metas[j] {
			t.Fatalf("%s: meta field %d is %+v, model says %+v", what, j, f(got), metas[j])
		}
	}
	if got.ClearedAt != clear {
		t.Fatalf("%s: ClearedAt %v, model says %v", what, got.ClearedAt, clear)
	}
}

// TestCursorVersionCollisions: a misbehaving device reuses versions for
// different content. Whatever the order, replicas still converge, and the
// result is not invented: the position part is one actual write with the
// largest version, and each metadata field one actually written.
func TestCursorVersionCollisions(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(t, "writes")
		deltas := make([]crdt.Cursor, n)
		var top crdt.Version
		for i := range deltas {
			u, _ := drawWrite(t, []string{"a"})
			v := crdt.Version{Epoch: 1, Seq: genHLC(2).Draw(t, "seq") + 1, Session: "a"} // 2 versions only
			deltas[i] = u.CursorDelta(v, genHLC(1).Draw(t, "updated"))
			top = crdt.MaxVersion(top, v)
		}
		merge := func(order []int) crdt.Cursor {
			var acc crdt.Cursor
			for _, i := range order {
				acc = crdt.MergeCursor(acc, deltas[i])
			}
			return acc
		}
		one, two := merge(drawDelivery(t, n)), merge(drawDelivery(t, n))
		if one != two {
			t.Fatalf("two delivery orders diverged:\n %+v\n %+v", one, two)
		}
		if one.Version != top {
			t.Fatalf("version %+v, want %+v", one.Version, top)
		}
		pointOK := false
		metaOK := [3]bool{}
		for _, d := range deltas {
			pointOK = pointOK || cursorPoint(d) == cursorPoint(one)
			for j, f := range metaFields {
				metaOK[j] = metaOK[j] || f(d) == f(one)
			}
		}
		if !pointOK {
			t.Fatalf("position part %+v is not any device's write", cursorPoint(one))
		}
		for j, ok := range metaOK {
			if !ok && metaFields[j](one) != (crdt.Meta{}) {
				t.Fatalf("meta field %d %+v was never written", j, metaFields[j](one))
			}
		}
	})
}

// TestEntryModel: the writes of one viewing session (some recorded, some made
// while history was paused), tombstones taken from replicas' partial views,
// in any order with duplication. Session is the max version, StartedAt the
// min non-zero epoch, the recorded point the one of the max recorded version,
// Title the non-empty value of the largest recorded version that carried one,
// Deleted the max tombstone; the entry is visible iff Rec > Deleted and Rec is
// not cleared. Registers never move backwards.
func TestEntryModel(t *testing.T) {
	pol := crdt.DefaultPolicy()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 10).Draw(t, "writes")
		written := map[crdt.Version]bool{}
		var writes, deltas []crdt.Entry
		var session, rec, deleted crdt.Version
		var best crdt.Entry
		var title crdt.Meta
		var started crdt.HLC
		for i := 0; i < n; i++ {
			u, v := drawWrite(t, []string{"s"})
			if written[v] {
				continue
			}
			written[v] = true
			record := rapid.IntRange(0, 3).Draw(t, "historyPaused") != 0
			d := u.EntryDelta(v, genHLC(20).Draw(t, "updatedHLC"), record)
			writes = append(writes, d)
			session = crdt.MaxVersion(session, v)
			started = minNonZero(started, v.Epoch)
			if record {
				if rec.Less(v) {
					rec, best = v, d
				}
				if u.Title != "" && (title.Value == "" || title.Ver.Less(v)) {
					title = crdt.Meta{Value: u.Title, Ver: v}
				}
			}
		}
		deltas = append(deltas, writes...)
		// "Delete this entry" as some replica saw it: the tombstone of the
		// merge of a subset of the writes.
		for k := rapid.IntRange(0, 2).Draw(t, "tombstones"); k > 0; k-- {
			var view crdt.Entry
			for i, w := range writes {
				if rapid.Bool().Draw(t, fmt.Sprint("seen", i)) {
					view = crdt.MergeEntry(view, w)
				}
			}
			deltas = append(deltas, view.Tombstone())
			deleted = crdt.MaxVersion(deleted, view.Rec)
		}
		profile := crdt.Profile{ClearedAt: genHLC(8).Draw(t, "profileClearAt")}
		videoClear := genHLC(8).Draw(t, "videoClearAt")

		var acc crdt.Entry
		for _, i := range drawDelivery(t, len(deltas)) {
			next := crdt.MergeEntry(acc, deltas[i])
			if next.Session.Less(acc.Session) || next.Rec.Less(acc.Rec) || next.Deleted.Less(acc.Deleted) ||
				next.Title.Ver.Less(acc.Title.Ver) || acc.StartedAt != 0 && (next.StartedAt == 0 || next.StartedAt > acc.StartedAt) {
				t.Fatalf("register moved backwards merging %+v:\n before %+v\n after  %+v", deltas[i], acc, next)
			}
			acc = next
		}
		if acc.Video != "v" || acc.Session != session || acc.StartedAt != started || acc.Deleted != deleted {
			t.Fatalf("merged %+v\nmodel: video v, session %+v, started %v, deleted %+v", acc, session, started, deleted)
		}
		if entryPoint(acc) != entryPoint(best) {
			t.Fatalf("recorded point %+v, model says %+v", entryPoint(acc), entryPoint(best))
		}
		if acc.Title != title {
			t.Fatalf("title %+v, model says %+v", acc.Title, title)
		}
		want := !rec.IsZero() && deleted.Less(rec) && rec.Seq > max(profile.ClearedAt, videoClear)
		if got := acc.Visible(profile, videoClear, pol, 0); got != want {
			t.Fatalf("Visible %v, model says %v (rec %+v, deleted %+v, clears %v/%v)",
				got, want, rec, deleted, profile.ClearedAt, videoClear)
		}
	})
}

// TestProfileModel: "delete all history" and "pause history" writes in any
// order with duplication. ClearedAt is the max clear; the pause register holds
// the value written at the largest PausedAt, and on an exact tie paused wins.
func TestProfileModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(t, "writes")
		deltas := make([]crdt.Profile, n)
		var want crdt.Profile
		for i := range deltas {
			if rapid.Bool().Draw(t, "isClear") {
				deltas[i] = crdt.Profile{ClearedAt: genHLC(6).Draw(t, "clearAt") + 1}
				want.ClearedAt = max(want.ClearedAt, deltas[i].ClearedAt)
				continue
			}
			d := crdt.Profile{HistoryPaused: rapid.Bool().Draw(t, "paused"), PausedAt: genHLC(3).Draw(t, "pausedAt") + 1}
			deltas[i] = d
			switch {
			case d.PausedAt > want.PausedAt:
				want.PausedAt, want.HistoryPaused = d.PausedAt, d.HistoryPaused
			case d.PausedAt == want.PausedAt:
				want.HistoryPaused = want.HistoryPaused || d.HistoryPaused
			}
		}
		var acc crdt.Profile
		for _, i := range drawDelivery(t, n) {
			next := crdt.MergeProfile(acc, deltas[i])
			if next.ClearedAt < acc.ClearedAt || next.PausedAt < acc.PausedAt {
				t.Fatalf("register decreased: %+v → %+v", acc, next)
			}
			acc = next
		}
		if acc != want {
			t.Fatalf("merged %+v, model says %+v", acc, want)
		}
	})
}
