package gossip

import (
	"fmt"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// view is what the request rules read: a node's stored records. A
// storage.Store is one; the Core's bufstore.Store (stored records plus what this
// cycle wrote) is another.
type view interface {
	Get(k storage.Key) (crdt.Record, bool, error)
	ScanProfile(p uint16, account, profile string, kind crdt.Kind, fn func(storage.Key, crdt.Record) error) error
}

// change is what one write or delete produced: the records to store, and
// the events to push once they are durable.
type change struct {
	puts   []storage.Put
	events []Event
}

// rules are the request rules of a node, the one write path of playhead:
// how a device's update is validated and stamped with the node's HLC, how
// it and every delete merge (crdt) into the stored records, what a read
// shows, and which events a change pushes. They read through a view and
// return what to store; they never write, lock or read a clock.
//
// Both coordinators run them: Local (one node, which owns every partition)
// under a profile's stripe lock, and the cluster Core on its single
// goroutine over its buffered store. The caller reads physical time once
// per request and passes it in as nowMs.
//
// The HLC is the node's own: it is safe for concurrent use, so the callers
// may also issue and observe timestamps outside a request.
type rules struct {
	hlc  *crdt.Clock
	opts LocalOptions
}

func newRules(opts LocalOptions) rules {
	return rules{hlc: crdt.NewClock(opts.MaxClockSkew), opts: opts}
}

func (r rules) key(ref Ref, kind crdt.Kind, id string) storage.Key {
	p := ring.PartitionOf(ref.Account, ref.Profile, r.opts.Partitions)
	return storage.Key{Partition: p, Account: ref.Account, Profile: ref.Profile, Kind: kind, ID: id}
}

// get reads one record; an absent record is the zero state of its kind.
func (r rules) get(v view, k storage.Key) (crdt.Record, error) {
	rec, ok, err := v.Get(k)
	if err != nil {
		return crdt.Record{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !ok {
		rec = crdt.Record{Kind: k.Kind}
		if k.Kind == crdt.KindCursor {
			rec.Cursor.Video = k.ID
		}
	}
	return rec, nil
}

// checkPut validates a batch before anything is read: every update is well
// formed, and its timestamps are within the allowed clock skew.
func (r rules) checkPut(ups []crdt.Update, nowMs int64) error {
	for i, u := range ups {
		if err := u.Validate(); err != nil {
			return &UpdateError{Index: i, Video: u.Video, Err: err}
		}
		for _, h := range [2]crdt.HLC{u.Epoch, u.Seq} {
			if err := r.hlc.Check(h, nowMs); err != nil {
				return &UpdateError{Index: i, Video: u.Video, Err: err}
			}
		}
	}
	return nil
}

// put stamps and merges a checked batch: the result of each update, and the
// records and events of the change. The caller holds the profile (no other
// write of it may run between put and storing its change).
func (r rules) put(v view, ref Ref, ups []crdt.Update, nowMs int64) ([]WriteResult, change, error) {
	profRec, err := r.get(v, r.key(ref, crdt.KindProfile, ""))
	if err != nil {
		return nil, change{}, err
	}
	prof := profRec.Profile
	pol := r.opts.Policy

	// Working state of the records this batch touches: stored state merged
	// with the batch so far, and what was stored before it. Each update
	// touches two records (its cursor and history entry), so works never
	// grows past its capacity and pointers into it stay valid; small
	// batches find their records by a linear scan, larger ones by a map.
	type work struct {
		key         storage.Key
		stored, rec crdt.Record
	}
	works := make([]work, 0, 2*len(ups))
	var index map[storage.Key]int
	if len(ups) > 4 {
		index = make(map[storage.Key]int, 2*len(ups))
	}
	load := func(k storage.Key) (*work, error) {
		if index != nil {
			if i, ok := index[k]; ok {
				return &works[i], nil
			}
		} else {
			for i := range works {
				if works[i].key == k {
					return &works[i], nil
				}
			}
		}
		rec, err := r.get(v, k)
		if err != nil {
			return nil, err
		}
		works = append(works, work{key: k, stored: rec, rec: rec})
		if index != nil {
			index[k] = len(works) - 1
		}
		return &works[len(works)-1], nil
	}

	results := make([]WriteResult, len(ups))
	var ch change
	for i, u := range ups {
		cw, err := load(r.key(ref, crdt.KindCursor, u.Video))
		if err != nil {
			return nil, change{}, err
		}
		ew, err := load(r.key(ref, crdt.KindEntry, crdt.EntryID(u.Video, u.Session)))
		if err != nil {
			return nil, change{}, err
		}
		// The HLC receive rule: the stamp is above the device's timestamps
		// and everything this node issued before.
		var now crdt.HLC
		if remote := max(u.Epoch, u.Seq); remote != 0 {
			if now, err = r.hlc.Update(remote, nowMs); err != nil {
				return nil, change{}, err // checked above; only a racing clock could get here
			}
		} else {
			now = r.hlc.Now(nowMs)
		}
		if err := u.CheckSession(ew.rec.Entry.Session); err != nil {
			return nil, change{}, &UpdateError{Index: i, Video: u.Video, Err: err}
		}
		stamp := crdt.Stamp(u, ew.rec.Entry.Session, now)
		delta := u.CursorDelta(stamp, now)

		old := cw.rec.Cursor
		merged := crdt.MergeCursor(old, delta)
		cur := merged.Shown(prof)
		live := cur.Live(prof, pol, nowMs)
		applied := crdt.Advances(old, delta) && live
		results[i] = WriteResult{Applied: applied, Cursor: old.Shown(prof), Found: old.Live(prof, pol, nowMs)}
		if !applied {
			switch {
			case delta.Version.Seq <= max(old.ClearedAt, prof.ClearedAt):
				results[i].Refused = RefusedDeleted
			case pol.Expired(delta, nowMs):
				results[i].Refused = RefusedExpired
			default:
				results[i].Refused = RefusedStale
			}
			// A refused write (stale, or at or below a deletion) changes
			// nothing: not the cursor, not its session's history entry,
			// not the session's memory (docs/API.md "Reporting a
			// position").
			continue
		}
		cw.rec.Cursor = merged
		ew.rec.Entry = crdt.MergeEntry(ew.rec.Entry, u.EntryDelta(stamp, now, !prof.HistoryPaused))
		results[i] = WriteResult{Applied: true, Cursor: cur, Found: true}
		{
			ch.events = append(ch.events, Event{Ref: ref, Type: EventCursor, Cursor: cur, Video: u.Video})
			if old.Live(prof, pol, nowMs) && crdt.Takeover(old, cur) {
				ch.events = append(ch.events, Event{Ref: ref, Type: EventTakeover, Cursor: cur, Superseded: old, Video: u.Video})
			}
		}
	}

	ch.puts = make([]storage.Put, 0, len(works))
	for i := range works {
		if w := &works[i]; w.rec != w.stored {
			ch.puts = append(ch.puts, storage.Put{Key: w.key, Record: w.rec})
		}
	}
	return results, ch, nil
}

// cursor is the visible cursor of one video; ok false if none.
func (r rules) cursor(v view, ref Ref, video string, nowMs int64) (crdt.Cursor, bool, error) {
	prof, err := r.get(v, r.key(ref, crdt.KindProfile, ""))
	if err != nil {
		return crdt.Cursor{}, false, err
	}
	rec, err := r.get(v, r.key(ref, crdt.KindCursor, video))
	if err != nil {
		return crdt.Cursor{}, false, err
	}
	if !rec.Cursor.Live(prof.Profile, r.opts.Policy, nowMs) {
		return crdt.Cursor{}, false, nil
	}
	return rec.Cursor.Shown(prof.Profile), true, nil
}

// scan reads the profile record and every cursor (and entry, if entries is
// set) of a profile.
func (r rules) scan(v view, ref Ref, entries bool) (prof crdt.Profile, cursors []crdt.Cursor, items []HistoryItem, err error) {
	p := ring.PartitionOf(ref.Account, ref.Profile, r.opts.Partitions)
	err = v.ScanProfile(p, ref.Account, ref.Profile, 0, func(k storage.Key, rec crdt.Record) error {
		switch rec.Kind {
		case crdt.KindProfile:
			prof = rec.Profile
		case crdt.KindCursor:
			c := rec.Cursor
			c.Video = k.ID
			cursors = append(cursors, c)
		case crdt.KindEntry:
			if entries {
				items = append(items, HistoryItem{ID: k.ID, Entry: rec.Entry})
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return prof, cursors, items, err
}

// cursors is every visible cursor of the profile, in no set order.
func (r rules) cursors(v view, ref Ref, nowMs int64) ([]crdt.Cursor, error) {
	prof, all, _, err := r.scan(v, ref, false)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if c.Live(prof, r.opts.Policy, nowMs) {
			out = append(out, c.Shown(prof))
		}
	}
	return out, nil
}

// history is every visible history entry, in no set order.
func (r rules) history(v view, ref Ref, nowMs int64) ([]HistoryItem, error) {
	prof, cursors, items, err := r.scan(v, ref, true)
	if err != nil {
		return nil, err
	}
	videoCleared := make(map[string]crdt.HLC, len(cursors))
	for _, c := range cursors {
		if c.ClearedAt != 0 {
			videoCleared[c.Video] = c.ClearedAt
		}
	}
	out := items[:0]
	for _, it := range items {
		if vc := videoCleared[it.Entry.Video]; it.Entry.Visible(prof, vc, r.opts.Policy, nowMs) {
			it.Entry = it.Entry.Shown(prof, vc)
			out = append(out, it)
		}
	}
	return out, nil
}

// profile is the profile registers.
func (r rules) profile(v view, ref Ref) (crdt.Profile, error) {
	rec, err := r.get(v, r.key(ref, crdt.KindProfile, ""))
	return rec.Profile, err
}

// deleteEntry tombstones one visible history entry; ErrNotFound if there
// is no visible entry with that id.
func (r rules) deleteEntry(v view, ref Ref, id string, nowMs int64) (change, error) {
	prof, err := r.get(v, r.key(ref, crdt.KindProfile, ""))
	if err != nil {
		return change{}, err
	}
	ek := r.key(ref, crdt.KindEntry, id)
	rec, err := r.get(v, ek)
	if err != nil {
		return change{}, err
	}
	e := rec.Entry
	if e.Rec.IsZero() {
		return change{}, ErrNotFound
	}
	cur, err := r.get(v, r.key(ref, crdt.KindCursor, e.Video))
	if err != nil {
		return change{}, err
	}
	if !e.Visible(prof.Profile, cur.Cursor.ClearedAt, r.opts.Policy, nowMs) {
		return change{}, ErrNotFound
	}
	rec.Entry = crdt.MergeEntry(e, e.Tombstone())
	return change{
		puts:   []storage.Put{{Key: ek, Record: rec}},
		events: []Event{{Ref: ref, Type: EventCleared, Video: rec.Entry.Video, Entry: id}},
	}, nil
}

// deleteVideo deletes every history entry of the video and its cursor.
func (r rules) deleteVideo(v view, ref Ref, video string, nowMs int64) (change, error) {
	ck := r.key(ref, crdt.KindCursor, video)
	rec, err := r.get(v, ck)
	if err != nil {
		return change{}, err
	}
	// The deletion covers at least every write stored here: a write whose
	// device clock ran ahead (within max_clock_skew) must not outlive a
	// delete asked for after it (found by the simulator).
	at := max(r.hlc.Now(nowMs), rec.Cursor.Version.Seq)
	rec.Cursor = crdt.MergeCursor(rec.Cursor, crdt.Cursor{Video: video, ClearedAt: at})
	return change{
		puts:   []storage.Put{{Key: ck, Record: rec}},
		events: []Event{{Ref: ref, Type: EventCleared, Video: video}},
	}, nil
}

// deleteAll deletes the profile's whole history and every cursor.
func (r rules) deleteAll(v view, ref Ref, nowMs int64) (change, error) {
	pk := r.key(ref, crdt.KindProfile, "")
	rec, err := r.get(v, pk)
	if err != nil {
		return change{}, err
	}
	// As for one video: the deletion covers every write stored here, also
	// one stamped by a device clock running ahead.
	at := r.hlc.Now(nowMs)
	err = v.ScanProfile(pk.Partition, ref.Account, ref.Profile, crdt.KindCursor, func(_ storage.Key, c crdt.Record) error {
		at = max(at, c.Cursor.Version.Seq)
		return nil
	})
	if err != nil {
		return change{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	rec.Profile = crdt.MergeProfile(rec.Profile, crdt.Profile{ClearedAt: at})
	return change{
		puts:   []storage.Put{{Key: pk, Record: rec}},
		events: []Event{{Ref: ref, Type: EventCleared}},
	}, nil
}

// setPaused writes the history_paused register.
func (r rules) setPaused(v view, ref Ref, paused bool, nowMs int64) (crdt.Profile, change, error) {
	pk := r.key(ref, crdt.KindProfile, "")
	rec, err := r.get(v, pk)
	if err != nil {
		return crdt.Profile{}, change{}, err
	}
	rec.Profile = crdt.MergeProfile(rec.Profile, crdt.Profile{HistoryPaused: paused, PausedAt: r.hlc.Now(nowMs)})
	return rec.Profile, change{puts: []storage.Put{{Key: pk, Record: rec}}}, nil
}
