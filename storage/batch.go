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
func encodeOps(puts []Put, deletes []Key) ([]op, error) {
	ops := make([]op, 0, len(puts)+len(deletes))
	for i, p := range puts {
		if err := checkRecord(p.Key, p.Record); err != nil {
			return nil, fmt.Errorf("%w (put %d)", err, i)
		}
		key, err := EncodeKey(p.Key)
		if err != nil {
			return nil, fmt.Errorf("%w (put %d)", err, i)
		}
		val, err := EncodeValue(p.Record)
		if err != nil {
			return nil, fmt.Errorf("%w (put %d)", err, i)
		}
		ops = append(ops, op{key: key, value: val})
	}
	for i, k := range deletes {
		key, err := EncodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("%w (delete %d)", err, i)
		}
		ops = append(ops, op{key: key})
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
