package gossip

import "github.com/playhead/playhead/crdt"

// A node's HLC is past every version it stores. Local's rules advance the
// clock over what devices send (the HLC receive rule), but records also
// arrive by replication, hints, anti-entropy and handoff, and a deletion
// register may be set above the clock ("deletes cover what is stored": a
// device clock running ahead wrote a larger seq). Answers carry the
// coordinator's HLC and devices open new epochs above it; were the clock
// below a stored cleared_at, a device's next new session could start below
// it and be deleted on arrival (found by the simulator, seed 163 of the CI
// sweep: a fresh session's first write answered stale after a DeleteAll).
// So every record written to the Core's store — by a request, a merge, or
// found at start — is observed by the clock (bufStore.observe).

// recordHLC is the largest timestamp a record holds.
func recordHLC(r crdt.Record) crdt.HLC {
	switch r.Kind {
	case crdt.KindCursor:
		c := r.Cursor
		return max(c.Version.Epoch, c.Version.Seq, c.UpdatedHLC, c.ClearedAt)
	case crdt.KindEntry:
		e := r.Entry
		return max(e.Session.Seq, e.Rec.Seq, e.Deleted.Seq, e.LastAt, e.StartedAt)
	case crdt.KindProfile:
		return max(r.Profile.ClearedAt, r.Profile.PausedAt)
	case crdt.KindHide:
		return r.Hide.At
	}
	return 0
}
