package crdt

import "strings"

// Version orders cursor and history writes: compared left to right by
// (Epoch, Seq, Session). The larger version wins every merge.
//
// Epoch is the HLC taken when a playback session starts or the viewer acts
// (resume after pause, seek); Seq is the HLC of each update inside the
// session. The most recently started or touched session wins; within it, the
// latest update wins. Session breaks exact ties deterministically.
//
// Invariant (enforced at the API edge): Seq >= Epoch.
//
// Format: these fields are encoded as a msgpack array in this order inside
// every stored Cursor and Entry and on the wire (gossip frames); never
// reorder, rename or remove a field — append only, with a new storage format
// version, and add a golden file (storage/testdata/golden,
// crdt/testdata/golden) for the new version.
type Version struct {
	_msgpack struct{} `msgpack:",as_array"`
	Epoch    HLC
	Seq      HLC
	Session  string
}

// Compare returns -1, 0 or +1 as v is smaller than, equal to, or larger than o.
func (v Version) Compare(o Version) int {
	switch {
	case v.Epoch < o.Epoch:
		return -1
	case v.Epoch > o.Epoch:
		return 1
	case v.Seq < o.Seq:
		return -1
	case v.Seq > o.Seq:
		return 1
	}
	return strings.Compare(v.Session, o.Session)
}

// Less reports whether v orders before o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// IsZero reports whether v is the zero version (no write).
func (v Version) IsZero() bool { return v.Epoch == 0 && v.Seq == 0 && v.Session == "" }

// MaxVersion returns the larger of a and b.
func MaxVersion(a, b Version) Version {
	if a.Less(b) {
		return b
	}
	return a
}

// Meta is one optional metadata field (title, series id, next video) as a
// last-writer-wins register keyed by the version of the write that carried
// it. Updates that leave a field out do not touch it, so players can send
// metadata once per session rather than with every heartbeat.
//
// Format: encoded as a msgpack array (Value, Ver) inside every stored Cursor
// and Entry and on the wire; never reorder, rename or remove a field — append
// only, with a new storage format version, and add a golden file
// (storage/testdata/golden, crdt/testdata/golden) for the new version.
type Meta struct {
	_msgpack struct{} `msgpack:",as_array"`
	Value    string
	Ver      Version
}

// mergeMeta keeps the field written by the larger version; exact version ties
// (only possible from a misbehaving device) break on the value, so the merge
// stays deterministic.
func mergeMeta(a, b Meta) Meta {
	switch c := a.Ver.Compare(b.Ver); {
	case c > 0:
		return a
	case c < 0:
		return b
	case a.Value >= b.Value:
		return a
	default:
		return b
	}
}

// setMeta is the register write of value at version v; an empty value means
// "not sent" and writes nothing.
func setMeta(value string, v Version) Meta {
	if value == "" {
		return Meta{}
	}
	return Meta{Value: value, Ver: v}
}

func maxHLC(a, b HLC) HLC {
	if a > b {
		return a
	}
	return b
}

// minNonZero is the join of a min-register in which zero means "unset".
func minNonZero(a, b HLC) HLC {
	switch {
	case a == 0:
		return b
	case b == 0 || a < b:
		return a
	default:
		return b
	}
}
