package client

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestBackoffFullJitter: the n-th delay is uniform in [0, min(cap,
// base·2ⁿ)): it stays below the ceiling, spreads over the whole range,
// stops growing at the cap, and starts over after Reset.
func TestBackoffFullJitter(t *testing.T) {
	const base, cap = 250 * time.Millisecond, 30 * time.Second
	for n := 0; n < 10; n++ {
		ceil := min(cap, base<<n)
		lo, hi := ceil, time.Duration(0)
		for i := 0; i < 400; i++ {
			b := NewBackoff(base, cap, rand.New(rand.NewPCG(uint64(i), uint64(n))))
			for j := 0; j < n; j++ {
				b.Next()
			}
			if got := b.Ceiling(); got != ceil {
				t.Fatalf("after %d failures: ceiling %v, want %v", n, got, ceil)
			}
			d := b.Next()
			if d < 0 || d >= ceil {
				t.Fatalf("after %d failures: delay %v outside [0, %v)", n, d, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceil/10 || hi < ceil*9/10 {
			t.Fatalf("after %d failures: delays in [%v, %v], want spread over [0, %v) (full jitter)", n, lo, hi, ceil)
		}
	}
	b := NewBackoff(base, cap, rand.New(rand.NewPCG(1, 2)))
	for i := 0; i < 200; i++ {
		if d := b.Next(); d < 0 || d >= cap {
			t.Fatalf("failure %d: delay %v outside [0, cap)", i, d)
		}
	}
	if b.Ceiling() != cap {
		t.Fatalf("ceiling after many failures %v, want the cap", b.Ceiling())
	}
	b.Reset()
	if b.Ceiling() != base || b.Failures() != 0 {
		t.Fatalf("after Reset: ceiling %v, failures %d", b.Ceiling(), b.Failures())
	}
}

// TestBackoffSeeded: the same seed gives the same delays.
func TestBackoffSeeded(t *testing.T) {
	a := NewBackoff(0, 0, rand.New(rand.NewPCG(42, 1)))
	b := NewBackoff(0, 0, rand.New(rand.NewPCG(42, 1)))
	for i := 0; i < 20; i++ {
		if x, y := a.Next(), b.Next(); x != y {
			t.Fatalf("delay %d: %v vs %v with the same seed", i, x, y)
		}
	}
}
