package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is a cursor's (epoch, seq, session), compared left to right as
// crdt.Version is. The zero Version is "no cursor".
type Version struct {
	Epoch   uint64 `json:"epoch"`
	Seq     uint64 `json:"seq"`
	Session string `json:"session"`
}

// Compare returns -1, 0 or +1 as v is smaller than, equal to, or larger than o.
func (v Version) Compare(o Version) int {
	switch {
	case v.Epoch != o.Epoch:
		if v.Epoch < o.Epoch {
			return -1
		}
		return 1
	case v.Seq != o.Seq:
		if v.Seq < o.Seq {
			return -1
		}
		return 1
	}
	return strings.Compare(v.Session, o.Session)
}

// Less reports whether v orders before o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// IsZero reports whether v is no version.
func (v Version) IsZero() bool { return v == Version{} }

// Header is v as the Playhead-Seen header value.
func (v Version) Header() string { return fmt.Sprintf("%d %d %s", v.Epoch, v.Seq, v.Session) }

func (v Version) String() string {
	if v.IsZero() {
		return "none"
	}
	return fmt.Sprintf("(%d,%d,%s)", v.Epoch, v.Seq, v.Session)
}

// Op kinds.
const (
	OpWrite       = "write"        // PUT a position
	OpRead        = "read"         // resume read with Playhead-Seen
	OpPlainRead   = "plain-read"   // GET without Playhead-Seen
	OpList        = "list"         // continue-watching
	OpDeleteVideo = "delete-video" // DELETE …/history?video=
	OpDeleteAll   = "delete-all"   // DELETE …/history
	OpSubscribe   = "subscribe"    // a push stream opened (End: when its headers arrived)
	OpPush        = "push"         // a cursor event received on a push stream
	OpCleared     = "cleared"      // a cleared event received on a push stream
)

// Op is one entry of a history: a request a client made (Start, End, its
// outcome) or an event a push stream delivered (Start = End = arrival).
// Times are since the phase began.
type Op struct {
	Kind    string        `json:"kind"`
	Device  string        `json:"device"`
	Profile string        `json:"profile"`
	Video   string        `json:"video,omitempty"`
	Node    int           `json:"node"`
	Start   time.Duration `json:"start"`
	End     time.Duration `json:"end"`
	// Status is the HTTP status; 0 when no answer came (timeout, refused
	// connection): the outcome is unknown.
	Status int    `json:"status"`
	Err    string `json:"err,omitempty"`
	// A write's position and session; a read's or push's answer (the
	// cursor's position, session, device and version; Found false: 404).
	Pos     int64   `json:"pos,omitempty"`
	Session string  `json:"session,omitempty"`
	Writer  string  `json:"writer,omitempty"`
	Ver     Version `json:"ver,omitzero"`
	Found   bool    `json:"found,omitempty"`
	// Applied: a write answered 200 with applied true (acknowledged).
	Applied bool `json:"applied,omitempty"`
	// Seen is the Playhead-Seen a resume read sent.
	Seen Version `json:"seen,omitzero"`
	// List: every cursor a continue-watching answer held.
	Items []Item `json:"items,omitempty"`
}

// Item is one cursor of a list answer.
type Item struct {
	Video   string  `json:"video"`
	Pos     int64   `json:"pos"`
	Session string  `json:"session"`
	Writer  string  `json:"writer"`
	Ver     Version `json:"ver"`
}

// OK reports whether the request succeeded (2xx).
func (o Op) OK() bool { return o.Status >= 200 && o.Status < 300 }

// Unknown reports whether the outcome is unknown (no answer, or a 5xx after
// which the request may still have been applied somewhere).
func (o Op) Unknown() bool { return o.Status == 0 || o.Status >= 500 }

// History is a phase's operations, safe for concurrent appends.
type History struct {
	mu    sync.Mutex
	start time.Time
	ops   []Op
}

// NewHistory starts a history at now.
func NewHistory() *History { return &History{start: time.Now()} }

// Since is the time since the history started.
func (h *History) Since() time.Duration { return time.Since(h.start) }

// Add appends op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of the operations so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// WriteJSONL writes ops one JSON object a line.
func WriteJSONL(w io.Writer, ops []Op) error {
	enc := json.NewEncoder(w)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			return err
		}
	}
	return nil
}

// cursorJSON is the API's cursor (docs/API.md).
type cursorJSON struct {
	Video      string `json:"video"`
	PositionMs int64  `json:"position_ms"`
	Session    string `json:"session"`
	Device     string `json:"device"`
	Epoch      string `json:"epoch"`
	Seq        string `json:"seq"`
}

func (c cursorJSON) version() Version {
	e, _ := strconv.ParseUint(c.Epoch, 10, 64)
	s, _ := strconv.ParseUint(c.Seq, 10, 64)
	return Version{Epoch: e, Seq: s, Session: c.Session}
}

func (c cursorJSON) item() Item {
	return Item{Video: c.Video, Pos: c.PositionMs, Session: c.Session, Writer: c.Device, Ver: c.version()}
}
