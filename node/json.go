package node

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
)

// This file holds the wire types of responses and push events, and their
// conversions from crdt and gossip values. Request decoding is in decode.go.

// timeLayout is RFC 3339 with milliseconds, always UTC ("Z").
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatHLCTime(h crdt.HLC) string { return h.Time().Format(timeLayout) }

// cursorJSON is a cursor as devices see it (API.md "Cursor").
type cursorJSON struct {
	Video      string   `json:"video"`
	PositionMs int64    `json:"position_ms"`
	DurationMs int64    `json:"duration_ms"`
	ResumeMs   int64    `json:"resume_ms"`
	State      string   `json:"state"`
	Completed  bool     `json:"completed"`
	Session    string   `json:"session"`
	Device     string   `json:"device"`
	Epoch      crdt.HLC `json:"epoch"`
	Seq        crdt.HLC `json:"seq"`
	UpdatedAt  string   `json:"updated_at"`
	UpdatedHLC crdt.HLC `json:"updated_hlc"`
	Title      string   `json:"title,omitempty"`
	SeriesID   string   `json:"series_id,omitempty"`
	NextVideo  string   `json:"next_video,omitempty"`
}

func toCursorJSON(c crdt.Cursor, pol crdt.Policy) cursorJSON {
	return cursorJSON{
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
func cursorPtr(c crdt.Cursor, found bool, pol crdt.Policy) *cursorJSON {
	if !found {
		return nil
	}
	j := toCursorJSON(c, pol)
	return &j
}

// writeResultJSON is one result of a write (PUT body, batch item).
type writeResultJSON struct {
	Applied bool        `json:"applied"`
	Cursor  *cursorJSON `json:"cursor"`
}

// staleJSON is the 409 body of a stale write.
type staleJSON struct {
	Error   errorDetail `json:"error"`
	Applied bool        `json:"applied"`
	Cursor  *cursorJSON `json:"cursor"`
}

// entryJSON is a history entry (API.md "History entry").
type entryJSON struct {
	ID            string  `json:"id"`
	Video         string  `json:"video"`
	Title         string  `json:"title,omitempty"`
	Session       string  `json:"session"`
	Device        string  `json:"device"`
	StartedAt     string  `json:"started_at"`
	LastAt        string  `json:"last_at"`
	PositionMs    int64   `json:"position_ms"`
	DurationMs    int64   `json:"duration_ms"`
	CompletionPct float64 `json:"completion_pct"`
}

func toEntryJSON(it gossip.HistoryItem) entryJSON {
	e := it.Entry
	return entryJSON{
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

// settingsJSON is the profile settings.
type settingsJSON struct {
	HistoryPaused bool `json:"history_paused"`
}

// Push events (API.md "Push events"). Event type names are a wire enum:
// append only.
const (
	evCursor   = "cursor"
	evTakeover = "takeover"
	evCleared  = "cleared"
	evAck      = "ack"
	evError    = "error"
)

type cursorEventJSON struct {
	Type   string     `json:"type"`
	Cursor cursorJSON `json:"cursor"`
}

type takeoverEventJSON struct {
	Type    string     `json:"type"`
	Video   string     `json:"video"`
	Session string     `json:"session"` // the superseded session
	By      takeoverBy `json:"by"`
}

type takeoverBy struct {
	Device  string `json:"device"`
	Session string `json:"session"`
}

type clearedEventJSON struct {
	Type  string  `json:"type"`
	Video *string `json:"video"` // null: the whole history was cleared
	// Entry names the one deleted entry when a single entry was deleted
	// (then video is that entry's video and its cursor is untouched).
	Entry string `json:"entry,omitempty"`
}

type ackJSON struct {
	Type    string      `json:"type"`
	ID      *string     `json:"id"`
	Applied bool        `json:"applied"`
	Cursor  *cursorJSON `json:"cursor"`
}

type errorEventJSON struct {
	Type  string      `json:"type"`
	ID    *string     `json:"id"`
	Error errorDetail `json:"error"`
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
		return evCursor, cursorEventJSON{Type: evCursor, Cursor: toCursorJSON(ev.Cursor, pol)}
	case gossip.EventTakeover:
		return evTakeover, takeoverEventJSON{
			Type: evTakeover, Video: ev.Video, Session: ev.Superseded.Version.Session,
			By: takeoverBy{Device: ev.Cursor.Device, Session: ev.Cursor.Version.Session},
		}
	case gossip.EventCleared:
		c := clearedEventJSON{Type: evCleared, Entry: ev.Entry}
		if ev.Video != "" {
			video := ev.Video
			c.Video = &video
		}
		return evCleared, c
	}
	return "", nil
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only a programming error can get here
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"unavailable","message":"internal error: cannot encode the response"}}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// rfc3339 parses an RFC 3339 query value.
func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }
