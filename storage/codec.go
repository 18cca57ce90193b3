package storage

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/playhead/playhead/crdt"
)

// Value encoding: for a cursor, its compact binary encoding, whose first
// byte also carries the format (valueFormatCursorV3, or V2 for a state V3
// cannot pack; codec_cursor.go); for other kinds one format byte and the
// msgpack encoding of the struct
// that the key's kind names (crdt.Cursor, crdt.Entry, crdt.Profile or
// crdt.Hide), as a
// msgpack array (the crdt types carry `msgpack:",as_array"`) with integers in
// their most compact form. The kind itself lives in the key, and so does a
// cursor's video (crdt.Cursor.Video is not encoded; DecodeValue fills it from
// the key's id; a hide's video is only its key's id).
//
// The encoding is deterministic: the same record always gives the same bytes,
// so replicas can compare values by hash (anti-entropy).
//
// This is an on-disk and (through anti-entropy hashes) a wire format.
// Cursors written as msgpack (valueFormatV1) by earlier versions still
// decode, and so do V2 cursors of any state (commit f0e5197 wrote V2 for
// every cursor); they are rewritten in the compact form when next written.
// storage/testdata/golden pins the bytes of every format still read. Nodes of
// a cluster should run the same format: during a rolling upgrade a cursor
// untouched since the upgrade hashes differently on old and new nodes, and
// anti-entropy exchanges it (harmlessly: merges are idempotent) until it is.
const (
	// valueFormatV1 is the format byte of the encoding above. A change to
	// any crdt struct's field list changes the encoding: it needs a new
	// format byte and a decoder for the old one. Never reuse a number.
	//
	// Format: stored on disk; never change it — add a format and a golden
	// file (storage/testdata/golden) for the new version; value_*_v1.hex
	// pin this one.
	valueFormatV1 byte = 1
)

// EncodeValue returns the encoding of rec. Only the field named by rec.Kind
// is encoded. It fails with ErrBadRecord for an unknown kind.
func EncodeValue(rec crdt.Record) ([]byte, error) {
	return AppendValue(make([]byte, 0, 96), rec)
}

// AppendValue appends the encoding of rec to dst and returns the extended
// slice; see EncodeValue.
func AppendValue(dst []byte, rec crdt.Record) ([]byte, error) {
	return appendValue(dst, &rec)
}

// valueEncoder is a msgpack encoder that appends to a buffer, pooled so
// that encoding a record allocates nothing but the buffer's growth.
type valueEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var valueEncoders = sync.Pool{New: func() any {
	e := &valueEncoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	e.enc.UseCompactInts(true)
	return e
}}

// appendValue is AppendValue over a pointer (the record is not copied).
func appendValue(dst []byte, rec *crdt.Record) ([]byte, error) {
	var v any
	switch rec.Kind {
	case crdt.KindCursor:
		return appendCursorV2(dst, &rec.Cursor), nil
	case crdt.KindEntry:
		v = &rec.Entry
	case crdt.KindProfile:
		v = &rec.Profile
	case crdt.KindHide:
		v = &rec.Hide
	default:
		return dst, fmt.Errorf("%w: unknown kind %d", ErrBadRecord, rec.Kind)
	}
	e := valueEncoders.Get().(*valueEncoder)
	e.w.buf = append(dst, valueFormatV1)
	err := e.enc.Encode(v)
	out := e.w.buf
	e.w.buf = nil
	valueEncoders.Put(e)
	if err != nil {
		// The crdt types hold only ints, strings and structs of them, so
		// this cannot happen short of a change there that msgpack rejects.
		return dst, fmt.Errorf("%w: encoding %v: %v", ErrBadRecord, rec.Kind, err)
	}
	return out, nil
}

// DecodeValue decodes a value stored under a key of the given kind and id
// (the id fills crdt.Cursor.Video). It fails with an error wrapping
// ErrCorrupt on any input EncodeValue cannot produce, short of
// non-canonical msgpack that still decodes to a record and of the older
// cursor formats (V1, and V2 with a state V3 packs); it never panics.
func DecodeValue(kind crdt.Kind, id string, value []byte) (crdt.Record, error) {
	rec := crdt.Record{Kind: kind}
	if len(value) == 0 {
		return crdt.Record{}, fmt.Errorf("%w: empty %v value", ErrCorrupt, kind)
	}
	if isCursorV3(value[0]) && kind == crdt.KindCursor {
		c, err := decodeCursorV3(value, id)
		if err != nil {
			return crdt.Record{}, err
		}
		rec.Cursor = c
		return rec, nil
	}
	if value[0] == valueFormatCursorV2 && kind == crdt.KindCursor {
		c, err := decodeCursorV2(value[1:], id)
		if err != nil {
			return crdt.Record{}, err
		}
		rec.Cursor = c
		return rec, nil
	}
	if value[0] != valueFormatV1 {
		return crdt.Record{}, fmt.Errorf("%w: %v value has unknown format %d", ErrCorrupt, kind, value[0])
	}
	var v any
	switch kind {
	case crdt.KindCursor:
		v = &rec.Cursor
	case crdt.KindEntry:
		v = &rec.Entry
	case crdt.KindProfile:
		v = &rec.Profile
	case crdt.KindHide:
		v = &rec.Hide
	default:
		return crdt.Record{}, fmt.Errorf("%w: value of unknown kind %d", ErrCorrupt, kind)
	}
	r := bytes.NewReader(value[1:])
	// A fresh decoder, not msgpack.GetDecoder: a pooled decoder keeps the
	// buffer it grew for the last string, also when that string's declared
	// length overran the input, and a run of corrupt values with huge
	// declared lengths doubles it each time (found by FuzzDecodeValue). A
	// fresh one allocates at most a few MB for such a value, then fails.
	// r is an io.ByteScanner, so the decoder reads it directly, unbuffered.
	dec := msgpack.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return crdt.Record{}, fmt.Errorf("%w: %v value: %v", ErrCorrupt, kind, err)
	}
	if r.Len() != 0 {
		return crdt.Record{}, fmt.Errorf("%w: %v value has %d trailing bytes", ErrCorrupt, kind, r.Len())
	}
	if kind == crdt.KindCursor {
		rec.Cursor.Video = id
	}
	return rec, nil
}

// appendWriter is an io.Writer (and io.ByteWriter, which msgpack uses for
// single bytes) that appends to buf.
type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.buf = append(w.buf, c)
	return nil
}
