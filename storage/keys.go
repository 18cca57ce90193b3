package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/playhead/playhead/crdt"
)

// Key encoding (DESIGN.md §5, "Storage layout"):
//
//	partition      2 bytes, big-endian
//	len(account)   1 byte, then the account's bytes
//	len(profile)   1 byte, then the profile's bytes
//	kind           1 byte (crdt.Kind)
//	id             the remaining bytes (at most MaxIDLen)
//
// Byte order therefore sorts by partition, then (account, profile), then kind,
// then id: one partition is one contiguous range, one profile's records are
// contiguous inside it, and so are one profile's records of one kind. The
// length prefixes keep ids that are prefixes of each other apart: account "a"
// with profile "bc" and account "ab" with profile "c" never share a prefix.
//
// The encoding is canonical: DecodeKey accepts exactly the byte strings that
// EncodeKey produces.
//
// Format: this is an on-disk format (and gossip sends keys in it). Never
// reorder, resize or remove a part: changing it needs a migration and a new
// golden file; storage/testdata/golden/keys.hex pins this layout.
const (
	partitionLen = 2
	// minKeyLen is a key with empty account, profile and id.
	minKeyLen = partitionLen + 1 + 1 + 1
)

// EncodeKey returns the encoding of k. It fails with ErrBadKey when an id is
// longer than MaxIDLen, the kind is unknown, or a profile key has an id.
func EncodeKey(k Key) ([]byte, error) {
	return AppendKey(make([]byte, 0, minKeyLen+len(k.Account)+len(k.Profile)+len(k.ID)), k)
}

// AppendKey appends the encoding of k to dst and returns the extended slice;
// see EncodeKey.
func AppendKey(dst []byte, k Key) ([]byte, error) {
	if err := checkKey(k); err != nil {
		return dst, err
	}
	dst = appendProfilePrefix(dst, k.Partition, k.Account, k.Profile)
	dst = append(dst, byte(k.Kind))
	return append(dst, k.ID...), nil
}

// DecodeKey parses an encoded key. It fails with an error wrapping ErrCorrupt
// on any input that EncodeKey cannot produce; it never panics.
func DecodeKey(b []byte) (Key, error) {
	var k Key
	if len(b) < minKeyLen {
		return k, fmt.Errorf("%w: key of %d bytes is too short", ErrCorrupt, len(b))
	}
	k.Partition = binary.BigEndian.Uint16(b)
	rest := b[partitionLen:]
	var ok bool
	if k.Account, rest, ok = cutLenPrefixed(rest); !ok {
		return Key{}, fmt.Errorf("%w: key %x: account overruns the key", ErrCorrupt, b)
	}
	if k.Profile, rest, ok = cutLenPrefixed(rest); !ok {
		return Key{}, fmt.Errorf("%w: key %x: profile overruns the key", ErrCorrupt, b)
	}
	if len(rest) == 0 {
		return Key{}, fmt.Errorf("%w: key %x has no kind", ErrCorrupt, b)
	}
	k.Kind, k.ID = crdt.Kind(rest[0]), string(rest[1:])
	if err := checkKey(k); err != nil {
		return Key{}, fmt.Errorf("%w: key %x: %v", ErrCorrupt, b, err)
	}
	return k, nil
}

// PartitionBounds returns the key range [lower, upper) that holds every
// record of partition p. upper is nil (unbounded) for the last partition.
func PartitionBounds(p uint16) (lower, upper []byte) {
	lower = binary.BigEndian.AppendUint16(nil, p)
	if p < 1<<16-1 {
		upper = binary.BigEndian.AppendUint16(nil, p+1)
	}
	return lower, upper
}

// ProfileBounds returns the key range [lower, upper) that holds the records
// of one profile, of the given kind only unless kind is 0. upper is nil when
// the range is unbounded (only possible for ids made of 0xff bytes in the
// last partition). It fails with ErrBadKey for ids over MaxIDLen or an
// unknown kind.
func ProfileBounds(partition uint16, account, profile string, kind crdt.Kind) (lower, upper []byte, err error) {
	if err := checkID("account", account); err != nil {
		return nil, nil, err
	}
	if err := checkID("profile", profile); err != nil {
		return nil, nil, err
	}
	if kind != 0 && !kind.Valid() {
		return nil, nil, fmt.Errorf("%w: unknown kind %d", ErrBadKey, kind)
	}
	lower = appendProfilePrefix(make([]byte, 0, minKeyLen+len(account)+len(profile)), partition, account, profile)
	if kind == 0 {
		return lower, prefixSuccessor(lower), nil
	}
	lower = append(lower, byte(kind))
	// kind < 0xff, so kind+1 does not overflow.
	upper = append(lower[:len(lower)-1:len(lower)-1], byte(kind)+1)
	return lower, upper, nil
}

func checkKey(k Key) error {
	if err := checkID("account", k.Account); err != nil {
		return err
	}
	if err := checkID("profile", k.Profile); err != nil {
		return err
	}
	if err := checkID("id", k.ID); err != nil {
		return err
	}
	if !k.Kind.Valid() {
		return fmt.Errorf("%w: unknown kind %d", ErrBadKey, k.Kind)
	}
	if k.Kind == crdt.KindProfile && k.ID != "" {
		return fmt.Errorf("%w: profile record with id %q (must be empty)", ErrBadKey, k.ID)
	}
	return nil
}

func checkID(what, s string) error {
	if len(s) > MaxIDLen {
		return fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrBadKey, what, len(s), MaxIDLen)
	}
	return nil
}

// appendProfilePrefix appends the part of a key shared by all records of one
// profile. The caller has checked the id lengths.
func appendProfilePrefix(dst []byte, partition uint16, account, profile string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, partition)
	dst = append(dst, byte(len(account)))
	dst = append(dst, account...)
	dst = append(dst, byte(len(profile)))
	return append(dst, profile...)
}

// cutLenPrefixed splits a 1-byte length-prefixed string off the front of b.
func cutLenPrefixed(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 || int(b[0]) > len(b)-1 {
		return "", nil, false
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], true
}

// prefixSuccessor returns the smallest key larger than every key that starts
// with prefix, or nil if there is none (prefix is all 0xff). It does not
// modify prefix.
func prefixSuccessor(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			up := append([]byte(nil), prefix[:i+1]...)
			up[i]++
			return up
		}
	}
	return nil
}
