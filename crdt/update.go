package crdt

import "errors"

// Update is one position report from a device, as the API and the SDK carry
// it. Epoch and Seq are zero when the device leaves stamping to the node.
//
// Format: sent between nodes (gossip frames, forwarded requests) as a msgpack
// map keyed by these field names; never rename or remove a field, nor change
// its type (crdt/testdata/golden/wire_msgpack.hex pins the bytes).
type Update struct {
	Video      string
	Device     string
	Session    string
	PositionMs int64
	DurationMs int64
	State      State
	Epoch      HLC
	Seq        HLC
	// Optional metadata; empty means "not sent" (keeps the stored value).
	Title     string
	SeriesID  string
	NextVideo string
}

// Errors from Update.Validate.
var (
	ErrBadPosition = errors.New("crdt: position_ms must lie in [0, duration_ms] and duration_ms must be > 0")
	ErrBadState    = errors.New("crdt: unknown state")
	ErrBadVersion  = errors.New("crdt: seq must not be below epoch")
	ErrEpochBehind = errors.New("crdt: a new epoch must not be below the session's last seq")
)

// Validate checks the rules that do not depend on stored state. Ids are
// checked at the API edge.
func (u Update) Validate() error {
	if u.DurationMs <= 0 || u.PositionMs < 0 || u.PositionMs > u.DurationMs {
		return ErrBadPosition
	}
	if !u.State.Valid() {
		return ErrBadState
	}
	if u.Epoch != 0 && u.Seq != 0 && u.Seq < u.Epoch {
		return ErrBadVersion
	}
	return nil
}

// CheckSession checks the update against known, the newest version stored
// for its session. A device opens a new epoch from a clock that has passed
// every seq it sent before, so a new epoch (above the known one) that lies
// below the session's last seq is refused: accepting it would make the
// session's newest version carry a smaller seq than an older write of the
// same session, and expiry and purging, which go by seq, would let that
// older write come back after its tombstone was dropped.
func (u Update) CheckSession(known Version) error {
	if u.Epoch != 0 && u.Epoch > known.Epoch && u.Epoch < known.Seq {
		return ErrEpochBehind
	}
	return nil
}

// Stamp completes the update's version (DESIGN.md §3). known is the newest
// version the node has seen for this session (zero if none); now is a fresh
// node HLC. A device that sends no epoch gets the session's known epoch, or
// now for a new session; a device that sends no seq gets now. Stamped
// versions always satisfy Seq >= Epoch.
func Stamp(u Update, known Version, now HLC) Version {
	v := Version{Epoch: u.Epoch, Seq: u.Seq, Session: u.Session}
	if v.Epoch == 0 {
		v.Epoch = known.Epoch
		if v.Epoch == 0 {
			v.Epoch = now
		}
	}
	if v.Seq == 0 {
		v.Seq = now
	}
	if v.Seq < v.Epoch {
		v.Seq = v.Epoch
	}
	return v
}

// CursorDelta is the cursor state that a stamped update writes.
func (u Update) CursorDelta(v Version, updated HLC) Cursor {
	return Cursor{
		Video:      u.Video,
		PositionMs: u.PositionMs,
		DurationMs: u.DurationMs,
		State:      u.State,
		Version:    v,
		Device:     u.Device,
		UpdatedHLC: updated,
		Title:      setMeta(u.Title, v),
		SeriesID:   setMeta(u.SeriesID, v),
		NextVideo:  setMeta(u.NextVideo, v),
	}
}

// EntryDelta is the history-entry state that a stamped update writes. With
// record false (history paused) it carries only the session's version, so
// nothing about the viewing is recorded — not even when the session started
// — but the session's epoch is kept. A recorded point's StartedAt is the
// session's epoch; the caller moves it past a paused window with
// Profile.RecordStart.
func (u Update) EntryDelta(v Version, updated HLC, record bool) Entry {
	e := Entry{Video: u.Video, Session: v}
	if record {
		e.StartedAt = v.Epoch
		e.Rec = v
		e.Device = u.Device
		e.LastAt = updated
		e.PositionMs = u.PositionMs
		e.DurationMs = u.DurationMs
		e.Title = setMeta(u.Title, v)
	}
	return e
}

// Takeover reports whether moving the visible cursor from old to new hands
// the video over to another session; the superseded session's devices are
// told so they can pause and offer to continue there.
func Takeover(old, new Cursor) bool {
	return !old.Version.IsZero() && old.Version.Session != new.Version.Session &&
		old.Version.Less(new.Version)
}
