package crdt

// Profile holds the per-profile registers.
//
// Format: these fields are encoded as a msgpack array in this order, stored
// on disk (storage value format V1) and sent between nodes (gossip frames).
// Never reorder, rename or remove a field, nor change its type: append only,
// with a new storage format version, and add a golden file
// (storage/testdata/golden, crdt/testdata/golden) for the new version.
type Profile struct {
	_msgpack struct{} `msgpack:",as_array"`
	// ClearedAt is the "delete all history" register (max of HLCs): every
	// cursor and entry whose Seq is at or below it is deleted everywhere.
	ClearedAt HLC
	// HistoryPaused, set at PausedAt, is a last-writer-wins register by HLC;
	// on an exact tie, paused wins (the privacy-preserving choice).
	HistoryPaused bool
	PausedAt      HLC
}

// RecordStart is the started_at a recorded history point may carry for a
// session whose epoch is epoch: a session started while history was paused
// and continued after it was resumed is recorded from the resume on, so that
// started_at never lies inside the paused window. (A session recorded
// before the pause keeps its earlier start: StartedAt is a min-register.)
func (p Profile) RecordStart(epoch HLC) HLC {
	if !p.HistoryPaused && p.PausedAt > epoch {
		return p.PausedAt
	}
	return epoch
}

// MergeProfile returns the join of two profile states.
func MergeProfile(a, b Profile) Profile {
	out := Profile{ClearedAt: maxHLC(a.ClearedAt, b.ClearedAt)}
	switch {
	case a.PausedAt > b.PausedAt:
		out.HistoryPaused, out.PausedAt = a.HistoryPaused, a.PausedAt
	case b.PausedAt > a.PausedAt:
		out.HistoryPaused, out.PausedAt = b.HistoryPaused, b.PausedAt
	default:
		out.HistoryPaused, out.PausedAt = a.HistoryPaused || b.HistoryPaused, a.PausedAt
	}
	return out
}
