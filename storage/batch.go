package storage

import (
	"fmt"

	"github.com/playhead/playhead/crdt"
)

// op is one encoded mutation of a Write: a put, or a delete when value is
// nil (an encoded value is never empty).
type op struct {
	key, value []byte
}

// encodeOps encodes the puts, then the deletes, of one Write, in order. It
// fails, encoding nothing, on the first key that does not encode
// (ErrBadKey) or record that does not fit its key (ErrBadRecord).
//
// Every key and value is encoded into one buffer (two allocations for the
// batch, not two or more per record); the ops' slices share it, so no op
// may be modified (a store that keeps values beyond the batch copies them).
func encodeOps(puts []Put, deletes []Key) ([]op, error) {
	ops := make([]op, 0, len(puts)+len(deletes))
	type span struct{ key, end, val int }
	var small [8]span // a request's batch: no allocation
	spans := small[:0]
	buf := make([]byte, 0, 128*len(puts)+64*len(deletes))
	for i := range puts {
		p := &puts[i]
		if err := checkRecord(p.Key, p.Record); err != nil {
			return nil, fmt.Errorf("%w (put %d)", err, i)
		}
		start := len(buf)
		var err error
		if buf, err = AppendKey(buf, p.Key); err != nil {
			return nil, fmt.Errorf("%w (put %d)", err, i)
		}
		mid := len(buf)
		if buf, err = appendValue(buf, &p.Record); err != nil {
			return nil, fmt.Errorf("%w (put %d)", err, i)
		}
		spans = append(spans, span{start, mid, len(buf)})
	}
	for i, k := range deletes {
		start := len(buf)
		var err error
		if buf, err = AppendKey(buf, k); err != nil {
			return nil, fmt.Errorf("%w (delete %d)", err, i)
		}
		spans = append(spans, span{start, len(buf), -1})
	}
	for _, s := range spans {
		o := op{key: buf[s.key:s.end:s.end]}
		if s.val >= 0 {
			o.value = buf[s.end:s.val:s.val]
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// checkRecord reports a record that cannot be stored under k.
func checkRecord(k Key, rec crdt.Record) error {
	if rec.Kind != k.Kind {
		return fmt.Errorf("%w: %v record under a %v key", ErrBadRecord, rec.Kind, k.Kind)
	}
	if rec.Kind == crdt.KindCursor && rec.Cursor.Video != "" && rec.Cursor.Video != k.ID {
		return fmt.Errorf("%w: cursor of video %q under key id %q", ErrBadRecord, rec.Cursor.Video, k.ID)
	}
	return nil
}
