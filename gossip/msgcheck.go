package gossip

import (
	"encoding/binary"
	"errors"
)

// maxArrayLen bounds every array and map in a frame; with the frame size it
// bounds what a hostile frame can make the decoder allocate.
const maxArrayLen = 100_000

var errHostile = errors.New("declared length exceeds the frame")

// checkMsgpack walks one msgpack value (and everything nested in it) in b
// and returns the bytes after it. It refuses any string, binary, array or
// map whose declared length cannot fit in what is left of the frame (each
// element takes at least one byte) or exceeds maxArrayLen, so that the
// decoder, which allocates by declared length, never allocates for data
// that is not there.
func checkMsgpack(b []byte, depth int) ([]byte, error) {
	if depth > 32 {
		return nil, errors.New("nested too deep")
	}
	if len(b) == 0 {
		return nil, errors.New("truncated")
	}
	c := b[0]
	b = b[1:]
	need := func(n int) ([]byte, error) {
		if n < 0 || n > len(b) {
			return nil, errHostile
		}
		return b[n:], nil
	}
	u := func(n int) (int, []byte, error) {
		if len(b) < n {
			return 0, nil, errors.New("truncated")
		}
		var v uint64
		switch n {
		case 1:
			v = uint64(b[0])
		case 2:
			v = uint64(binary.BigEndian.Uint16(b))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b))
		}
		if v > 1<<31 {
			return 0, nil, errHostile
		}
		return int(v), b[n:], nil
	}
	items := func(n int, rest []byte) ([]byte, error) {
		if n > len(rest) || n > maxArrayLen {
			return nil, errHostile
		}
		var err error
		for range n {
			if rest, err = checkMsgpack(rest, depth+1); err != nil {
				return nil, err
			}
		}
		return rest, nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return b, nil
	case c >= 0x80 && c <= 0x8f:
		return items(2*int(c&0x0f), b)
	case c >= 0x90 && c <= 0x9f:
		return items(int(c&0x0f), b)
	case c >= 0xa0 && c <= 0xbf:
		return need(int(c & 0x1f))
	}
	switch c {
	case 0xcc, 0xd0:
		return need(1)
	case 0xcd, 0xd1:
		return need(2)
	case 0xca, 0xce, 0xd2:
		return need(4)
	case 0xcb, 0xcf, 0xd3:
		return need(8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 (+ type byte)
		return need(1 + []int{1, 2, 4, 8, 16}[c-0xd4])
	case 0xc4, 0xd9: // bin 8, str 8
		n, rest, err := u(1)
		if err != nil {
			return nil, err
		}
		b = rest
		return need(n)
	case 0xc5, 0xda:
		n, rest, err := u(2)
		if err != nil {
			return nil, err
		}
		b = rest
		return need(n)
	case 0xc6, 0xdb:
		n, rest, err := u(4)
		if err != nil {
			return nil, err
		}
		b = rest
		return need(n)
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type, data
		n, rest, err := u([]int{1, 2, 4}[c-0xc7])
		if err != nil {
			return nil, err
		}
		b = rest
		return need(n + 1)
	case 0xdc, 0xde:
		n, rest, err := u(2)
		if err != nil {
			return nil, err
		}
		if c == 0xde {
			n *= 2
		}
		return items(n, rest)
	case 0xdd, 0xdf:
		n, rest, err := u(4)
		if err != nil {
			return nil, err
		}
		if c == 0xdf {
			n *= 2
		}
		return items(n, rest)
	}
	return nil, errors.New("unknown msgpack type byte")
}
