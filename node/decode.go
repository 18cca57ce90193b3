package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// This file decodes and validates what devices send: ids, position updates,
// batches, settings and query parameters. Every decoder returns an
// *apiError (400 bad_request, 413 too_large) that says what to fix.

// Limits of the wire format.
const (
	// MaxIDLen is the longest id (profile, video, device, session, entry,
	// series) in bytes.
	MaxIDLen = api.MaxIDLen
	// MaxTitleLen is the longest title in bytes (valid UTF-8).
	MaxTitleLen = api.MaxTitleLen
	// maxQueryLen is the longest history search text in bytes.
	maxQueryLen = 256
	// maxMsgIDLen is the longest WebSocket message id echoed in an ack.
	maxMsgIDLen = 128
)

// checkID reports whether s is a valid id: 1–128 bytes of printable ASCII
// (0x20–0x7E) without '/', and not "." or ".." (path segments a URL
// resolves away).
func checkID(what, s string) *apiError {
	if s == "" {
		return errBadRequest("%s is empty; ids are 1-%d bytes of printable ASCII without '/'", what, MaxIDLen)
	}
	if len(s) > MaxIDLen {
		return errBadRequest("%s is %d bytes; ids are at most %d bytes", what, len(s), MaxIDLen)
	}
	if s == "." || s == ".." {
		return errBadRequest("%s %q is not allowed: it cannot appear as a URL path segment", what, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '/' {
			return errBadRequest("%s has byte 0x%02x at offset %d; ids are printable ASCII without '/'", what, c, i)
		}
	}
	return nil
}

// updateBody is the wire form of a position report (PUT body, batch item,
// WebSocket update). Pointers tell "absent" from zero.
type updateBody struct {
	Video      *string   `json:"video"`
	PositionMs *int64    `json:"position_ms"`
	DurationMs *int64    `json:"duration_ms"`
	Device     *string   `json:"device"`
	Session    *string   `json:"session"`
	State      *string   `json:"state"`
	Epoch      *crdt.HLC `json:"epoch"`
	Seq        *crdt.HLC `json:"seq"`
	Title      *string   `json:"title"`
	SeriesID   *string   `json:"series_id"`
	NextVideo  *string   `json:"next_video"`
}

// decodeUpdate decodes and validates one update. pathVideo is the video of
// a PUT's path; when empty, the body must name the video (batch items and
// WebSocket updates). An accepted update satisfies checkUpdate.
func decodeUpdate(data []byte, pathVideo string) (crdt.Update, error) {
	b, ok := fastUpdateBody(data)
	if !ok {
		if err := unmarshal(data, &b); err != nil {
			return crdt.Update{}, err
		}
	}
	return b.update(pathVideo, "")
}

// update validates b and converts it. prefix names the item in messages
// ("updates[3].").
func (b *updateBody) update(pathVideo, prefix string) (crdt.Update, error) {
	u := crdt.Update{Video: pathVideo}
	if u.Video == "" {
		if b.Video == nil {
			return u, errBadRequest("%svideo is required", prefix)
		}
		u.Video = *b.Video
	}
	if err := checkID(prefix+"video", u.Video); err != nil {
		return u, err
	}
	switch {
	case b.PositionMs == nil:
		return u, errBadRequest("%sposition_ms is required", prefix)
	case b.DurationMs == nil:
		return u, errBadRequest("%sduration_ms is required", prefix)
	case b.Device == nil:
		return u, errBadRequest("%sdevice is required", prefix)
	case b.Session == nil:
		return u, errBadRequest("%ssession is required", prefix)
	}
	u.PositionMs, u.DurationMs, u.Device, u.Session = *b.PositionMs, *b.DurationMs, *b.Device, *b.Session
	if err := checkID(prefix+"device", u.Device); err != nil {
		return u, err
	}
	if err := checkID(prefix+"session", u.Session); err != nil {
		return u, err
	}
	if u.DurationMs <= 0 {
		return u, errBadRequest("%sduration_ms is %d; it must be > 0", prefix, u.DurationMs)
	}
	if u.PositionMs < 0 || u.PositionMs > u.DurationMs {
		return u, errBadRequest("%sposition_ms is %d; it must lie in [0, duration_ms=%d]", prefix, u.PositionMs, u.DurationMs)
	}
	state := ""
	if b.State != nil {
		state = *b.State
	}
	st, ok := crdt.ParseState(state)
	if !ok {
		return u, errBadRequest("%sstate %q is not one of playing, paused, stopped, completed", prefix, truncate(state))
	}
	u.State = st
	if b.Epoch != nil {
		u.Epoch = *b.Epoch
	}
	if b.Seq != nil {
		u.Seq = *b.Seq
	}
	if b.Title != nil {
		u.Title = *b.Title
		if len(u.Title) > MaxTitleLen || !utf8.ValidString(u.Title) {
			return u, errBadRequest("%stitle must be valid UTF-8 of at most %d bytes", prefix, MaxTitleLen)
		}
	}
	if b.SeriesID != nil && *b.SeriesID != "" {
		u.SeriesID = *b.SeriesID
		if err := checkID(prefix+"series_id", u.SeriesID); err != nil {
			return u, err
		}
	}
	if b.NextVideo != nil && *b.NextVideo != "" {
		u.NextVideo = *b.NextVideo
		if err := checkID(prefix+"next_video", u.NextVideo); err != nil {
			return u, err
		}
	}
	if err := u.Validate(); err != nil { // the crdt's own rules (seq >= epoch, …)
		return u, errBadRequest("%s%s", prefix, strings.TrimPrefix(err.Error(), "crdt: "))
	}
	return u, nil
}

// checkUpdate reports whether u satisfies every rule decodeUpdate enforces
// (the fuzz test's oracle).
func checkUpdate(u crdt.Update) error {
	for _, id := range []string{u.Video, u.Device, u.Session} {
		if !api.ValidID(id) {
			return fmt.Errorf("bad id %q", id)
		}
	}
	for _, id := range []string{u.SeriesID, u.NextVideo} {
		if id != "" && !api.ValidID(id) {
			return fmt.Errorf("bad optional id %q", id)
		}
	}
	if len(u.Title) > MaxTitleLen || !utf8.ValidString(u.Title) {
		return errors.New("bad title")
	}
	return u.Validate()
}

// batchBody is the wire form of POST …/positions.
type batchBody struct {
	Updates []updateBody `json:"updates"`
}

func decodeBatch(data []byte) ([]crdt.Update, error) {
	b, ok := fastBatchBody(data)
	if !ok {
		if err := unmarshal(data, &b); err != nil {
			return nil, err
		}
	}
	if b.Updates == nil {
		return nil, errBadRequest(`updates is required: {"updates": [ {"video": …, "position_ms": …, …} ]}`)
	}
	if len(b.Updates) > MaxBatchUpdates {
		return nil, errBadRequest("a batch holds at most %d updates, got %d; split it", MaxBatchUpdates, len(b.Updates))
	}
	ups := make([]crdt.Update, len(b.Updates))
	for i := range b.Updates {
		u, err := b.Updates[i].update("", "")
		if err != nil {
			// Again, to name the item in the message (update is pure;
			// formatting the prefix for every item cost an allocation
			// each).
			_, err = b.Updates[i].update("", fmt.Sprintf("updates[%d].", i))
			return nil, err
		}
		ups[i] = u
	}
	return ups, nil
}

// decodeSettings decodes a settings PUT: history_paused is required.
func decodeSettings(data []byte) (bool, error) {
	var b struct {
		HistoryPaused *bool `json:"history_paused"`
	}
	if err := unmarshal(data, &b); err != nil {
		return false, err
	}
	if b.HistoryPaused == nil {
		return false, errBadRequest(`history_paused is required: {"history_paused": true|false}`)
	}
	return *b.HistoryPaused, nil
}

// unmarshal decodes a JSON object, turning decoder errors into messages a
// device developer can act on. Unknown fields are ignored.
func unmarshal(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errBadRequest("request body is empty; send a JSON object")
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, crdt.ErrBadHLC):
		return errBadRequest("epoch and seq must be HLCs: decimal strings (or numbers) of unsigned 64-bit integers")
	case errors.As(err, &te):
		if te.Field == "" {
			return errBadRequest("request body must be a JSON object, not %s", te.Value)
		}
		return errBadRequest("%s must be %s, not %s", te.Field, wantType(te.Type.String()), te.Value)
	case errors.As(err, &se):
		return errBadRequest("malformed JSON at byte %d: %v", se.Offset, se)
	}
	return errBadRequest("malformed JSON: %v", err)
}

func wantType(goType string) string {
	switch goType {
	case "int64":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "of another type"
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge(limit)
	}
	// A slow body must not pin a handler forever; the server itself has no
	// read timeout because push streams and long-polls outlive any.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Second))
	body := http.MaxBytesReader(w, r.Body, limit)
	var b []byte
	var err error
	if r.ContentLength > 0 {
		// The usual case: read exactly the announced length (one
		// allocation, where ReadAll grows its buffer step by step), then
		// check nothing follows.
		b = make([]byte, r.ContentLength)
		if _, err = io.ReadFull(body, b); err == nil {
			var one [1]byte
			if n, _ := body.Read(one[:]); n > 0 {
				err = errors.New("body longer than its Content-Length")
			}
		}
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge(limit)
		}
		return nil, errBadRequest("cannot read the request body: %v", err)
	}
	return b, nil
}

// queryLimit parses an optional integer query parameter in [1, max].
func queryLimit(r *http.Request, name string, def, max int) (int, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return def, nil
	}
	s := q.Get(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, errBadRequest("%s=%q: must be an integer in [1, %d]", name, truncate(s), max)
	}
	return n, nil
}

// queryHLC parses an optional HLC query parameter; absent is 0.
func queryHLC(r *http.Request, name string) (crdt.HLC, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return 0, nil
	}
	s := q.Get(name)
	h, err := crdt.ParseHLC(s)
	if err != nil {
		return 0, errBadRequest("%s=%q: must be an HLC (a decimal unsigned 64-bit integer, as in updated_hlc)", name, truncate(s))
	}
	return h, nil
}

// parseWait parses the long-poll wait: a Go duration ("25s", "1m") or plain
// seconds ("25", "2.5"), in [0, max].
func parseWait(s string, max time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f { // NaN
			return 0, errBadRequest("wait=%q: must be a duration like 25s or a number of seconds", truncate(s))
		}
		if f > max.Seconds() || f < 0 {
			return 0, errBadRequest("wait=%q: must be between 0 and %v", truncate(s), max)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 || d > max {
		return 0, errBadRequest("wait=%q: must be between 0 and %v", truncate(s), max)
	}
	return d, nil
}

// truncate shortens a device-supplied value quoted in an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
