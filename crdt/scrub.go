package crdt

// Scrub returns r with the content of deleted writes erased from storage
// while keeping every register that makes deletion stick and versions
// monotonic: a cursor keeps its Version and ClearedAt, an entry keeps its
// session memory and a tombstone at least as large as the erased point.
// videoClearedAt is the per-video register of an entry's video (0 for other
// kinds).
//
// Scrubbing never changes what a reader sees (Live, Visible) nor the result
// of any later merge as seen by a reader: a copy of the erased content that
// arrives later from a lagging replica merges back in still deleted, and the
// next sweep erases it again.
func Scrub(r Record, p Profile, videoClearedAt HLC) Record {
	switch r.Kind {
	case KindCursor:
		r.Cursor = scrubCursor(r.Cursor, p)
	case KindEntry:
		r.Entry = scrubEntry(r.Entry, p, videoClearedAt)
	}
	return r
}

func scrubCursor(c Cursor, p Profile) Cursor {
	// Metadata written by a deleted write goes whether or not a later write
	// made the cursor live again (Shown hides it from readers either way,
	// and storage must not keep a deleted title).
	clearAt := maxHLC(c.ClearedAt, p.ClearedAt)
	for _, m := range []*Meta{&c.Title, &c.SeriesID, &c.NextVideo} {
		if !m.Ver.IsZero() && m.Ver.Seq <= clearAt {
			*m = Meta{}
		}
	}
	if c.Version.IsZero() || !c.Deleted(p) {
		return c
	}
	c.PositionMs, c.DurationMs, c.State, c.Device, c.UpdatedHLC = 0, 0, StateUnknown, "", 0
	return c
}

func scrubEntry(e Entry, p Profile, videoClearedAt HLC) Entry {
	if e.Title != (Meta{}) && e.Shown(p, videoClearedAt).Title == (Meta{}) {
		e.Title = Meta{} // a deleted title, whatever the point (see Shown)
	}
	if e.Rec.IsZero() {
		return e
	}
	cleared := e.Rec.Seq <= maxHLC(p.ClearedAt, videoClearedAt)
	if !cleared && e.Deleted.Less(e.Rec) {
		return e
	}
	e.Deleted = MaxVersion(e.Deleted, e.Rec)
	e.Rec, e.Device, e.LastAt, e.PositionMs, e.DurationMs, e.Title = Version{}, "", 0, 0, 0, Meta{}
	return e
}

// Retain is the retention rule every replica's sweep applies to one stored
// record, and every replica applies to a record arriving from a peer (after
// merging it with its stored copy): ok false means the record is purgeable
// (Record.Purgeable) and must not be stored, else out is what to store —
// the record with the content of deleted writes erased (Scrub) and the
// content of expired writes erased too (a cursor past cursor_ttl keeps its
// Version and ClearedAt, an entry whose point is past history_ttl keeps its
// session memory and the point as its tombstone).
//
// It is a function of the record, the profile's registers, the video's
// deletion register and the time, nothing else, so replicas that agree on
// those agree on it; and because expiry only grows with time, a record a
// replica dropped stays dropped there: any copy that arrives later is at
// least as old, so it is refused on arrival. Like Scrub it changes nothing
// a reader sees: an expired write is invisible already.
func Retain(r Record, p Profile, videoClearedAt HLC, pol Policy, nowMs int64) (out Record, ok bool) {
	if r.Purgeable(p, pol, nowMs) {
		return Record{}, false
	}
	r = Scrub(r, p, videoClearedAt)
	switch r.Kind {
	case KindCursor:
		r.Cursor = scrubExpiredCursor(r.Cursor, pol, nowMs)
	case KindEntry:
		r.Entry = scrubExpiredEntry(r.Entry, pol, nowMs)
	}
	return r, true
}

func scrubExpiredCursor(c Cursor, pol Policy, nowMs int64) Cursor {
	if c.Version.IsZero() || !pol.cursorExpired(c, nowMs) {
		return c
	}
	c.PositionMs, c.DurationMs, c.State, c.Device, c.UpdatedHLC = 0, 0, StateUnknown, "", 0
	for _, m := range []*Meta{&c.Title, &c.SeriesID, &c.NextVideo} {
		if !m.Ver.IsZero() && m.Ver.Seq.Physical()+pol.CursorTTL.Milliseconds() < nowMs {
			*m = Meta{}
		}
	}
	return c
}

func scrubExpiredEntry(e Entry, pol Policy, nowMs int64) Entry {
	if t := e.Title.Ver; !t.IsZero() && pol.entryExpired(t, nowMs) {
		// A title past history_ttl: the video's deletion register that may
		// have deleted it is gone (it lives as long), so it must go too.
		e.Title = Meta{}
	}
	if e.Rec.IsZero() || !pol.entryExpired(e.Rec, nowMs) {
		return e
	}
	e.Deleted = MaxVersion(e.Deleted, e.Rec)
	e.Rec, e.Device, e.LastAt, e.PositionMs, e.DurationMs, e.Title = Version{}, "", 0, 0, 0, Meta{}
	return e
}
