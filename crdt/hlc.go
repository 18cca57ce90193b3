package crdt

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// HLC is a hybrid logical clock timestamp (Kulkarni et al., 2014): physical
// milliseconds since the Unix epoch in the high 48 bits and a logical counter
// in the low 16 bits. Ordering HLCs as integers orders them as (physical,
// logical) pairs. The zero HLC is "never".
//
// On the wire (JSON) an HLC travels as a decimal string, because JavaScript
// numbers cannot hold 64-bit integers; see MarshalJSON.
//
// Format: stored on disk and sent between nodes as a uint64 (msgpack,
// varints in storage/codec_cursor.go); never change the type or the bit
// layout (storage/testdata/golden and crdt/testdata/golden pin the bytes).
type HLC uint64

const (
	logicalBits = 16
	logicalMask = 1<<logicalBits - 1
	// MaxPhysicalMs is the largest physical time an HLC can carry.
	MaxPhysicalMs = 1<<48 - 1
)

// Errors returned by this package.
var (
	// ErrClockSkew reports a timestamp further ahead of the local clock than
	// the allowed skew: a device or peer with a broken clock.
	ErrClockSkew = errors.New("crdt: timestamp too far in the future")
	// ErrBadHLC reports text that is not a decimal HLC.
	ErrBadHLC = errors.New("crdt: malformed HLC")
)

// NewHLC builds a timestamp from physical milliseconds and a logical counter.
func NewHLC(physicalMs int64, logical uint16) HLC {
	if physicalMs < 0 {
		physicalMs = 0
	}
	if physicalMs > MaxPhysicalMs {
		physicalMs = MaxPhysicalMs
	}
	return HLC(uint64(physicalMs)<<logicalBits | uint64(logical))
}

// Physical returns the physical part in milliseconds since the Unix epoch.
func (h HLC) Physical() int64 { return int64(h >> logicalBits) }

// Logical returns the logical counter.
func (h HLC) Logical() uint16 { return uint16(h & logicalMask) }

// Time converts the physical part to a time.Time in UTC. It is a conversion,
// not a clock read.
func (h HLC) Time() time.Time { return time.UnixMilli(h.Physical()).UTC() }

// String formats the timestamp as a decimal integer.
func (h HLC) String() string { return strconv.FormatUint(uint64(h), 10) }

// ParseHLC parses a decimal HLC.
func ParseHLC(s string) (HLC, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrBadHLC, s)
	}
	return HLC(v), nil
}

// MarshalJSON writes the HLC as a JSON string of decimal digits.
func (h HLC) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 22)
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(h), 10)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts a JSON string of decimal digits or a JSON number.
func (h *HLC) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := ParseHLC(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Clock is a hybrid logical clock. It never reads the wall clock: callers pass
// physical time in milliseconds. It is safe for concurrent use (lock-free).
//
// Invariant: the values returned by Now and Update strictly increase.
type Clock struct {
	last atomic.Uint64
	// MaxSkewMs bounds how far ahead of local physical time a received
	// timestamp may be. Zero disables the check.
	MaxSkewMs int64
}

// NewClock returns a clock that refuses timestamps more than maxSkew ahead.
func NewClock(maxSkew time.Duration) *Clock {
	return &Clock{MaxSkewMs: maxSkew.Milliseconds()}
}

// Last returns the latest timestamp issued or observed.
func (c *Clock) Last() HLC { return HLC(c.last.Load()) }

// Now issues a new timestamp for a local event at physical time physicalMs.
func (c *Clock) Now(physicalMs int64) HLC {
	for {
		last := HLC(c.last.Load())
		next := tick(last, NewHLC(physicalMs, 0))
		if c.last.CompareAndSwap(uint64(last), uint64(next)) {
			return next
		}
	}
}

// Check reports ErrClockSkew when remote is more than MaxSkewMs ahead of
// physicalMs. It does not change the clock.
func (c *Clock) Check(remote HLC, physicalMs int64) error {
	if c.MaxSkewMs > 0 && remote.Physical() > physicalMs+c.MaxSkewMs {
		return fmt.Errorf("%w: %d ms ahead (allowed %d ms)", ErrClockSkew,
			remote.Physical()-physicalMs, c.MaxSkewMs)
	}
	return nil
}

// Update merges a received timestamp into the clock (the HLC receive rule)
// and returns a new local timestamp that is larger than both remote and every
// timestamp issued before. A remote timestamp beyond the skew bound is
// refused with ErrClockSkew and leaves the clock unchanged.
func (c *Clock) Update(remote HLC, physicalMs int64) (HLC, error) {
	if err := c.Check(remote, physicalMs); err != nil {
		return 0, err
	}
	for {
		last := HLC(c.last.Load())
		base := last
		if remote > base {
			base = remote
		}
		next := tick(base, NewHLC(physicalMs, 0))
		if c.last.CompareAndSwap(uint64(last), uint64(next)) {
			return next, nil
		}
	}
}

// Observe advances the clock to at least remote without issuing a timestamp,
// and without a skew check. Used by devices that follow a server's clock.
func (c *Clock) Observe(remote HLC) {
	for {
		last := c.last.Load()
		if uint64(remote) <= last || c.last.CompareAndSwap(last, uint64(remote)) {
			return
		}
	}
}

// tick returns the smallest timestamp greater than last that is not below
// the physical reading phys.
func tick(last, phys HLC) HLC {
	if phys > last {
		return phys // physical time moved on: logical counter restarts at 0
	}
	// Physical time did not move past last: bump the logical counter. On
	// overflow of the 16-bit counter the increment carries into the physical
	// part, which keeps the order strict (a clock running 1 ms ahead).
	return last + 1
}
