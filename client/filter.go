package client

import (
	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// ResumeHoldBack is how far below the node's HLC at the first contact a
// subscription's resume point starts (Subscribe): api.ResumeHoldBack, the
// cluster's default max_clock_skew. A change coordinated by a node whose
// clock lags that of the node the device first reached can be stamped
// below that first contact's HLC and still come after it.
const ResumeHoldBack = api.ResumeHoldBack

// ResumePointAt returns the resume point of a subscription whose first
// contact with a node answered with the node's HLC h (api.ResumePointAt).
func ResumePointAt(h crdt.HLC) crdt.HLC { return api.ResumePointAt(h) }

// EventFilter is the device side of the push stream's bookkeeping: it drops
// cursor events the device has already seen and keeps the point to resume
// from. The node may deliver a cursor twice (replay after a reconnect, a
// catch-up, a long-poll and a push racing) or out of order across nodes;
// cursors only ever advance, so an event whose version (epoch, seq,
// session) is not above the last one seen for its video is old news.
//
// The resume point (After) does not follow the cursors received. Changes
// of a profile reach a device out of updated_hlc order — its videos have
// different coordinators, and a push lost on the way comes later by
// catch-up — so the newest updated_hlc received is no proof that every
// older change arrived, and resuming from it could skip one for good
// (DESIGN.md §7, push guarantee). A reconnect resumes from where the
// subscription started instead; the node replays every live cursor above
// it and the filter drops the versions it holds: duplicates, never misses.
//
// A plain data structure: not safe for concurrent use.
type EventFilter struct {
	// seen is the largest cursor version seen per video.
	seen map[string]crdt.Version
	// after is the resume point: the device holds, or does not need,
	// every change stamped at or below it.
	after crdt.HLC
	// newest is the largest updated_hlc seen (or long-poll hlc): what a
	// long-poll waits to pass, never a resume point.
	newest crdt.HLC
}

// NewEventFilter returns a filter resuming from after.
func NewEventFilter(after crdt.HLC) *EventFilter {
	return &EventFilter{seen: map[string]crdt.Version{}, after: after, newest: after}
}

// After returns the resume point (after= of a reconnect).
func (f *EventFilter) After() crdt.HLC { return f.after }

// Newest returns the largest updated_hlc seen, or the largest hlc a
// long-poll answered (a long-poll's after=).
func (f *EventFilter) Newest() crdt.HLC { return f.newest }

// Start sets the resume point from the node's HLC h at the first contact
// (ResumePointAt), for a subscription that had none.
func (f *EventFilter) Start(h crdt.HLC) {
	f.after = ResumePointAt(h)
	f.newest = max(f.newest, h)
}

// Advance raises Newest to h (a long-poll's hlc). The resume point does
// not move.
func (f *EventFilter) Advance(h crdt.HLC) { f.newest = max(f.newest, h) }

// Cursor records c and reports whether it is news: a version above every
// one seen for its video. Newest advances either way.
func (f *EventFilter) Cursor(c *Cursor) bool {
	f.Advance(c.UpdatedHLC)
	v := c.Version()
	if old, ok := f.seen[c.Video]; ok && !old.Less(v) {
		return false
	}
	f.seen[c.Video] = v
	return true
}

// Saw records that the device saw version v of video outside the stream
// (a resume read, its own acknowledged write), so that an older push
// arriving later is not news.
func (f *EventFilter) Saw(video string, v crdt.Version) {
	if old, ok := f.seen[video]; !ok || old.Less(v) {
		f.seen[video] = v
	}
}

// Seen returns the largest version of video the filter has seen.
func (f *EventFilter) Seen(video string) crdt.Version { return f.seen[video] }

// Cleared forgets what was seen of video ("" for every video), after its
// history was deleted: a later cursor may carry a smaller version than the
// deleted one and is news all the same.
func (f *EventFilter) Cleared(video string) {
	if video == "" {
		clear(f.seen)
		return
	}
	delete(f.seen, video)
}

// Accept applies ev to the filter and reports whether to deliver it:
// cursor events only when news, takeover, cleared and hidden events always,
// other types (acks, errors, types added later) never.
func (f *EventFilter) Accept(ev *Event) bool {
	switch ev.Type {
	case api.EventCursor:
		return ev.Cursor != nil && f.Cursor(ev.Cursor)
	case api.EventTakeover, api.EventHidden:
		return true
	case api.EventCleared:
		if ev.Entry == "" { // one entry deleted leaves the cursor alone
			f.Cleared(ev.Video)
		}
		return true
	}
	return false
}
