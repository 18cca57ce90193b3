package client

import (
	"math/rand/v2"
	"time"
)

// Default reconnect backoff.
const (
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffCap  = 30 * time.Second
)

// Backoff computes reconnect delays: exponential with full jitter — the
// n-th consecutive failure waits a uniform random time in
// [0, min(Cap, Base·2ⁿ)) — which spreads a crowd of devices that lost the
// same node instead of having them return in lockstep. Randomness comes
// from the Rand given, so a seeded one makes the delays reproducible.
//
// Not safe for concurrent use.
type Backoff struct {
	base, cap time.Duration
	rnd       *rand.Rand
	attempt   uint
}

// NewBackoff returns a backoff; base and cap <= 0 take the defaults.
func NewBackoff(base, cap time.Duration, rnd *rand.Rand) *Backoff {
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if cap <= 0 {
		cap = DefaultBackoffCap
	}
	if cap < base {
		cap = base
	}
	return &Backoff{base: base, cap: cap, rnd: rnd}
}

// Ceiling returns the upper bound of the next delay.
func (b *Backoff) Ceiling() time.Duration {
	ceil := b.cap
	if b.attempt < 62 && b.base<<b.attempt > 0 && b.base<<b.attempt < b.cap {
		ceil = b.base << b.attempt
	}
	return ceil
}

// Next returns the delay before the next attempt and counts a failure.
func (b *Backoff) Next() time.Duration {
	d := time.Duration(b.rnd.Int64N(int64(b.Ceiling())))
	if b.attempt < 62 {
		b.attempt++
	}
	return d
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Failures returns the consecutive failures counted since the last Reset.
func (b *Backoff) Failures() int { return int(b.attempt) }
