package api

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/playhead/playhead/crdt"
)

// This file holds the messages of the push stream, GET …/events: the JSON
// contract of docs/API.md "Push events". The node sends CursorEvent,
// TakeoverEvent and ClearedEvent to subscribers, and Ack or ErrorEvent
// answers a device's WebSocket message; over the msgpack subprotocol the
// same types travel with the same keys (their JSON tags).

// Message types of the push stream (docs/API.md "Push events"). Wire enum:
// append only; never rename.
const (
	EventCursor   = "cursor"
	EventTakeover = "takeover"
	EventCleared  = "cleared"
	EventAck      = "ack"
	EventError    = "error"
	EventHidden   = "hidden"
)

// CursorEvent is {"type": "cursor", "cursor": {…}}: a cursor of the
// profile advanced.
type CursorEvent struct {
	Type   string `json:"type"`
	Cursor Cursor `json:"cursor"`
}

// TakeoverEvent is {"type": "takeover", …}: Video was taken over from
// Session (one of the profile's sessions, now superseded) by By.
type TakeoverEvent struct {
	Type    string     `json:"type"`
	Video   string     `json:"video"`
	Session string     `json:"session"` // the superseded session
	By      TakeoverBy `json:"by"`
}

// TakeoverBy names the session that took a video over.
type TakeoverBy struct {
	Device  string `json:"device"`
	Session string `json:"session"`
}

// ClearedEvent is {"type": "cleared", "video": …}: history was deleted.
type ClearedEvent struct {
	Type  string  `json:"type"`
	Video *string `json:"video"` // null: the whole history was cleared
	// Entry names the one deleted entry when a single entry was deleted
	// (then video is that entry's video and its cursor is untouched).
	Entry string `json:"entry,omitempty"`
}

// HiddenEvent is {"type": "hidden", "video": …}: the viewer took Video off
// "continue watching" (its resume position stays readable).
type HiddenEvent struct {
	Type  string `json:"type"`
	Video string `json:"video"`
}

// Ack answers one update a device sent over the WebSocket:
// {"type": "ack", "id": …, "applied": bool, "cursor": {…}}. ID echoes the
// message's id (null when it had none); Cursor is nil when no cursor is
// visible.
type Ack struct {
	Type    string  `json:"type"`
	ID      *string `json:"id"`
	Applied bool    `json:"applied"`
	Cursor  *Cursor `json:"cursor"`
}

// ErrorEvent is {"type": "error", "id": …, "error": {…}}: a device's
// WebSocket message was refused (ID echoes its id), or the stream ends
// (SSE: the token expired; ID null).
type ErrorEvent struct {
	Type  string      `json:"type"`
	ID    *string     `json:"id"`
	Error ErrorDetail `json:"error"`
}

// Event is any push event of a profile in one type, as a device reads the
// stream (and the SDK's handler gets it):
//
//   - Type "cursor": Cursor is the cursor that advanced.
//
//   - Type "takeover": Video was taken over from Session (one of this
//     profile's sessions, superseded) by By.Session on By.Device.
//
//   - Type "cleared": history was deleted: Video's when Video is set (its
//     entries and cursor, or only the one entry Entry when that is set), the
//     whole profile's when Video is empty (JSON null).
//
//   - Type "hidden": Video was taken off "continue watching".
//
// MarshalJSON writes exactly the shape of CursorEvent, TakeoverEvent,
// ClearedEvent or HiddenEvent for those types.
type Event struct {
	Type    string      `json:"type"`
	Cursor  *Cursor     `json:"cursor,omitempty"`
	Video   string      `json:"video,omitempty"`
	Session string      `json:"session,omitempty"`
	By      *TakeoverBy `json:"by,omitempty"`
	Entry   string      `json:"entry,omitempty"`
}

// MarshalJSON writes the API's shape for the event's type.
func (e Event) MarshalJSON() ([]byte, error) {
	switch e.Type {
	case EventCursor:
		if e.Cursor == nil {
			return nil, errors.New("api: cursor event without a cursor")
		}
		return json.Marshal(CursorEvent{Type: e.Type, Cursor: *e.Cursor})
	case EventTakeover:
		te := TakeoverEvent{Type: e.Type, Video: e.Video, Session: e.Session}
		if e.By != nil {
			te.By = *e.By
		}
		return json.Marshal(te)
	case EventCleared:
		ce := ClearedEvent{Type: e.Type, Entry: e.Entry}
		if e.Video != "" {
			ce.Video = &e.Video
		}
		return json.Marshal(ce)
	case EventHidden:
		return json.Marshal(HiddenEvent{Type: e.Type, Video: e.Video})
	}
	type plain Event // no MarshalJSON: unknown types keep every set field
	return json.Marshal(plain(e))
}

// ResumeHoldBack is how far below the node's HLC at a subscription's first
// contact its resume point starts (docs/API.md "Push events"): the
// cluster's default max_clock_skew. A change coordinated by a node whose
// clock lags that of the node the device first reached can be stamped
// below the first contact's HLC and still come after it.
const ResumeHoldBack = 60 * time.Second

// ResumePointAt returns the resume point (after=) of a subscription whose
// first contact answered with the node's HLC h: h held back by
// ResumeHoldBack.
func ResumePointAt(h crdt.HLC) crdt.HLC {
	return crdt.NewHLC(max(0, h.Physical()-ResumeHoldBack.Milliseconds()), 0)
}
