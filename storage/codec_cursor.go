package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/playhead/playhead/crdt"
)

// valueFormatCursorV2 is the compact binary encoding of a cursor, written
// since msgpack (valueFormatV1) spent 82 bytes on a typical cursor, most of
// them on 9-byte HLCs that differ in their last bytes and on empty metadata
// registers. Layout after the format byte:
//
//	flags      1 byte: cfTitle, cfSeries, cfNext, cfCleared (which optional
//	           parts follow), cfHexSession (the session is 16 lowercase hex
//	           digits, stored as their 8 bytes)
//	position   zigzag varint
//	duration   zigzag varint
//	state      1 byte
//	version    uvarint epoch, zigzag varint (seq − epoch), session
//	device     uvarint length, bytes
//	updated    zigzag varint (updated_hlc − seq)
//	title, series_id, next_video, when flagged: uvarint length, value, then
//	           1 byte 0 (its version is the cursor's) or 1 and a version
//	cleared_at uvarint, when flagged
//
// A session is 8 raw bytes when cfHexSession (for the version's session;
// a metadata version's session carries its own 1-byte hex flag before it)
// and otherwise a uvarint length and the bytes. Differences of HLCs wrap
// modulo 2^64, so every uint64 round-trips. The encoding is canonical: the
// same cursor always gives the same bytes (anti-entropy hashes values).
//
// Format: this layout, the flag bits and the order of the parts are stored
// on disk; never reorder or remove a part, nor reuse a flag bit — add a new
// format (a first byte no format takes yet) and a golden file
// (storage/testdata/golden) for it. value_cursor_v2.hex and
// value_cursor_v3.hex pin V2 and V3.
const valueFormatCursorV2 byte = 2

// valueFormatCursorV3 is valueFormatCursorV2 with the format byte, the
// flags and the state packed in one first byte: (state+1)<<5 | flags, so
// 0x20 or more (formats 1 and 2 stay distinct), for states up to
// maxPackedState; a larger (invalid but storable) state is written as V2.
// Every other field is as in V2. Two bytes of about 40 per cursor.
//
// Format: stored on disk (value_cursor_v3.hex); never change it.
const maxPackedState = 6

// isCursorV3 reports whether a cursor value's first byte is V3's.
func isCursorV3(b byte) bool { return b >= 0x20 }

// Flag bits of V2 and V3. Format: stored on disk; never renumber or reuse a
// bit (storage/testdata/golden pins them).
const (
	cfTitle = 1 << iota
	cfSeries
	cfNext
	cfCleared
	cfHexSession
	cfAll = cfTitle | cfSeries | cfNext | cfCleared | cfHexSession
)

// appendCursorV2 appends the compact encoding of c.
func appendCursorV2(dst []byte, c *crdt.Cursor) []byte {
	var flags byte
	if c.Title != (crdt.Meta{}) {
		flags |= cfTitle
	}
	if c.SeriesID != (crdt.Meta{}) {
		flags |= cfSeries
	}
	if c.NextVideo != (crdt.Meta{}) {
		flags |= cfNext
	}
	if c.ClearedAt != 0 {
		flags |= cfCleared
	}
	hexSession := isHex16(c.Version.Session)
	if hexSession {
		flags |= cfHexSession
	}
	if c.State <= maxPackedState {
		// One byte for format, flags and state (valueFormatCursorV3).
		dst = append(dst, byte(c.State+1)<<5|flags)
		dst = binary.AppendVarint(dst, c.PositionMs)
		dst = binary.AppendVarint(dst, c.DurationMs)
	} else {
		dst = append(dst, valueFormatCursorV2, flags)
		dst = binary.AppendVarint(dst, c.PositionMs)
		dst = binary.AppendVarint(dst, c.DurationMs)
		dst = append(dst, byte(c.State))
	}
	dst = appendVersionBody(dst, c.Version, hexSession)
	dst = appendString(dst, c.Device)
	dst = binary.AppendVarint(dst, int64(uint64(c.UpdatedHLC)-uint64(c.Version.Seq)))
	for _, m := range []struct {
		flag byte
		meta *crdt.Meta
	}{{cfTitle, &c.Title}, {cfSeries, &c.SeriesID}, {cfNext, &c.NextVideo}} {
		if flags&m.flag == 0 {
			continue
		}
		dst = appendString(dst, m.meta.Value)
		if m.meta.Ver == c.Version {
			dst = append(dst, 0)
			continue
		}
		hex := isHex16(m.meta.Ver.Session)
		if hex {
			dst = append(dst, 1, 1)
		} else {
			dst = append(dst, 1, 0)
		}
		dst = appendVersionBody(dst, m.meta.Ver, hex)
	}
	if flags&cfCleared != 0 {
		dst = binary.AppendUvarint(dst, uint64(c.ClearedAt))
	}
	return dst
}

func appendVersionBody(dst []byte, v crdt.Version, hexSession bool) []byte {
	dst = binary.AppendUvarint(dst, uint64(v.Epoch))
	dst = binary.AppendVarint(dst, int64(uint64(v.Seq)-uint64(v.Epoch)))
	if hexSession {
		var raw [8]byte
		for i := range raw {
			raw[i] = unhex(v.Session[2*i])<<4 | unhex(v.Session[2*i+1])
		}
		return append(dst, raw[:]...)
	}
	return appendString(dst, v.Session)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// isHex16 reports whether s is 16 lowercase hex digits (what the SDK and
// most players use for a session id).
func isHex16(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

const hexDigits = "0123456789abcdef"

// cursorReader decodes the compact encoding; the first error sticks.
type cursorReader struct {
	b   []byte
	err error
}

func (r *cursorReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: cursor value: bad %s", ErrCorrupt, what)
	}
}

func (r *cursorReader) byte(what string) byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *cursorReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cursorReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cursorReader) string(what string) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *cursorReader) version(hexSession bool) crdt.Version {
	var v crdt.Version
	v.Epoch = crdt.HLC(r.uvarint("epoch"))
	v.Seq = crdt.HLC(uint64(v.Epoch) + uint64(r.varint("seq")))
	if !hexSession {
		v.Session = r.string("session")
		if isHex16(v.Session) {
			r.fail("session (hex stored as text)") // not canonical
		}
		return v
	}
	if r.err != nil || len(r.b) < 8 {
		r.fail("session")
		return v
	}
	var s [16]byte
	for i := 0; i < 8; i++ {
		s[2*i], s[2*i+1] = hexDigits[r.b[i]>>4], hexDigits[r.b[i]&15]
	}
	r.b = r.b[8:]
	v.Session = string(s[:])
	return v
}

// decodeCursorV3 decodes a V3 value (first byte included).
func decodeCursorV3(b []byte, video string) (crdt.Cursor, error) {
	state := crdt.State(b[0]>>5) - 1
	return decodeCursorBody(&cursorReader{b: b[1:]}, video, b[0]&0x1f, &state)
}

// decodeCursorV2 decodes b (after the format byte).
func decodeCursorV2(b []byte, video string) (crdt.Cursor, error) {
	r := &cursorReader{b: b}
	flags := r.byte("flags")
	if flags&^cfAll != 0 {
		r.fail("flags")
	}
	return decodeCursorBody(r, video, flags, nil)
}

// decodeCursorBody decodes what follows the flags; state is V3's (nil: V2,
// where it follows the duration).
func decodeCursorBody(r *cursorReader, video string, flags byte, state *crdt.State) (crdt.Cursor, error) {
	c := crdt.Cursor{Video: video}
	c.PositionMs = r.varint("position")
	c.DurationMs = r.varint("duration")
	if state != nil {
		c.State = *state
	} else {
		// A V2 state that V3 could pack is not what EncodeValue writes
		// today, but it is what commit f0e5197 wrote for every cursor
		// before V3 existed: it decodes, like V1, and is rewritten as V3
		// when next written (testdata/golden/value_cursor_v2.hex).
		c.State = crdt.State(r.byte("state"))
	}
	c.Version = r.version(flags&cfHexSession != 0)
	c.Device = r.string("device")
	c.UpdatedHLC = crdt.HLC(uint64(c.Version.Seq) + uint64(r.varint("updated_hlc")))
	for _, m := range []struct {
		flag byte
		meta *crdt.Meta
	}{{cfTitle, &c.Title}, {cfSeries, &c.SeriesID}, {cfNext, &c.NextVideo}} {
		if flags&m.flag == 0 {
			continue
		}
		m.meta.Value = r.string("metadata")
		switch r.byte("metadata version") {
		case 0:
			m.meta.Ver = c.Version
		case 1:
			switch r.byte("metadata session") {
			case 0:
				m.meta.Ver = r.version(false)
			case 1:
				m.meta.Ver = r.version(true)
			default:
				r.fail("metadata session")
			}
			if m.meta.Ver == c.Version {
				r.fail("metadata version (not canonical)")
			}
		default:
			r.fail("metadata version")
		}
		if *m.meta == (crdt.Meta{}) {
			r.fail("metadata (empty but flagged)")
		}
	}
	if flags&cfCleared != 0 {
		if c.ClearedAt = crdt.HLC(r.uvarint("cleared_at")); c.ClearedAt == 0 {
			r.fail("cleared_at (zero but flagged)")
		}
	}
	if r.err == nil && len(r.b) != 0 {
		return crdt.Cursor{}, fmt.Errorf("%w: cursor value has %d trailing bytes", ErrCorrupt, len(r.b))
	}
	if r.err != nil {
		return crdt.Cursor{}, r.err
	}
	return c, nil
}
