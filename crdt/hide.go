package crdt

// Hide is the "hidden from continue watching" register of one video: the
// largest HLC at which the viewer took the video off the row. The video (and
// the next-episode row it would open) stays off "continue watching" while its
// cursor's Seq is at or below At; a position report made after the hide — a
// write whose Seq is above At — shows it again, and a replay of a write from
// before the hide does not. The resume position itself stays readable: a
// hide changes the row, never the cursor nor history.
//
// It is a max-register ordered like the deletion registers (a cursor's
// ClearedAt): by the HLC compared with the cursor's Seq. The node stamps a
// hide at or above the Seq of the cursor it hides (a device clock may run
// ahead within max_clock_skew), so the cursor the viewer saw is hidden.
//
// Format: encoded as a msgpack array (storage value format V1 under a key
// of KindHide) and sent between nodes (gossip frames). Never reorder, rename
// or remove a field, nor change its type: append only, with a new storage
// format version, and add a golden file (storage/testdata/golden).
type Hide struct {
	_msgpack struct{} `msgpack:",as_array"`
	// At is the register (the video is the record's key id).
	At HLC
}

// MergeHide returns the join of two states of the same video's register.
func MergeHide(a, b Hide) Hide {
	return Hide{At: maxHLC(a.At, b.At)}
}

// Hides reports whether the register keeps cursor c off "continue
// watching": c's write is at or below the hide.
func (h Hide) Hides(c Cursor) bool {
	return h.At != 0 && c.Version.Seq <= h.At
}

// Purgeable reports whether the register can be dropped from storage: every
// cursor write it can hide (Seq at or below At) has expired by nowMs.
func (h Hide) Purgeable(pol Policy, nowMs int64) bool {
	return h.At.Physical()+pol.CursorTTL.Milliseconds() < nowMs
}
