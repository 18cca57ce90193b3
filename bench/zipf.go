package bench

import "math/rand/v2"

// Zipf picks indices in [0, n) with a Zipf law (P(k) ∝ (1+k)^-s): index 0 is
// the hottest profile or video. The same seed gives the same sequence.
type Zipf struct{ z *rand.Zipf }

// NewZipf returns a picker with its own PCG source seeded by seed. s must be
// > 1 (1.1 is a typical catalogue skew); smaller values are raised to 1.0001.
func NewZipf(seed uint64, s float64, n int) *Zipf {
	return newZipf(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), s, n)
}

func newZipf(r *rand.Rand, s float64, n int) *Zipf {
	if s <= 1 {
		s = 1.0001
	}
	n = max(n, 1)
	return &Zipf{z: rand.NewZipf(r, s, 1, uint64(n-1))}
}

// Next returns the next index.
func (z *Zipf) Next() int { return int(z.z.Uint64()) }

// picker picks a profile or video index.
type picker interface{ Next() int }

// uniform picks indices in [0, n) with equal probability.
type uniform struct {
	r *rand.Rand
	n int
}

func (u uniform) Next() int { return u.r.IntN(max(u.n, 1)) }
