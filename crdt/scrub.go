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
	if c.Version.IsZero() || !c.Deleted(p) {
		return c
	}
	clearAt := maxHLC(c.ClearedAt, p.ClearedAt)
	c.PositionMs, c.DurationMs, c.State, c.Device, c.UpdatedHLC = 0, 0, StateUnknown, "", 0
	for _, m := range []*Meta{&c.Title, &c.SeriesID, &c.NextVideo} {
		if !m.Ver.IsZero() && m.Ver.Seq <= clearAt {
			*m = Meta{}
		}
	}
	return c
}

func scrubEntry(e Entry, p Profile, videoClearedAt HLC) Entry {
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
