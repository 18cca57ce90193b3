package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// Result is one run's outcome; `playhead-bench --json F` writes it.
//
// Counts cover the measured window only: operations whose intended send time
// lies in [warm-up end, end of run). Throughput counts served operations
// (2xx and 409 stale); errors are counted apart, by HTTP status or kind.
type Result struct {
	Workload    string    `json:"workload"`
	URL         string    `json:"url"`
	Mode        string    `json:"mode"`                  // "open" or "closed"
	TargetRate  float64   `json:"target_rate,omitempty"` // open loop: requests/s asked for
	Concurrency int       `json:"concurrency"`
	Duration    float64   `json:"duration_s"`
	Warmup      float64   `json:"warmup_s"`
	Seed        uint64    `json:"seed"`
	Started     time.Time `json:"started"`
	Profiles    int       `json:"profiles"`
	Videos      int       `json:"videos"`
	ZipfS       float64   `json:"zipf_s"`
	Batch       int       `json:"batch,omitempty"`

	Ops           int64            `json:"ops"`             // requests completed in the window, errors included
	OK            int64            `json:"ok"`              // 2xx (for ws: acks with applied true or false)
	Stale         int64            `json:"stale_409"`       // served as 409 stale_write: a race on one cursor, not an error
	NotFound      int64            `json:"not_found"`       // read: 404 (a cursor never written)
	Errors        map[string]int64 `json:"errors"`          // by HTTP status ("429", "503") or kind ("transport", "timeout", "ws_read")
	Unsent        int64            `json:"unsent"`          // open loop: scheduled in the window but never started (server too slow for --concurrency in flight)
	OpsPerSec     float64          `json:"ops_per_sec"`     // served ops (OK+Stale+NotFound) per second
	Updates       int64            `json:"updates"`         // position updates in served write ops (batch: N per request)
	UpdatesPerSec float64          `json:"updates_per_sec"` // Updates per second
	Latency       Summary          `json:"latency"`         // served ops; propagation: write send → push received

	// Timeline is the served operations in each second of the run, warm-up
	// and drain included (the progress line's figures).
	Timeline []float64 `json:"timeline_served_per_s"`

	// Propagation only.
	Push         string   `json:"push,omitempty"` // ws or sse
	Subscribers  int      `json:"subscribers,omitempty"`
	Applied      int64    `json:"applied,omitempty"`       // writes answered applied (each should push once)
	Delivered    int64    `json:"delivered,omitempty"`     // of those, pushes received and matched
	WriteLatency *Summary `json:"write_latency,omitempty"` // the writers' own request latency

	// Filled in by Compare: CPU seconds the system under test used during
	// the measured window and its resident memory at the end.
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	ServerRSSBytes   int64   `json:"server_rss_bytes,omitempty"`
}

// ErrorCount is the total of Errors.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteTable writes a human-readable summary.
func (r *Result) WriteTable(w io.Writer) {
	mode := r.Mode + " loop"
	if r.Mode == "open" {
		mode += fmt.Sprintf(" at %.0f/s", r.TargetRate)
	}
	fmt.Fprintf(w, "%s against %s: %s, %d in flight max, %.0fs measured after %.0fs warm-up, seed %d\n",
		r.Workload, r.URL, mode, r.Concurrency, r.Duration, r.Warmup, r.Seed)
	fmt.Fprintf(w, "%10s %10s %10s %9s %9s %9s %9s %9s %9s\n", "ops", "ops/s", "updates/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors")
	l := r.Latency
	fmt.Fprintf(w, "%10d %10.0f %10.0f %9.2f %9.2f %9.2f %9.2f %9.2f %9d\n",
		r.Ops, r.OpsPerSec, r.UpdatesPerSec, l.P50, l.P90, l.P99, l.P999, l.Max, r.ErrorCount())
	if r.Workload == "propagation" {
		fmt.Fprintf(w, "  latency above: write sent -> push received on another device (%s), %d of %d applied writes delivered\n", r.Push, r.Delivered, r.Applied)
		if wl := r.WriteLatency; wl != nil {
			fmt.Fprintf(w, "  the writes themselves: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", wl.P50, wl.P99, wl.Max)
		}
	}
	if r.Stale > 0 {
		fmt.Fprintf(w, "  409 stale (served: two writes raced on one cursor): %d\n", r.Stale)
	}
	if r.NotFound > 0 {
		fmt.Fprintf(w, "  404 (served: no cursor): %d\n", r.NotFound)
	}
	if r.Unsent > 0 {
		fmt.Fprintf(w, "  NOT SUSTAINED: %d scheduled requests never started (raise --concurrency or lower --rate)\n", r.Unsent)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "  error %s: %d\n", k, r.Errors[k])
	}
}
