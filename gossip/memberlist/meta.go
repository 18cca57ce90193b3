package memberlist

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
)

// Node metadata: what a member publishes about itself through memberlist
// (Delegate.NodeMeta), so that others can reach its services.
//
// Encoding: one format byte, then the msgpack map of memberMeta's fields
// under one-letter keys (a map, not an array, so that nodes of different
// releases can talk: a decoder skips keys it does not know and leaves absent
// fields empty). This is a wire format: add fields under new keys, never
// reuse a key or a format byte.
const memberMetaV1 byte = 1

// maxMetaAddr bounds each published address, so the whole encoding always
// fits memberlist.MetaMaxSize (512 bytes).
const maxMetaAddr = 128

// ErrBadMeta is returned for node metadata that cannot be decoded.
var ErrBadMeta = errors.New("memberlist: bad node metadata")

// memberMeta is what a node publishes. FORMAT: gossiped to every member, a
// msgpack map under these keys; changing keys/types breaks mixed-version
// clusters; see meta_golden_test.go.
type memberMeta struct {
	RPC  string `msgpack:"r,omitempty"`
	HTTP string `msgpack:"h,omitempty"`
	Raft string `msgpack:"f,omitempty"`
	// Leaving is set by a member about to leave gracefully (see
	// Memberlist.Leave): when it then goes, the others report it Left, not
	// Dead.
	Leaving bool `msgpack:"l,omitempty"`
}

func encodeMemberMeta(m memberMeta) ([]byte, error) {
	for _, a := range []string{m.RPC, m.HTTP, m.Raft} {
		if len(a) > maxMetaAddr {
			return nil, fmt.Errorf("memberlist: published address %.32q… is %d bytes, at most %d fit the node metadata", a, len(a), maxMetaAddr)
		}
	}
	var buf bytes.Buffer
	buf.WriteByte(memberMetaV1)
	enc := msgpack.NewEncoder(&buf)
	if err := enc.Encode(&m); err != nil {
		return nil, fmt.Errorf("memberlist: encoding node metadata: %w", err)
	}
	if buf.Len() > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("memberlist: node metadata is %d bytes, memberlist allows %d", buf.Len(), memberlist.MetaMaxSize)
	}
	return buf.Bytes(), nil
}

// decodeMemberMeta decodes what encodeMemberMeta produced. It never panics;
// empty input (a member that publishes nothing) decodes to empty addresses.
func decodeMemberMeta(b []byte) (memberMeta, error) {
	var m memberMeta
	if len(b) == 0 {
		return m, nil
	}
	if b[0] != memberMetaV1 {
		return memberMeta{}, fmt.Errorf("%w: unknown format %d", ErrBadMeta, b[0])
	}
	if len(b) > memberlist.MetaMaxSize+1 {
		return memberMeta{}, fmt.Errorf("%w: %d bytes", ErrBadMeta, len(b))
	}
	r := bytes.NewReader(b[1:])
	// A fresh decoder (not a pooled one): see storage.DecodeValue.
	if err := msgpack.NewDecoder(r).Decode(&m); err != nil {
		return memberMeta{}, fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	if r.Len() != 0 {
		return memberMeta{}, fmt.Errorf("%w: %d trailing bytes", ErrBadMeta, r.Len())
	}
	return m, nil
}
