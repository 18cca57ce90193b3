package clustersim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// The retention checkers (RunOptions.Purge; DESIGN.md §4 "Retention in a
// cluster"). After the liveness phase and the usual checks, the purge
// phase:
//
//  1. takes a replica away (crashed, or cut off by a partition) and, on a
//     cluster of five or more, a second one that stays away for three years;
//  2. deletes: every third profile that was written deletes all its
//     history, every third deletes one video;
//  3. runs a sweep period, then checks deleted-content-gone on every
//     replica that took the deletes;
//  4. moves the clock past cursor_ttl, a day at a time with the cluster
//     running in between, runs a sweep period, checks expired-purged;
//  5. brings the first replica back (down for a month) and, while
//     anti-entropy, hints and its own sweep run, checks no-resurrection:
//     no replica stores a key the others had purged; then every checker on
//     every replica;
//  6. takes it away again, moves the clock past history_ttl (3 years by
//     default: the real numbers, a week at a time), brings both back and
//     checks everything again.
//
// The checkers judge every stored record, hints included (storage.HintKey),
// with the deletion registers as the cluster knows them (the largest of any
// replica's profile cleared_at and video cleared_at):
//
//   - deleted-content-gone: no record holds the position, duration,
//     device or title of a deleted write;
//   - expired-purged: every record is what crdt.Retain leaves of it at the
//     replica's clock less one sweep period (purged if purgeable, expired
//     content erased): nothing past its TTL survives a full pass;
//   - no-resurrection: during a returning replica's catch-up, no other
//     replica stores a key it had purged, and at the end no replica holds
//     one (nothing is written meanwhile, so every key is an old one).

// Leap moves virtual time forward by ms at once, as if the cluster had been
// idle (no device writes) that long: timers due meanwhile fire once, at the
// new time, and messages in flight arrive late.
func (s *Sim) Leap(ms int64) {
	if ms > 0 {
		s.now += ms
	}
}

// purgeRun is the state of the purge phase.
type purgeRun struct {
	r       *runner
	rng     *rand.Rand
	pol     crdt.Policy
	passMs  int64           // one full sweep pass, plus anti-entropy's margin
	away    map[int]bool    // replicas taken away (1-based), not judged
	cutAway map[int]bool    // of those, the ones cut off rather than crashed
	deletes int             // deletes acknowledged
	judged  map[string]bool // checkers that judged at least one record
	leaped  int64           // ms skipped by Leap
	failed  map[string]bool // checkers that failed (the run keeps 20 violations in all)
}

func (p *purgeRun) violate(check, format string, args ...any) {
	p.failed[check] = true
	p.r.violate(check, format, args...)
}

func (r *runner) purgePhase() (leapedMs int64) {
	s := r.s
	p := &purgeRun{r: r, rng: rand.New(rand.NewPCG(r.o.Seed, 0x9a76e)), away: map[int]bool{}, cutAway: map[int]bool{}, judged: map[string]bool{}, failed: map[string]bool{}}
	p.pol = s.Node(1).Core.Policy()
	cfg := s.opts.Core
	cfg.EnsureDefaults()
	if s.opts.Mutate != nil {
		s.opts.Mutate(&cfg)
	}
	if cfg.SweepInterval > 0 {
		passes := (int64(s.opts.Partitions) + int64(cfg.SweepBudget) - 1) / int64(cfg.SweepBudget)
		p.passMs = passes*cfg.SweepInterval.Milliseconds() + 2*cfg.AEInterval.Milliseconds()
	} else {
		p.passMs = 10_000 // no sweep (the checkers' own tests): judge after as long as one would take
	}
	// The replicas taken away: ring members while at least three remain
	// (writes need two owners), else a node outside the ring (it may still
	// hold data from before a ring change).
	var members, others []int
	for _, j := range p.rng.Perm(len(s.Nodes())) {
		if s.Table().Load()[s.Node(j+1).ID] > 0 {
			members = append(members, j+1)
		} else {
			others = append(others, j+1)
		}
	}
	month, long := 0, 0
	switch {
	case len(members) >= 3:
		month = members[0]
		if len(members) >= 5 {
			long = members[1]
		}
	case len(others) > 0:
		month = others[0]
	}
	if month != 0 {
		p.takeAway(month)
	}
	if long != 0 {
		p.takeAway(long)
	}
	// Deletes, through a member that is there.
	via := members[len(members)-1]
	var refs []gossip.Ref
	seen := map[gossip.Ref]bool{}
	for _, k := range sortedWriteKeys(r.writes) {
		if !seen[k.ref] {
			seen[k.ref] = true
			refs = append(refs, k.ref)
		}
	}
	for i, ref := range refs {
		var op gossip.Op
		switch i % 3 {
		case 0:
			op = gossip.Op{Kind: gossip.OpDeleteAll, Ref: ref}
		case 1:
			op = gossip.Op{Kind: gossip.OpDeleteVideo, Ref: ref, Video: fmt.Sprintf("video%d", p.rng.IntN(simVideos))}
		default:
			continue
		}
		if c := s.Do(via, op, 5_000); c.Err == nil {
			p.deletes++
		}
	}
	s.RunFor(p.passMs)
	p.checkAll("after the deletes")
	// A month, a day at a time.
	p.advance(p.pol.CursorTTL.Milliseconds()+24*time.Hour.Milliseconds(), 24*time.Hour.Milliseconds())
	p.checkAll("past cursor_ttl")
	if month != 0 {
		p.bringBack(month)
		p.checkAll("a replica back after a month")
		p.takeAway(month)
	}
	// Three years (history_ttl), a week at a time, with the first replica
	// away again; then everyone back.
	p.advance(p.pol.HistoryTTL.Milliseconds()+p.pol.CursorTTL.Milliseconds()+24*time.Hour.Milliseconds(), 7*24*time.Hour.Milliseconds())
	p.checkAll("past history_ttl")
	if long != 0 {
		p.bringBack(long)
	}
	if month != 0 {
		p.bringBack(month)
	}
	p.checkAll("every replica back after history_ttl")
	if p.deletes == 0 {
		p.violate("deleted-content-gone", "no delete was acknowledged: the checker judged nothing")
	}
	for _, name := range []string{"deleted-content-gone", "expired-purged", "no-resurrection"} {
		if !p.judged[name] {
			p.violate(name, "judged no record")
		}
		state := "ok"
		if p.failed[name] {
			state = "FAILED"
		}
		r.rep.Checks = append(r.rep.Checks, name+": "+state)
	}
	return p.leaped
}

// takeAway crashes replica i, or (one time in three) cuts it off.
func (p *purgeRun) takeAway(i int) {
	s := p.r.s
	if p.rng.IntN(3) == 0 {
		var others []int
		for j := range s.Nodes() {
			if j+1 != i {
				others = append(others, j+1)
			}
		}
		s.Partition([]int{i}, others)
		p.cutAway[i] = true
	} else if s.Node(i).Up {
		s.Crash(i)
	}
	s.SetAlive(i, false)
	p.away[i] = true
}

// advance moves the clock forward by total, step at a time, running the
// cluster for a few seconds after each step, then one sweep period.
func (p *purgeRun) advance(total, step int64) {
	s := p.r.s
	for done := int64(0); done < total; done += step {
		s.Leap(min(step, total-done))
		p.leaped += min(step, total-done)
		s.RunFor(2_000)
	}
	s.RunFor(p.passMs)
}

// bringBack returns replica i and runs until the replicas converge,
// checking no-resurrection on the others all along.
func (p *purgeRun) bringBack(i int) {
	s := p.r.s
	before := p.keys(func(j int) bool { return !p.away[j] })
	if p.cutAway[i] {
		s.Heal()
		for j := range p.cutAway {
			if j != i && p.away[j] {
				p.takeAway(j) // still away: cut it off again
			}
		}
	} else {
		s.Restart(i)
	}
	delete(p.away, i)
	delete(p.cutAway, i)
	s.SetAlive(i, true)
	deadline := s.Now() + 3*p.passMs + 60_000
	for s.Now() < deadline {
		s.RunFor(500)
		p.noResurrection(before, func(j int) bool { return !p.away[j] && j != i }, "while replica "+string(s.Node(i).ID)+" catches up")
		if ok, _ := s.Converged(); ok && s.Now() > deadline-60_000 {
			break
		}
	}
	s.RunFor(p.passMs) // the returning replica's own sweep
	p.noResurrection(before, func(j int) bool { return !p.away[j] }, "after replica "+string(s.Node(i).ID)+" caught up")
}

// keys returns every data key stored on the replicas in.
func (p *purgeRun) keys(in func(int) bool) map[storage.Key]bool {
	out := map[storage.Key]bool{}
	p.each(in, func(_ int, k storage.Key, _ crdt.Record, hint bool) {
		if !hint {
			out[k] = true
		}
	})
	return out
}

func (p *purgeRun) noResurrection(before map[storage.Key]bool, in func(int) bool, when string) {
	p.each(in, func(j int, k storage.Key, r crdt.Record, hint bool) {
		if hint {
			return
		}
		p.judged["no-resurrection"] = true
		if !before[k] {
			p.violate("no-resurrection", "%s %s: %s holds %v %s/%s %q, purged everywhere before", when, time.UnixMilli(p.r.s.Now()).UTC().Format("2006-01-02"),
				p.r.s.Node(j).ID, k.Kind, k.Account, k.Profile, k.ID)
		}
	})
}

// each calls fn for every record stored on the replicas in (data
// partitions and hints), in a fixed order.
func (p *purgeRun) each(in func(int) bool, fn func(node int, k storage.Key, r crdt.Record, hint bool)) {
	s := p.r.s
	for j, nd := range s.Nodes() {
		if !in(j+1) || !nd.Up {
			continue
		}
		for part := 0; part < s.opts.Partitions; part++ {
			nd.Store.ScanPartition(uint16(part), func(k storage.Key, r crdt.Record) error {
				fn(j+1, k, r, false)
				return nil
			})
		}
		nd.Store.ScanPartition(storage.HintPartition, func(k storage.Key, r crdt.Record) error {
			k.Partition = ring.PartitionOf(k.Account, k.Profile, s.opts.Partitions)
			fn(j+1, k, r, true)
			return nil
		})
	}
}

// checkAll runs deleted-content-gone and expired-purged over every replica
// that is there.
func (p *purgeRun) checkAll(when string) {
	s := p.r.s
	in := func(j int) bool { return !p.away[j] }
	// The deletion registers as the cluster knows them.
	profCleared := map[gossip.Ref]crdt.HLC{}
	videoCleared := map[writeKey]crdt.HLC{}
	p.each(func(int) bool { return true }, func(_ int, k storage.Key, r crdt.Record, _ bool) {
		ref := gossip.Ref{Account: k.Account, Profile: k.Profile}
		switch r.Kind {
		case crdt.KindProfile:
			profCleared[ref] = max(profCleared[ref], r.Profile.ClearedAt)
		case crdt.KindCursor:
			wk := writeKey{ref, k.ID}
			videoCleared[wk] = max(videoCleared[wk], r.Cursor.ClearedAt)
		}
	})
	p.each(in, func(j int, k storage.Key, r crdt.Record, hint bool) {
		ref := gossip.Ref{Account: k.Account, Profile: k.Profile}
		where := fmt.Sprintf("%s: %s holds %v %s/%s %q", when, s.Node(j).ID, r.Kind, k.Account, k.Profile, k.ID)
		if hint {
			where += " (a hint)"
		}
		prof := crdt.Profile{ClearedAt: profCleared[ref]}
		var vc crdt.HLC
		switch r.Kind {
		case crdt.KindCursor:
			vc = videoCleared[writeKey{ref, k.ID}]
		case crdt.KindEntry:
			vc = videoCleared[writeKey{ref, r.Entry.Video}]
		}
		if what := deletedContent(r, max(prof.ClearedAt, vc)); what != "" {
			p.violate("deleted-content-gone", "%s with the %s of a deleted write", where, what)
		}
		if r.Kind == crdt.KindCursor || r.Kind == crdt.KindEntry {
			p.judged["deleted-content-gone"] = true
		}
		// Judged at the replica's clock one sweep period ago: what was
		// purgeable or held expired content then has met a full pass.
		at := s.clockOf(s.Node(j).ID) - p.passMs
		if r.Kind == crdt.KindProfile {
			return
		}
		p.judged["expired-purged"] = true
		if r.Kind == crdt.KindCursor {
			r.Cursor.Video = ""
		}
		out, ok := crdt.Retain(r, prof, vc, p.pol, at)
		switch {
		case !ok:
			p.violate("expired-purged", "%s, purgeable since before %s", where, time.UnixMilli(at).UTC().Format(time.DateTime))
		case out != r && deletedContent(r, max(prof.ClearedAt, vc)) == "":
			p.violate("expired-purged", "%s with expired content a full sweep period later: %+v", where, r)
		}
	})
}

// deletedContent names what r holds of a write deleted at or below clear
// (or by an entry's tombstone), "" if nothing.
func deletedContent(r crdt.Record, clear crdt.HLC) string {
	switch r.Kind {
	case crdt.KindCursor:
		c := r.Cursor
		clear = max(clear, c.ClearedAt)
		if !c.Version.IsZero() && c.Version.Seq <= clear && (c.PositionMs != 0 || c.DurationMs != 0 || c.Device != "" || c.UpdatedHLC != 0) {
			return "position"
		}
		for _, m := range []crdt.Meta{c.Title, c.SeriesID, c.NextVideo} {
			if m.Value != "" && m.Ver.Seq <= clear {
				return "title"
			}
		}
	case crdt.KindEntry:
		e := r.Entry
		gone := func(v crdt.Version) bool { return !v.IsZero() && (v.Seq <= clear || !e.Deleted.Less(v)) }
		if gone(e.Rec) && (e.PositionMs != 0 || e.DurationMs != 0 || e.Device != "" || e.LastAt != 0) {
			return "history point"
		}
		if e.Title.Value != "" && gone(e.Title.Ver) {
			return "title"
		}
	}
	return ""
}
