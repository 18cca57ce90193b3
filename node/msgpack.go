package node

import (
	"bytes"

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
// integers in their compact form (HLCs are unsigned integers).
func encodeMsgpack(v any) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	_ = enc.Encode(v) // plain structs of strings and numbers cannot fail
	return buf.Bytes()
}

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
