package node

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/playhead/playhead/storage"
)

// metrics holds the node's Prometheus collectors, registered on a registry
// of its own (served on /metrics) and, when configured, on Config.Registry.
type metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec   // route, code
	latency     *prometheus.HistogramVec // route
	updates     *prometheus.CounterVec   // result: applied, stale
	pushSent    *prometheus.CounterVec   // transport: ws, sse, longpoll
	storeSync   prometheus.Histogram
	syncBatches prometheus.Histogram
	tokenCache  *prometheus.CounterVec // result: hit, miss
	rateLimited *prometheus.CounterVec // scope: device, account
	swept       prometheus.Collector   // a CounterFunc over sweptLocal and clusterSwept
	sweepErrors prometheus.Counter
	// sweptLocal counts what the single-node sweep purged or scrubbed;
	// clusterSwept, set in cluster mode, reads the Core's count (its sweep
	// is a step of the replication driver's tick, gossip/sweep.go).
	sweptLocal   atomic.Uint64
	clusterSwept atomic.Pointer[func() uint64]

	recordCache atomic.Pointer[storage.Cached] // set once the store is open
}

func newMetrics(hub *Hub, nodeID string, extra prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "playhead_http_requests_total", Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "playhead_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route pattern (push streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "playhead_updates_total", Help: "Position updates merged, by result: applied (now the cursor) or stale.",
		}, []string{"result"}),
		pushSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "playhead_push_events_sent_total", Help: "Push events written to devices, by transport.",
		}, []string{"transport"}),
		storeSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "playhead_store_sync_duration_seconds", Help: "Duration of write-ahead-log syncs of the store.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		syncBatches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "playhead_store_sync_batches", Help: "Writes made durable per write-ahead-log sync (group commit size).",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		tokenCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "playhead_token_cache_total", Help: "Token verifications, by result: hit (served from the cache) or miss.",
		}, []string{"result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "playhead_rate_limited_total", Help: "Requests refused with 429, by bucket scope.",
		}, []string{"scope"}),
		sweepErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "playhead_sweep_errors_total", Help: "Background sweep steps that failed.",
		}),
	}
	m.swept = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "playhead_sweep_records_total", Help: "Records purged or scrubbed by the background sweep (in a cluster: by this replica's sweep, anti-entropy's scan and on arrival).",
	}, func() float64 {
		n := m.sweptLocal.Load()
		if f := m.clusterSwept.Load(); f != nil {
			n += (*f)()
		}
		return float64(n)
	})
	own := []prometheus.Collector{
		m.requests, m.latency, m.updates, m.pushSent, m.storeSync, m.syncBatches,
		m.tokenCache, m.rateLimited, m.swept, m.sweepErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "playhead_push_subscribers", Help: "Push subscribers connected (WebSocket, SSE, long-poll).",
		}, func() float64 { return float64(hub.Active()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "playhead_record_cache_hits_total", Help: "Record reads served from the in-memory record cache (--record-cache).",
		}, func() float64 { h, _ := m.cacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "playhead_record_cache_misses_total", Help: "Record reads that went to the store.",
		}, func() float64 { _, ms := m.cacheStats(); return float64(ms) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "playhead_push_subscribers_dropped_total", Help: "Push subscribers dropped because their buffer was full.",
		}, func() float64 { return float64(hub.Dropped()) }),
	}
	for _, c := range own {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("node: registering metrics: %w", err)
		}
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if extra != nil {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node": nodeID}, extra)
		for _, c := range own {
			if err := wrapped.Register(c); err != nil {
				return nil, fmt.Errorf("node: registering metrics in Config.Registry (is another node with id %q registered there?): %w", nodeID, err)
			}
		}
	}
	// Pre-create the common series so they show up at 0 before traffic.
	for _, r := range []string{"applied", "stale"} {
		m.updates.WithLabelValues(r)
	}
	for _, t := range []string{transportWS, transportSSE, transportLongPoll} {
		m.pushSent.WithLabelValues(t)
	}
	for _, r := range []string{"hit", "miss"} {
		m.tokenCache.WithLabelValues(r)
	}
	for _, s := range []string{"device", "account"} {
		m.rateLimited.WithLabelValues(s)
	}
	return m, nil
}

func (m *metrics) cacheStats() (hits, misses uint64) {
	if c := m.recordCache.Load(); c != nil {
		return c.Stats()
	}
	return 0, 0
}

// onSync is the store's OnSync hook: fast and non-blocking.
func (m *metrics) onSync(d time.Duration, batches int) {
	m.storeSync.Observe(d.Seconds())
	if batches > 0 {
		m.syncBatches.Observe(float64(batches))
	}
}

func (m *metrics) onTokenCache(hit bool) {
	if hit {
		m.tokenCache.WithLabelValues("hit").Inc()
	} else {
		m.tokenCache.WithLabelValues("miss").Inc()
	}
}
