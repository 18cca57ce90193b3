package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/playhead/playhead/crdt"
)

// This file holds the wire types of the device API (API.md), exported so
// that tests, fakes and the bench harness can build and read the same JSON.
// HLCs are crdt.HLC, which travel as decimal strings.

// Cursor is the resume cursor of one video as the API returns it
// (API.md "Cursor").
type Cursor struct {
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

// Version returns the cursor's order key (epoch, seq, session).
func (c *Cursor) Version() crdt.Version {
	return crdt.Version{Epoch: c.Epoch, Seq: c.Seq, Session: c.Session}
}

// UpdateBody is one position report on the wire: the body of PUT
// …/positions/{video} (Video empty: the path names it) and one item of a
// batch (Video set). Epoch and Seq are omitted when zero, which asks the
// node to stamp them.
type UpdateBody struct {
	Video      string   `json:"video,omitempty"`
	PositionMs int64    `json:"position_ms"`
	DurationMs int64    `json:"duration_ms"`
	Device     string   `json:"device"`
	Session    string   `json:"session"`
	State      string   `json:"state,omitempty"`
	Epoch      crdt.HLC `json:"epoch,omitempty"`
	Seq        crdt.HLC `json:"seq,omitempty"`
	Title      string   `json:"title,omitempty"`
	SeriesID   string   `json:"series_id,omitempty"`
	NextVideo  string   `json:"next_video,omitempty"`
}

// NewUpdateBody converts an update to its wire form. withVideo puts the
// video in the body (batch items); a PUT names it in the path instead.
func NewUpdateBody(u crdt.Update, withVideo bool) UpdateBody {
	b := UpdateBody{
		PositionMs: u.PositionMs, DurationMs: u.DurationMs,
		Device: u.Device, Session: u.Session,
		State: u.State.String(), Epoch: u.Epoch, Seq: u.Seq,
		Title: u.Title, SeriesID: u.SeriesID, NextVideo: u.NextVideo,
	}
	if withVideo {
		b.Video = u.Video
	}
	return b
}

// Update converts the wire form back. pathVideo names the video when the
// body does not (a PUT). The result is checked with ValidateUpdate.
func (b UpdateBody) Update(pathVideo string) (crdt.Update, error) {
	st, ok := crdt.ParseState(b.State)
	if !ok {
		return crdt.Update{}, fmt.Errorf("%w: state %q", ErrInvalidUpdate, b.State)
	}
	u := crdt.Update{
		Video: b.Video, Device: b.Device, Session: b.Session,
		PositionMs: b.PositionMs, DurationMs: b.DurationMs, State: st,
		Epoch: b.Epoch, Seq: b.Seq,
		Title: b.Title, SeriesID: b.SeriesID, NextVideo: b.NextVideo,
	}
	if u.Video == "" {
		u.Video = pathVideo
	}
	return u, ValidateUpdate(u)
}

// BatchRequest is the body of POST …/positions.
type BatchRequest struct {
	Updates []UpdateBody `json:"updates"`
}

// WriteResult is the answer to one write: the 200 body of a PUT, and one
// item of a batch's results. Cursor is nil when no cursor is visible (the
// write lies at or below a deletion of the video's history).
type WriteResult struct {
	Applied bool    `json:"applied"`
	Cursor  *Cursor `json:"cursor"`
}

// StaleBody is the 409 body of a stale PUT.
type StaleBody struct {
	Error   ErrorDetail `json:"error"`
	Applied bool        `json:"applied"`
	Cursor  *Cursor     `json:"cursor"`
}

// BatchResponse is the 200 body of POST …/positions: one result per
// update, in order.
type BatchResponse struct {
	Results []WriteResult `json:"results"`
}

// Changes is the body of GET …/changes (long-poll). HLC is the watermark to
// pass as after= on the next poll.
type Changes struct {
	Cursors []Cursor `json:"cursors"`
	HLC     crdt.HLC `json:"hlc"`
}

// ContinueWatchingResponse is the body of GET …/continue-watching.
type ContinueWatchingResponse struct {
	Items []Cursor `json:"items"`
}

// HistoryEntry is one viewing session in the history (API.md "History
// entry").
type HistoryEntry struct {
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

// HistoryPage is the body of GET …/history. NextPage is nil on the last
// page.
type HistoryPage struct {
	Entries  []HistoryEntry `json:"entries"`
	NextPage *string        `json:"next_page"`
}

// ErrorBody is every error answer: {"error": {"code", "message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an error answer.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the API (API.md "Errors"). Wire enum: append only.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeStaleWrite   = "stale_write"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited"
	CodeUnavailable  = "unavailable"
)

// Push event types (API.md "Push events"). Wire enum: append only.
const (
	EventCursor   = "cursor"
	EventTakeover = "takeover"
	EventCleared  = "cleared"
)

// Event is one push event of a profile, as the WebSocket (and the SDK's
// handler) carries it:
//
//   - Type "cursor": Cursor is the cursor that advanced.
//   - Type "takeover": Video was taken over from Session (one of this
//     profile's sessions, superseded) by By.Session on By.Device.
//   - Type "cleared": history was deleted: Video's when Video is set (its
//     entries and cursor, or only the one entry Entry when that is set), the
//     whole profile's when Video is empty (JSON null).
//
// MarshalJSON writes exactly the API's shape of each type.
type Event struct {
	Type    string      `json:"type"`
	Cursor  *Cursor     `json:"cursor,omitempty"`
	Video   string      `json:"video,omitempty"`
	Session string      `json:"session,omitempty"`
	By      *TakeoverBy `json:"by,omitempty"`
	Entry   string      `json:"entry,omitempty"`
}

// TakeoverBy names the session that took a video over.
type TakeoverBy struct {
	Device  string `json:"device"`
	Session string `json:"session"`
}

// MarshalJSON writes the API's shape for the event's type.
func (e Event) MarshalJSON() ([]byte, error) {
	switch e.Type {
	case EventCursor:
		if e.Cursor == nil {
			return nil, errors.New("client: cursor event without a cursor")
		}
		return json.Marshal(struct {
			Type   string  `json:"type"`
			Cursor *Cursor `json:"cursor"`
		}{e.Type, e.Cursor})
	case EventTakeover:
		by := TakeoverBy{}
		if e.By != nil {
			by = *e.By
		}
		return json.Marshal(struct {
			Type    string     `json:"type"`
			Video   string     `json:"video"`
			Session string     `json:"session"`
			By      TakeoverBy `json:"by"`
		}{e.Type, e.Video, e.Session, by})
	case EventCleared:
		var video *string
		if e.Video != "" {
			video = &e.Video
		}
		return json.Marshal(struct {
			Type  string  `json:"type"`
			Video *string `json:"video"`
			Entry string  `json:"entry,omitempty"`
		}{e.Type, video, e.Entry})
	}
	type plain Event // no MarshalJSON: unknown types keep every set field
	return json.Marshal(plain(e))
}

// ValidateUpdate checks what the API checks of an update before it is sent
// or queued: ids of 1–128 bytes of printable ASCII without '/', a duration
// above zero, a position in [0, duration], a known state, seq not below
// epoch. An update it refuses would be refused by the node with 400, so the
// SDK never queues one.
func ValidateUpdate(u crdt.Update) error {
	for _, f := range [...]struct{ name, v string }{
		{"video", u.Video}, {"device", u.Device}, {"session", u.Session},
	} {
		if err := checkID(ErrInvalidUpdate, f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range [...]struct{ name, v string }{
		{"series_id", u.SeriesID}, {"next_video", u.NextVideo},
	} {
		if f.v != "" {
			if err := checkID(ErrInvalidUpdate, f.name, f.v); err != nil {
				return err
			}
		}
	}
	if len(u.Title) > maxTitleLen || !utf8.ValidString(u.Title) {
		return fmt.Errorf("%w: title must be valid UTF-8 of at most %d bytes", ErrInvalidUpdate, maxTitleLen)
	}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidUpdate, strings.TrimPrefix(err.Error(), "crdt: "))
	}
	return nil
}

// Limits of the wire format (API.md "Errors"; the node's decode.go).
const (
	maxIDLen    = 128
	maxTitleLen = 1024
	// MaxBatch is the most updates one POST …/positions may carry.
	MaxBatch = 500
)

// checkID reports whether s is an API id: 1–128 bytes of printable ASCII
// (0x20–0x7E) without '/'.
// The error wraps base.
func checkID(base error, what, s string) error {
	if s == "" || len(s) > maxIDLen {
		return fmt.Errorf("%w: %s must be 1-%d bytes, got %d", base, what, maxIDLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '/' {
			return fmt.Errorf("%w: %s has byte 0x%02x; ids are printable ASCII without '/'", base, what, c)
		}
	}
	return nil
}

// versionOf returns the version an update carries.
func versionOf(u crdt.Update) crdt.Version {
	return crdt.Version{Epoch: u.Epoch, Seq: u.Seq, Session: u.Session}
}
