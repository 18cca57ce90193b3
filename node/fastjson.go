package node

import (
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// This file holds hand-written JSON for the hot bodies of the write path:
// the position report (PUT body and batch items) and the answers that carry
// cursors. encoding/json spent a third of a batch's CPU on them, with a
// dozen allocations per update (reflection, a pointer per field, a buffer per
// HLC).
//
// The decoder is a fast path, not a second parser: it accepts only plain
// documents — exactly the keys of updateBody, strings without escapes,
// integers without fraction or exponent, null — and reports ok false for
// anything else, which then goes through encoding/json, so errors and every
// unusual input keep encoding/json's behaviour. FuzzFastDecode checks that
// whatever the fast path accepts, encoding/json decodes to the same value.
// The encoder writes byte for byte what json.Marshal writes for the same
// value (TestFastEncodeMatchesMarshal, FuzzFastEncode).

// updateVals backs the pointers of a fast-decoded updateBody: one
// allocation per update instead of one per field.
type updateVals struct {
	video, device, session, state, title, series, next string
	pos, dur                                           int64
	epoch, seq                                         crdt.HLC
}

// jsonScan is the fast path's cursor over a document.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat skips white space and then c; false if the next byte is not c.
func (s *jsonScan) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// rawString reads a string without escapes or control bytes, whose
// non-ASCII bytes are valid UTF-8 (encoding/json keeps such a string as it
// is); the bytes are the input's.
func (s *jsonScan) rawString() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// null reads the literal null.
func (s *jsonScan) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// digits reads a JSON integer without sign, fraction or exponent (at most
// 19 digits, so it fits an int64); v is its value.
func (s *jsonScan) digits() (v uint64, ok bool) {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 18 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		if c := s.b[s.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return v, true
}

// int64Field reads an int64 field's value: nil for null.
func (s *jsonScan) int64Field(dst *int64) (*int64, bool) {
	if s.null() {
		return nil, true
	}
	neg := s.eat('-')
	if !neg {
		s.ws()
	}
	v, ok := s.digits()
	if !ok {
		return nil, false
	}
	*dst = int64(v)
	if neg {
		*dst = -*dst
	}
	return dst, true
}

// hlcField reads an HLC field: a string of decimal digits or a number
// (crdt.HLC.UnmarshalJSON); nil for null.
func (s *jsonScan) hlcField(dst *crdt.HLC) (*crdt.HLC, bool) {
	if s.null() {
		return nil, true
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '"' {
		raw, ok := s.rawString()
		if !ok || len(raw) == 0 {
			return nil, false
		}
		for _, c := range raw {
			if c < '0' || c > '9' {
				return nil, false
			}
		}
		v, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil {
			return nil, false
		}
		*dst = crdt.HLC(v)
		return dst, true
	}
	v, ok := s.digits()
	if !ok {
		return nil, false
	}
	*dst = crdt.HLC(v)
	return dst, true
}

// stringField reads a string field's value: nil for null.
func (s *jsonScan) stringField(dst *string) (*string, bool) {
	if s.null() {
		return nil, true
	}
	raw, ok := s.rawString()
	if !ok {
		return nil, false
	}
	*dst = string(raw)
	return dst, true
}

// update reads one update object into b, its fields backed by vals.
func (s *jsonScan) update(b *updateBody, vals *updateVals) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		key, ok := s.rawString()
		if !ok || !s.eat(':') {
			return false
		}
		switch string(key) {
		case "video":
			b.Video, ok = s.stringField(&vals.video)
		case "position_ms":
			b.PositionMs, ok = s.int64Field(&vals.pos)
		case "duration_ms":
			b.DurationMs, ok = s.int64Field(&vals.dur)
		case "device":
			b.Device, ok = s.stringField(&vals.device)
		case "session":
			b.Session, ok = s.stringField(&vals.session)
		case "state":
			b.State, ok = s.stringField(&vals.state)
		case "epoch":
			b.Epoch, ok = s.hlcField(&vals.epoch)
		case "seq":
			b.Seq, ok = s.hlcField(&vals.seq)
		case "title":
			b.Title, ok = s.stringField(&vals.title)
		case "series_id":
			b.SeriesID, ok = s.stringField(&vals.series)
		case "next_video":
			b.NextVideo, ok = s.stringField(&vals.next)
		default:
			// An unknown key, or a known one in another case (which
			// encoding/json matches): its rules decide.
			return false
		}
		if !ok {
			return false
		}
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// end reports whether only white space is left.
func (s *jsonScan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// fastUpdateBody decodes a plain update object; ok false: use encoding/json.
func fastUpdateBody(data []byte) (b updateBody, ok bool) {
	s := jsonScan{b: data}
	if !s.update(&b, new(updateVals)) || !s.end() {
		return updateBody{}, false
	}
	return b, true
}

// fastBatchBody decodes a plain {"updates": [...]} object; ok false: use
// encoding/json.
func fastBatchBody(data []byte) (b batchBody, ok bool) {
	s := jsonScan{b: data}
	if !s.eat('{') {
		return batchBody{}, false
	}
	if key, ok := s.rawString(); !ok || string(key) != "updates" || !s.eat(':') || !s.eat('[') {
		return batchBody{}, false
	}
	// n bounds the updates: every one opens with '{'. A batch of more
	// than MaxBatchUpdates goes to encoding/json, which refuses it
	// (decodeBatch), so a body of braces cannot make this allocate more.
	n := 0
	if !s.eat(']') {
		for i := s.i; i < len(data) && n <= MaxBatchUpdates; i++ {
			if data[i] == '{' {
				n++
			}
		}
		n = min(n, MaxBatchUpdates)
		b.Updates = make([]updateBody, 0, n)
		vals := make([]updateVals, n)
		for {
			if len(b.Updates) == n {
				return batchBody{}, false
			}
			b.Updates = append(b.Updates, updateBody{})
			if !s.update(&b.Updates[len(b.Updates)-1], &vals[len(b.Updates)-1]) {
				return batchBody{}, false
			}
			if s.eat(']') {
				break
			}
			if !s.eat(',') {
				return batchBody{}, false
			}
		}
	} else {
		b.Updates = []updateBody{}
	}
	if !s.eat('}') || !s.end() {
		return batchBody{}, false
	}
	return b, true
}

// Encoding.

// bodyPool recycles answer buffers (the ResponseWriter copies them).
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// jsonContentType is the Content-Type header's value, shared by every
// answer (net/http only reads it).
var jsonContentType = []string{"application/json"}

// writeBody answers status with the JSON document b (a newline is added).
func writeBody(w http.ResponseWriter, status int, b []byte) {
	b = append(b, '\n')
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

// writeFast answers status with the document that enc appends.
func writeFast(w http.ResponseWriter, status int, enc func([]byte) []byte) {
	bp := bodyPool.Get().(*[]byte)
	b := enc((*bp)[:0])
	writeBody(w, status, b)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bodyPool.Put(bp)
	}
}

// appendWriteResult appends the JSON of {"applied", "cursor"}.
func appendWriteResult(dst []byte, applied bool, c *crdt.Cursor, pol crdt.Policy) []byte {
	dst = append(dst, `{"applied":`...)
	dst = strconv.AppendBool(dst, applied)
	dst = append(dst, `,"cursor":`...)
	dst = appendCursorOrNull(dst, c, pol)
	return append(dst, '}')
}

// appendStaleBody appends the JSON of api.StaleBody.
func appendStaleBody(dst []byte, msg string, c *crdt.Cursor, pol crdt.Policy) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = appendJSONString(dst, api.CodeStaleWrite)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, msg)
	dst = append(dst, `},"applied":false,"cursor":`...)
	dst = appendCursorOrNull(dst, c, pol)
	return append(dst, '}')
}

func appendCursorOrNull(dst []byte, c *crdt.Cursor, pol crdt.Policy) []byte {
	if c == nil {
		return append(dst, "null"...)
	}
	return appendCursorJSON(dst, c, pol)
}

// appendCursorJSON appends the JSON of toCursorJSON(c, pol) as json.Marshal
// writes it.
func appendCursorJSON(dst []byte, c *crdt.Cursor, pol crdt.Policy) []byte {
	dst = append(dst, `{"video":`...)
	dst = appendJSONString(dst, c.Video)
	dst = append(dst, `,"position_ms":`...)
	dst = strconv.AppendInt(dst, c.PositionMs, 10)
	dst = append(dst, `,"duration_ms":`...)
	dst = strconv.AppendInt(dst, c.DurationMs, 10)
	dst = append(dst, `,"resume_ms":`...)
	dst = strconv.AppendInt(dst, pol.ResumeMs(*c), 10)
	dst = append(dst, `,"state":`...)
	dst = appendJSONString(dst, c.State.String())
	dst = append(dst, `,"completed":`...)
	dst = strconv.AppendBool(dst, pol.Completed(*c))
	dst = append(dst, `,"session":`...)
	dst = appendJSONString(dst, c.Version.Session)
	dst = append(dst, `,"device":`...)
	dst = appendJSONString(dst, c.Device)
	dst = append(dst, `,"epoch":"`...)
	dst = strconv.AppendUint(dst, uint64(c.Version.Epoch), 10)
	dst = append(dst, `","seq":"`...)
	dst = strconv.AppendUint(dst, uint64(c.Version.Seq), 10)
	dst = append(dst, `","updated_at":"`...)
	dst = c.UpdatedHLC.Time().AppendFormat(dst, timeLayout)
	dst = append(dst, `","updated_hlc":"`...)
	dst = strconv.AppendUint(dst, uint64(c.UpdatedHLC), 10)
	dst = append(dst, '"')
	if v := c.Title.Value; v != "" {
		dst = append(dst, `,"title":`...)
		dst = appendJSONString(dst, v)
	}
	if v := c.SeriesID.Value; v != "" {
		dst = append(dst, `,"series_id":`...)
		dst = appendJSONString(dst, v)
	}
	if v := c.NextVideo.Value; v != "" {
		dst = append(dst, `,"next_video":`...)
		dst = appendJSONString(dst, v)
	}
	return append(dst, '}')
}

// jsonSafe marks the ASCII bytes json.Marshal writes as they are (it
// escapes control bytes, '"', '\\' and, for HTML, '<', '>' and '&').
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const lowerHex = "0123456789abcdef"

// appendJSONString appends s as json.Marshal writes a string: HTML
// characters, control bytes, U+2028 and U+2029 escaped, invalid UTF-8 as
// U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
