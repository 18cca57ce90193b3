package bench

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 60 s at 3 significant digits (0.1 % resolution).
const (
	histMinUs  = 1
	histMaxUs  = 60_000_000
	histDigits = 3
)

// Hist is an HDR histogram of latencies in microseconds. It is safe for
// concurrent use; a run gives each shard of workers its own to keep the lock
// uncontended.
type Hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram // guarded by mu
}

// NewHist returns an empty histogram.
func NewHist() *Hist { return &Hist{h: hdrhistogram.New(histMinUs, histMaxUs, histDigits)} }

// Record adds one latency; values outside 1 µs..60 s are clamped into range.
func (h *Hist) Record(d time.Duration) {
	us := min(max(d.Microseconds(), histMinUs), histMaxUs)
	h.mu.Lock()
	_ = h.h.RecordValue(us) // in range by construction
	h.mu.Unlock()
}

// Count is the number of recorded values.
func (h *Hist) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Merge adds every value of o to h. h and o must differ.
func (h *Hist) Merge(o *Hist) {
	o.mu.Lock()
	c := hdrhistogram.Import(o.h.Export())
	o.mu.Unlock()
	h.mu.Lock()
	h.h.Merge(c)
	h.mu.Unlock()
}

// drainInto adds every value of h to dst and empties h, atomically with
// respect to Record on h.
func (h *Hist) drainInto(dst *Hist) {
	h.mu.Lock()
	snap := hdrhistogram.Import(h.h.Export())
	h.h.Reset()
	h.mu.Unlock()
	dst.mu.Lock()
	dst.h.Merge(snap)
	dst.mu.Unlock()
}

// cdfQuantiles are the percentiles a Summary keeps for plotting: dense in
// the tail, where the systems differ.
var cdfQuantiles = []float64{0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 99,
	99.25, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999, 100}

// Summary is a histogram's percentiles, in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	// CDF holds [percentile, ms] points for plots (cdfQuantiles).
	CDF [][2]float64 `json:"cdf,omitempty"`
}

func usToMs(us int64) float64 { return float64(us) / 1000 }

// Summarize computes the percentiles (HDR "value at quantile": the highest
// value equivalent to the recorded one at that rank, so never optimistic).
func (h *Hist) Summarize() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Summary{Count: h.h.TotalCount()}
	if s.Count == 0 {
		return s
	}
	s.Mean = h.h.Mean() / 1000
	s.P50 = usToMs(h.h.ValueAtQuantile(50))
	s.P90 = usToMs(h.h.ValueAtQuantile(90))
	s.P99 = usToMs(h.h.ValueAtQuantile(99))
	s.P999 = usToMs(h.h.ValueAtQuantile(99.9))
	s.Max = usToMs(h.h.Max())
	for _, q := range cdfQuantiles {
		s.CDF = append(s.CDF, [2]float64{q, usToMs(h.h.ValueAtQuantile(q))})
	}
	return s
}

// shardedHist spreads records over a few Hists (one lock each) and keeps a
// second set for the progress line's last-second window.
type shardedHist struct {
	total, window []*Hist
}

func newShardedHist(n int) *shardedHist {
	s := &shardedHist{total: make([]*Hist, n), window: make([]*Hist, n)}
	for i := range n {
		s.total[i], s.window[i] = NewHist(), NewHist()
	}
	return s
}

// record adds d to shard i (any int; taken modulo the shard count).
func (s *shardedHist) record(i int, d time.Duration) {
	i %= len(s.total)
	s.total[i].Record(d)
	s.window[i].Record(d)
}

// merged returns all shards' totals in one histogram.
func (s *shardedHist) merged() *Hist {
	m := NewHist()
	for _, h := range s.total {
		m.Merge(h)
	}
	return m
}

// takeWindow returns the values recorded since the last call.
func (s *shardedHist) takeWindow() *Hist {
	m := NewHist()
	for _, h := range s.window {
		h.drainInto(m)
	}
	return m
}
