package node

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// wsUpdate is a device message over the WebSocket: only "update" is
// defined. JSON messages are read as wsMessage (whose id is checked for
// type by hand) and turned into one.
type wsUpdate struct {
	Type string  `json:"type"`
	ID   *string `json:"id"`
	updateBody
}

// encodeMsgpack encodes v as msgpack with the keys of its JSON tags and
// integers in their compact form (HLCs are unsigned integers). Encoders are
// pooled: a new one per message (and its growing buffer) was a tenth of the
// WebSocket push path's allocations.
func encodeMsgpack(v any) []byte {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.buf.Reset()
	_ = e.enc.Encode(v) // plain structs of strings and numbers cannot fail
	out := bytes.Clone(e.buf.Bytes())
	if e.buf.Cap() <= 64<<10 { // do not keep a huge buffer for ever
		msgpackEncoders.Put(e)
	}
	return out
}

// appendMsgpackArrayLen appends the header of an array of n elements, as
// the encoder writes it.
func appendMsgpackArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, msgpcode.FixedArrayLow|byte(n))
	case n <= 0xffff:
		return append(b, msgpcode.Array16, byte(n>>8), byte(n))
	default:
		return append(b, msgpcode.Array32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// msgpackEncoder is a pooled encoder writing into its own buffer.
type msgpackEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := &msgpackEncoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.SetCustomStructTag("json")
	e.enc.UseCompactInts(true)
	return e
}}

// decodeMsgpackUpdates decodes a msgpack device message: one update (a map)
// or an array of at most max updates. Unknown keys are ignored, as in JSON.
// A fresh decoder over the message's bytes bounds what a hostile length can
// allocate (the message itself is bounded by the read limit).
func decodeMsgpackUpdates(data []byte, limit int) (msgs []wsUpdate, array bool, err error) {
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	dec.SetCustomStructTag("json")
	code, err := dec.PeekCode()
	if err != nil {
		return nil, false, errBadRequest("empty msgpack message")
	}
	if msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32 {
		n, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, true, errBadRequest("malformed msgpack: %v", err)
		}
		if n > limit || n > r.Len() { // every update takes at least a byte
			return nil, true, errBadRequest("a message holds at most %d updates, got %d; split it", limit, n)
		}
		msgs = make([]wsUpdate, max(n, 0))
		array = true
	} else {
		msgs = make([]wsUpdate, 1)
	}
	for i := range msgs {
		if err := dec.Decode(&msgs[i]); err != nil {
			return nil, array, errBadRequest("malformed msgpack (update %d): %v; updates are maps with the JSON API's keys, HLCs as unsigned integers", i, err)
		}
	}
	if r.Len() != 0 {
		return nil, array, errBadRequest("malformed msgpack: %d bytes after the message", r.Len())
	}
	return msgs, array, nil
}
