package api

import (
	"fmt"

	"github.com/playhead/playhead/crdt"
)

// This file holds the request and response bodies of the device API: each
// type is the JSON contract of the docs/API.md section it names. HLCs are
// crdt.HLC, which travel as decimal strings and are read from a string or a
// number.

// Cursor is the resume cursor of one video as the API returns it: the JSON
// contract of docs/API.md "Cursor".
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

// UpdateBody is one position report as a device sends it: the JSON
// contract of docs/API.md "Reporting a position" — the body of PUT
// …/positions/{video} (Video empty: the path names it) and one item of a
// batch (Video set). Epoch and Seq are omitted when zero, which asks the
// node to stamp them.
//
// The node decodes requests with its own pointer-field reader, which tells
// an absent field from a zero one; this type is the sender's side.
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
// body does not (a PUT). It fails only on an unknown state; it does not
// check the update against the API's rules (the SDK's ValidateUpdate and
// the node's decoder do).
func (b UpdateBody) Update(pathVideo string) (crdt.Update, error) {
	st, ok := crdt.ParseState(b.State)
	if !ok {
		return crdt.Update{}, fmt.Errorf("api: unknown state %q", b.State)
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
	return u, nil
}

// BatchRequest is the body of POST …/positions (docs/API.md
// "Endpoints"): at most MaxBatch updates, each naming its video.
type BatchRequest struct {
	Updates []UpdateBody `json:"updates"`
}

// WriteResult is the answer to one write (docs/API.md "Reporting a
// position"): the 200 body of a PUT, and one item of a batch's results.
// Cursor is nil (JSON null) when no cursor is visible (the write lies at or
// below a deletion of the video's history).
type WriteResult struct {
	Applied bool    `json:"applied"`
	Cursor  *Cursor `json:"cursor"`
}

// StaleBody is the 409 body of a stale PUT (docs/API.md "Reporting a
// position"): the error and the cursor that is stored.
type StaleBody struct {
	Error   ErrorDetail `json:"error"`
	Applied bool        `json:"applied"`
	Cursor  *Cursor     `json:"cursor"`
}

// BatchResponse is the 200 body of POST …/positions (docs/API.md
// "Endpoints"): one result per update, in order.
type BatchResponse struct {
	Results []WriteResult `json:"results"`
}

// Changes is the body of GET …/changes, the long-poll (docs/API.md
// "Endpoints"). HLC is the watermark to pass as after= on the next poll.
// Cleared is present only when the poll asked for it (include=cleared): the
// history deletions since after, to apply before Cursors.
type Changes struct {
	Cursors []Cursor        `json:"cursors"`
	Cleared *[]ClearedEvent `json:"cleared,omitempty"`
	HLC     crdt.HLC        `json:"hlc"`
	// Poll names the subscription the node keeps for the next poll
	// (include=cleared only): pass it as poll= to hear the deletions made
	// in between.
	Poll string `json:"poll,omitempty"`
}

// ContinueWatchingResponse is the body of GET …/continue-watching
// (docs/API.md "Endpoints").
type ContinueWatchingResponse struct {
	Items []Cursor `json:"items"`
}

// HistoryEntry is one viewing session in the history: the JSON contract of
// docs/API.md "History entry".
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

// HistoryPage is the body of GET …/history (docs/API.md "Endpoints").
// NextPage is nil (JSON null) on the last page.
type HistoryPage struct {
	Entries  []HistoryEntry `json:"entries"`
	NextPage *string        `json:"next_page"`
}

// Settings is the body of GET and PUT …/settings (docs/API.md
// "Endpoints").
type Settings struct {
	HistoryPaused bool `json:"history_paused"`
}

// ErrorBody is every error answer (docs/API.md "Errors"):
// {"error": {"code", "message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an error answer (docs/API.md "Errors").
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the API (docs/API.md "Errors"): a program switches on
// them. Wire enum: append only; never rename.
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
