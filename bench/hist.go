// Package bench is playhead's load generator: simulated devices against any
// playhead-compatible URL, with HDR latency histograms and JSON results.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Hist is a concurrency-safe HDR histogram of latencies in microseconds
// (1 µs .. 60 s, 3 significant digits).
type Hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewHist returns an empty histogram.
func NewHist() *Hist { return &Hist{h: hdrhistogram.New(1, 60_000_000, 3)} }

// Record adds one latency; values out of range are clamped.
func (h *Hist) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	if us > 60_000_000 {
		us = 60_000_000
	}
	h.mu.Lock()
	_ = h.h.RecordValue(us)
	h.mu.Unlock()
}

// Count is the number of recorded values.
func (h *Hist) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Summary is the latency percentiles of a histogram, in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	// CDF is (percentile, ms) points for plotting.
	CDF [][2]float64 `json:"cdf,omitempty"`
}

func ms(us int64) float64 { return float64(us) / 1000 }

// Summarize computes the percentiles.
func (h *Hist) Summarize() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Summary{Count: h.h.TotalCount()}
	if s.Count == 0 {
		return s
	}
	s.Mean = h.h.Mean() / 1000
	s.P50 = ms(h.h.ValueAtQuantile(50))
	s.P90 = ms(h.h.ValueAtQuantile(90))
	s.P99 = ms(h.h.ValueAtQuantile(99))
	s.P999 = ms(h.h.ValueAtQuantile(99.9))
	s.Max = ms(h.h.Max())
	for _, q := range []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100} {
		s.CDF = append(s.CDF, [2]float64{q, ms(h.h.ValueAtQuantile(q))})
	}
	return s
}

// Result is one run's outcome; --json writes it.
type Result struct {
	Workload    string           `json:"workload"`
	URL         string           `json:"url"`
	Mode        string           `json:"mode"` // "open" or "closed"
	Rate        float64          `json:"target_rate,omitempty"`
	Concurrency int              `json:"concurrency"`
	Duration    float64          `json:"duration_s"`
	Ops         int64            `json:"ops"`
	OK          int64            `json:"ok"`
	OpsPerSec   float64          `json:"ops_per_sec"`
	Updates     int64            `json:"updates"`   // position updates carried (batch: ops*N)
	Stale409    int64            `json:"stale_409"` // 409 answers: served, but refused as stale (not errors)
	Errors      map[string]int64 `json:"errors"`    // by HTTP status or error kind
	Latency     Summary          `json:"latency"`
	Seed        uint64           `json:"seed"`
	Started     time.Time        `json:"started"`
}

// WriteJSON writes r indented.
func (r *Result) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteTable writes a human-readable table.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "workload %s  url %s  mode %s  duration %.1fs  seed %d\n", r.Workload, r.URL, r.Mode, r.Duration, r.Seed)
	fmt.Fprintf(w, "%10s %10s %9s %9s %9s %9s %9s %9s\n", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors")
	var errs int64
	for _, v := range r.Errors {
		errs += v
	}
	l := r.Latency
	fmt.Fprintf(w, "%10d %10.1f %9.2f %9.2f %9.2f %9.2f %9.2f %9d\n", r.Ops, r.OpsPerSec, l.P50, l.P90, l.P99, l.P999, l.Max, errs)
	if r.Stale409 > 0 {
		fmt.Fprintf(w, "  409 stale (served, not errors): %d\n", r.Stale409)
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  error %s: %d\n", k, r.Errors[k])
	}
}

// Zipf picks indices in [0, n) with a Zipf(s, v=1) law from a seeded source;
// the same seed gives the same sequence.
type Zipf struct{ z *rand.Zipf }

// NewZipf returns a Zipf picker; s must be > 1 (1.1 is a typical catalogue skew).
func NewZipf(seed uint64, s float64, n int) *Zipf {
	if s <= 1 {
		s = 1.0001
	}
	if n < 1 {
		n = 1
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Zipf{z: rand.NewZipf(r, s, 1, uint64(n-1))}
}

// Next returns the next index.
func (z *Zipf) Next() int { return int(z.z.Uint64()) }
