package client

import (
	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// EventFilter is the device side of the push stream's bookkeeping: it drops
// cursor events the device has already seen and keeps the watermark to
// resume from. The node may deliver a cursor twice (replay after a
// reconnect, a long-poll and a push racing) or out of order across nodes;
// cursors only ever advance, so an event whose version (epoch, seq,
// session) is not above the last one seen for its video is old news.
//
// A plain data structure: not safe for concurrent use.
type EventFilter struct {
	// seen is the largest cursor version seen per video.
	seen map[string]crdt.Version
	// after is the watermark: the largest updated_hlc seen (or the
	// node's HLC when the stream started). Reconnecting with after= it
	// misses nothing.
	after crdt.HLC
}

// NewEventFilter returns a filter whose watermark starts at after.
func NewEventFilter(after crdt.HLC) *EventFilter {
	return &EventFilter{seen: map[string]crdt.Version{}, after: after}
}

// After returns the watermark.
func (f *EventFilter) After() crdt.HLC { return f.after }

// Advance raises the watermark to h (a long-poll's hlc).
func (f *EventFilter) Advance(h crdt.HLC) { f.after = max(f.after, h) }

// Cursor records c and reports whether it is news: a version above every
// one seen for its video. The watermark advances either way.
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
// arriving later is not news. The watermark does not move: other videos'
// events below it may still be on their way.
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
