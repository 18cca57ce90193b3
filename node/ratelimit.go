package node

import (
	"hash/maphash"
	"math"
	"sync"
)

// limiter is a set of token buckets keyed by string (account, or account and
// device), with bounded memory. Time comes from the caller in milliseconds,
// so tests are deterministic.
//
// Eviction: a bucket that has refilled to its burst is indistinguishable
// from a new one, so idle buckets are dropped first; if the map is still
// full, an arbitrary eighth is dropped, which only ever grants those keys a
// fresh burst.
type limiter struct {
	ratePerMs float64 // tokens added per millisecond; <= 0 disables the limiter
	burst     float64
	maxPer    int // bound of each shard
	seed      maphash.Seed
	shards    [limiterShards]limiterShard
}

const limiterShards = 32

type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]*bucket // guarded by mu
}

type bucket struct {
	tokens float64
	lastMs int64
}

func newLimiter(ratePerSec float64, burst, maxKeys int) *limiter {
	l := &limiter{ratePerMs: ratePerSec / 1000, burst: float64(burst), seed: maphash.MakeSeed()}
	l.maxPer = max(1, maxKeys/limiterShards)
	for i := range l.shards {
		l.shards[i].buckets = map[string]*bucket{}
	}
	return l
}

// allow takes one token from key's bucket at nowMs. When the bucket is
// empty it returns false and the whole seconds until a token is available
// (at least 1).
// enabled reports whether the limiter limits anything (a rate of 0 or less
// allows everything).
func (l *limiter) enabled() bool { return l.ratePerMs > 0 }

func (l *limiter) allow(key string, nowMs int64) (ok bool, retryAfter int) {
	if l.ratePerMs <= 0 {
		return true, 0
	}
	s := &l.shards[maphash.String(l.seed, key)%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b, found := s.buckets[key]
	if !found {
		if len(s.buckets) >= l.maxPer {
			l.evictLocked(s, nowMs)
		}
		b = &bucket{tokens: l.burst, lastMs: nowMs}
		s.buckets[key] = b
	}
	if nowMs > b.lastMs {
		b.tokens = math.Min(l.burst, b.tokens+float64(nowMs-b.lastMs)*l.ratePerMs)
		b.lastMs = nowMs
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	waitMs := (1 - b.tokens) / l.ratePerMs
	return false, max(1, int(math.Ceil(waitMs/1000)))
}

func (l *limiter) evictLocked(s *limiterShard, nowMs int64) {
	for k, b := range s.buckets {
		if b.tokens+float64(nowMs-b.lastMs)*l.ratePerMs >= l.burst {
			delete(s.buckets, k)
		}
	}
	n := len(s.buckets) - l.maxPer*7/8
	for k := range s.buckets {
		if n <= 0 {
			break
		}
		delete(s.buckets, k)
		n--
	}
}

// size returns the number of buckets held (tests).
func (l *limiter) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
