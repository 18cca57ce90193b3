package crdt

import (
	"crypto/sha256"
	"encoding/hex"
)

// Entry is the history record of one viewing session of one video, keyed by
// EntryID(video, session). It has three parts, each its own register:
//
//   - Session: the largest version seen for the session, recorded in history
//     or not. The node uses it to keep stamping a known session with its own
//     epoch, so a superseded session that keeps reporting never becomes "new"
//     again — also while history is paused.
//   - the recorded point (Rec and the fields after it): a max-register by Rec,
//     written only while history is not paused. Rec zero: never recorded.
//   - Deleted: the tombstone, the largest recorded version ever deleted. The
//     entry is hidden while Rec <= Deleted, so a late replay of an older
//     update cannot resurrect it.
//
// Format: these fields are encoded as a msgpack array in this order, stored
// on disk (storage value format V1) and sent between nodes (gossip frames).
// Never reorder, rename or remove a field, nor change its type: append only,
// with a new storage format version, and add a golden file
// (storage/testdata/golden, crdt/testdata/golden) for the new version.
type Entry struct {
	_msgpack struct{} `msgpack:",as_array"`
	Video    string
	// Session is the newest version of this session (recorded or not).
	Session Version
	// StartedAt is the session's first epoch (a min-register).
	StartedAt HLC

	Rec        Version
	Device     string
	LastAt     HLC // UpdatedHLC of the recorded point
	PositionMs int64
	DurationMs int64
	Title      Meta

	Deleted Version
}

// EntryID is the stable, opaque id of the history entry of (video, session):
// 32 hex digits, safe in a URL path.
func EntryID(video, session string) string {
	h := sha256.New()
	h.Write([]byte(video))
	h.Write([]byte{0})
	h.Write([]byte(session))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// MergeEntry returns the join of two states of the same entry.
func MergeEntry(a, b Entry) Entry {
	w, l := a, b
	if entryLess(a, b) {
		w, l = b, a
	}
	out := w
	if out.Video == "" {
		out.Video = l.Video
	}
	out.Session = MaxVersion(a.Session, b.Session)
	out.StartedAt = minNonZero(a.StartedAt, b.StartedAt)
	out.Title = mergeMeta(a.Title, b.Title)
	out.Deleted = MaxVersion(a.Deleted, b.Deleted)
	return out
}

// entryLess orders the recorded-point part of two entries, by Rec and then
// by content for exact ties.
func entryLess(a, b Entry) bool {
	if c := a.Rec.Compare(b.Rec); c != 0 {
		return c < 0
	}
	switch {
	case a.PositionMs != b.PositionMs:
		return a.PositionMs < b.PositionMs
	case a.DurationMs != b.DurationMs:
		return a.DurationMs < b.DurationMs
	case a.Device != b.Device:
		return a.Device < b.Device
	case a.LastAt != b.LastAt:
		return a.LastAt < b.LastAt
	}
	return a.Video < b.Video
}

// Tombstone returns the delta that deletes the entry's current recorded
// point (and everything older). Merging it into any replica's copy hides the
// entry there.
func (e Entry) Tombstone() Entry {
	return Entry{Video: e.Video, Deleted: e.Rec}
}

// Visible reports whether the entry shows in history at nowMs, given the
// profile registers and the per-video deletion register of its video.
func (e Entry) Visible(p Profile, videoClearedAt HLC, pol Policy, nowMs int64) bool {
	if e.Rec.IsZero() || !e.Deleted.Less(e.Rec) {
		return false
	}
	if e.Rec.Seq <= maxHLC(p.ClearedAt, videoClearedAt) {
		return false
	}
	return !pol.entryExpired(e.Rec, nowMs)
}

// Purgeable reports whether the record can be dropped from storage: its
// recorded point and its tombstone are past history_ttl (the tombstone is
// kept exactly as long as the record it deletes would have lived), and its
// session memory is past cursor_ttl (a session idle that long can no longer
// win anyway).
func (e Entry) Purgeable(pol Policy, nowMs int64) bool {
	newest := MaxVersion(e.Rec, e.Deleted)
	if !newest.IsZero() && !pol.entryExpired(newest, nowMs) {
		return false
	}
	return e.Session.IsZero() || e.Session.Seq.Physical()+pol.CursorTTL.Milliseconds() < nowMs
}

// CompletionPct is the share of the video watched at the recorded point, in
// percent, rounded to one decimal.
func (e Entry) CompletionPct() float64 {
	return pct(e.PositionMs, e.DurationMs)
}

// Shown returns the entry as readers see it: a title written by a deleted
// write (at or below the entry's tombstone, the profile's cleared_at or the
// video's deletion register) is blanked, so it cannot reappear when a later
// write without a title re-shows the entry.
func (e Entry) Shown(p Profile, videoClearedAt HLC) Entry {
	if t := e.Title.Ver; !t.IsZero() && (!e.Deleted.Less(t) || t.Seq <= maxHLC(p.ClearedAt, videoClearedAt)) {
		e.Title = Meta{}
	}
	return e
}
