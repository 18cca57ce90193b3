package node

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// This file converts crdt and gossip values to the wire types of responses
// and push events (package api) and writes JSON answers. Request decoding
// is in decode.go.

// timeLayout is RFC 3339 with milliseconds, always UTC ("Z").
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatHLCTime(h crdt.HLC) string { return h.Time().Format(timeLayout) }

// toCursorJSON is the cursor as devices see it.
func toCursorJSON(c crdt.Cursor, pol crdt.Policy) api.Cursor {
	return api.Cursor{
		Video:      c.Video,
		PositionMs: c.PositionMs,
		DurationMs: c.DurationMs,
		ResumeMs:   pol.ResumeMs(c),
		State:      c.State.String(),
		Completed:  pol.Completed(c),
		Session:    c.Version.Session,
		Device:     c.Device,
		Epoch:      c.Version.Epoch,
		Seq:        c.Version.Seq,
		UpdatedAt:  formatHLCTime(c.UpdatedHLC),
		UpdatedHLC: c.UpdatedHLC,
		Title:      c.Title.Value,
		SeriesID:   c.SeriesID.Value,
		NextVideo:  c.NextVideo.Value,
	}
}

// cursorPtr converts a cursor that may be absent: nil (JSON null) when not
// found.
func cursorPtr(c crdt.Cursor, found bool, pol crdt.Policy) *api.Cursor {
	if !found {
		return nil
	}
	j := toCursorJSON(c, pol)
	return &j
}

// toEntryJSON is the history entry as devices see it.
func toEntryJSON(it gossip.HistoryItem) api.HistoryEntry {
	e := it.Entry
	return api.HistoryEntry{
		ID:            it.ID,
		Video:         e.Video,
		Title:         e.Title.Value,
		Session:       e.Rec.Session,
		Device:        e.Device,
		StartedAt:     formatHLCTime(e.StartedAt),
		LastAt:        formatHLCTime(e.LastAt),
		PositionMs:    e.PositionMs,
		DurationMs:    e.DurationMs,
		CompletionPct: e.CompletionPct(),
	}
}

// encodeEvent returns the type name and JSON of a push event.
func encodeEvent(ev *gossip.Event, pol crdt.Policy) (string, []byte) {
	typ, v := eventValue(ev, pol)
	if typ == "" {
		return "", nil
	}
	b, _ := json.Marshal(v) // plain structs of strings and numbers cannot fail
	return typ, b
}

// eventValue returns the type name and the message of a push event, to be
// encoded as JSON or msgpack.
func eventValue(ev *gossip.Event, pol crdt.Policy) (string, any) {
	switch ev.Type {
	case gossip.EventCursor:
		return api.EventCursor, api.CursorEvent{Type: api.EventCursor, Cursor: toCursorJSON(ev.Cursor, pol)}
	case gossip.EventTakeover:
		return api.EventTakeover, api.TakeoverEvent{
			Type: api.EventTakeover, Video: ev.Video, Session: ev.Superseded.Version.Session,
			By: api.TakeoverBy{Device: ev.Cursor.Device, Session: ev.Cursor.Version.Session},
		}
	case gossip.EventCleared:
		c := api.ClearedEvent{Type: api.EventCleared, Entry: ev.Entry}
		if ev.Video != "" {
			video := ev.Video
			c.Video = &video
		}
		return api.EventCleared, c
	case gossip.EventHidden:
		return api.EventHidden, api.HiddenEvent{Type: api.EventHidden, Video: ev.Video}
	}
	return "", nil
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only a programming error can get here
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"unavailable","message":"internal error: cannot encode the response"}}`)
	}
	writeBody(w, status, b)
}

// rfc3339 parses an RFC 3339 query value.
func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }
