package crdt

// Cursor is the resume position of one (account, profile, video): a
// max-register ordered by Version, plus per-field metadata registers and the
// per-video deletion register.
//
// The zero Version means "no write yet"; such a record may still carry a
// deletion (ClearedAt) that must outlive later replays.
//
// Format: these fields are encoded as a msgpack array in this order, stored
// on disk (cursor values in format V1, which still decode; V2 and V3 in
// storage/codec_cursor.go encode each field by hand) and sent between nodes
// (gossip frames). Never reorder, rename or remove a field, nor change its
// type: append only, with a new storage format version, and add a golden
// file (storage/testdata/golden, crdt/testdata/golden) for the new version.
type Cursor struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Video is the record's key; it is not stored in the value.
	Video string `msgpack:"-"`

	PositionMs int64
	DurationMs int64
	State      State
	Version    Version
	Device     string
	// UpdatedHLC is the coordinating node's HLC when it accepted the write
	// that is now the winner. It travels with the write, so every replica
	// holds the same value. It orders "continue watching" and the changes
	// feed; it never decides a merge.
	UpdatedHLC HLC

	Title     Meta
	SeriesID  Meta
	NextVideo Meta

	// ClearedAt is the per-video deletion register (max of HLCs): every write
	// of this video whose Seq is at or below it is deleted, for the cursor and
	// for the video's history entries alike.
	ClearedAt HLC
}

// MergeCursor returns the join of two cursor states of the same video: the
// larger version's position, the newest value of each metadata field, the
// latest deletion. Commutative, associative and idempotent.
func MergeCursor(a, b Cursor) Cursor {
	w, l := a, b
	if cursorLess(a, b) != plantMergeSmaller {
		w, l = b, a
	}
	out := w
	out.Title = mergeMeta(w.Title, l.Title)
	out.SeriesID = mergeMeta(w.SeriesID, l.SeriesID)
	out.NextVideo = mergeMeta(w.NextVideo, l.NextVideo)
	out.ClearedAt = maxHLC(a.ClearedAt, b.ClearedAt)
	if out.Video == "" {
		out.Video = l.Video
	}
	return out
}

// cursorLess orders the position part of two cursors: by version, and for
// equal versions (a device that reused a version for different content) by
// content, so that every replica picks the same winner.
func cursorLess(a, b Cursor) bool {
	if c := a.Version.Compare(b.Version); c != 0 {
		return c < 0
	}
	switch {
	case a.PositionMs != b.PositionMs:
		return a.PositionMs < b.PositionMs
	case a.DurationMs != b.DurationMs:
		return a.DurationMs < b.DurationMs
	case a.State != b.State:
		return a.State < b.State
	case a.Device != b.Device:
		return a.Device < b.Device
	}
	return a.UpdatedHLC < b.UpdatedHLC
}

// Deleted reports whether the cursor's current write is deleted by the
// per-video register or by the profile's cleared_at.
func (c Cursor) Deleted(p Profile) bool {
	return c.Version.Seq <= maxHLC(c.ClearedAt, p.ClearedAt)
}

// Live reports whether the cursor exists for readers at physical time nowMs:
// written, not deleted and not expired. Expiry is a function of the record
// (its Seq), so it needs no tombstone and every replica agrees.
func (c Cursor) Live(p Profile, pol Policy, nowMs int64) bool {
	if c.Version.IsZero() || c.Deleted(p) {
		return false
	}
	return !pol.cursorExpired(c, nowMs)
}

// Purgeable reports whether the whole record can be dropped from storage at
// nowMs: its write has expired, and its deletion register (which must outlive
// every history entry it deletes) has expired too.
func (c Cursor) Purgeable(pol Policy, nowMs int64) bool {
	if !c.Version.IsZero() && !pol.cursorExpired(c, nowMs) {
		return false
	}
	return c.ClearedAt == 0 || c.ClearedAt.Physical()+pol.HistoryTTL.Milliseconds() < nowMs
}

// Advances reports whether merging in into stored would change the
// position register (in carries a larger version).
func Advances(stored, in Cursor) bool { return stored.Version.Less(in.Version) }

// Shown returns the cursor as readers see it: metadata written by a deleted
// write is blanked. A metadata register keeps the newest value of a field,
// and a later write that leaves the field out must not bring back a title
// the viewer deleted (DESIGN.md §4: deletion sticks), even before Scrub has
// rewritten the stored record.
func (c Cursor) Shown(p Profile) Cursor {
	clearAt := maxHLC(c.ClearedAt, p.ClearedAt)
	for _, m := range []*Meta{&c.Title, &c.SeriesID, &c.NextVideo} {
		if !m.Ver.IsZero() && m.Ver.Seq <= clearAt {
			*m = Meta{}
		}
	}
	return c
}
