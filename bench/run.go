package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// outcome is how a served or failed operation ended.
type outcome struct {
	kind    string // "" ok, kindStale, kindNotFound, or an error kind
	updates int    // position updates the operation carried
}

const (
	kindStale    = "stale"
	kindNotFound = "notfound"
)

// runner is one run's shared state. Workers only touch atomics, their own
// histogram shard and errMu.
type runner struct {
	cfg    Config
	client *http.Client
	clock  hlcClock

	// The measured window: operations intended in [measureStart, end).
	start, measureStart, end time.Time

	lat  *shardedHist // served ops; propagation: write → push
	wlat *shardedHist // propagation: the writes' own latency

	// Window counters (the result).
	ops, ok, stale, notFound, updates, applied, delivered atomic.Int64
	errMu                                                 sync.Mutex
	errs                                                  map[string]int64 // guarded by errMu

	// Whole-run counters (the progress line, warm-up included).
	served, failed atomic.Int64

	// Open loop: tickets taken; tickets in the window that started.
	tickets, startedInWindow atomic.Int64

	timeline []float64 // served ops in each second of the run; written by progress only

	tokens sync.Map // profile → token, when cfg.Mint is set
	sent   sync.Map // propagation: "profile/seq" → intended send time
}

// worker is one goroutine's simulated device(s): its own random source and
// Zipf pickers, a reusable body buffer and, for ws, its connection.
type worker struct {
	id   int
	rng  *rand.Rand
	prof picker
	vid  picker
	buf  []byte
	msgN int

	// raw is the worker's own HTTP connection (rawhttp.go), nil when the
	// target is not a plain http://host:port.
	raw *rawClient

	// ws: the connection of this simulated device.
	ws     *websocket.Conn
	wsProf int
	wsDev  int
}

func (r *runner) inWindow(t time.Time) bool { return !t.Before(r.measureStart) && t.Before(r.end) }

// Run executes cfg's workload and returns its result. It returns early with
// an error when the setup fails (no connection, bad config); errors during
// the run are counted in the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		MaxIdleConns:        cfg.Concurrency * 2,
		MaxIdleConnsPerHost: cfg.Concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	defer tr.CloseIdleConnections()
	shards := min(cfg.Concurrency, 16)
	r := &runner{
		cfg:    cfg,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		lat:    newShardedHist(shards),
		wlat:   newShardedHist(shards),
		errs:   map[string]int64{},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := make([]*worker, cfg.Concurrency)
	nProf := cfg.Profiles
	if cfg.Workload == "propagation" {
		nProf = cfg.Subscribers // writers target the watched profiles only
	}
	for i := range workers {
		rng := newWorkerRand(cfg.Seed, i)
		workers[i] = &worker{id: i, rng: rng, prof: newZipf(rng, cfg.ZipfS, nProf), vid: newZipf(rng, cfg.ZipfS, cfg.Videos)}
		if host, ok := rawHost(cfg.URL); ok {
			workers[i].raw = newRawClient(host)
		}
		if cfg.Uniform {
			workers[i].prof, workers[i].vid = uniform{rng, nProf}, uniform{rng, cfg.Videos}
		}
	}

	// Setup: prefill, subscribers, connections. Not timed.
	var subs sync.WaitGroup
	switch cfg.Workload {
	case "read":
		if !cfg.NoPrefill {
			if err := r.prefill(ctx); err != nil {
				return nil, fmt.Errorf("bench: read prefill: %w", err)
			}
		}
	case "propagation":
		if err := r.startSubscribers(ctx, &subs); err != nil {
			return nil, err
		}
	case "ws":
		for i, w := range workers {
			// Connections are devices of households: profile i/3 gets
			// devices 0..2, so a profile has no more connected devices
			// than it has devices (Zipf would put most connections on
			// one profile and turn every update into a fan-out to them).
			w.wsProf, w.wsDev = (i/cfg.DevicesPerProfile)%nProf, i%cfg.DevicesPerProfile
			c, err := r.dialWS(ctx, profileID(w.wsProf), deviceID(w.wsProf, w.wsDev))
			if err != nil {
				return nil, fmt.Errorf("bench: websocket %s: %w", profileID(w.wsProf), err)
			}
			c.SetReadLimit(1 << 20)
			w.ws = c
		}
		defer func() {
			for _, w := range workers {
				if w.ws != nil { // reconnected ones included
					w.ws.CloseNow()
				}
			}
		}()
	}
	op := r.opFunc()

	r.start = time.Now()
	r.measureStart = r.start.Add(cfg.Warmup)
	r.end = r.measureStart.Add(cfg.Duration)
	// Operations started before the end may finish during the drain.
	opCtx, stopOps := context.WithDeadline(ctx, r.end.Add(cfg.Drain))
	defer stopOps()

	if cfg.OnWindow != nil {
		begin := time.AfterFunc(time.Until(r.measureStart), func() { cfg.OnWindow(true) })
		defer begin.Stop()
		finish := time.AfterFunc(time.Until(r.end), func() { cfg.OnWindow(false) })
		defer finish.Stop()
	}
	progDone := make(chan struct{})
	progStop := make(chan struct{})
	go r.progress(progStop, progDone)

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := r.closedNext(ctx)
			if cfg.Rate > 0 {
				next = r.openNext(ctx)
			}
			for {
				t, ok := next()
				if !ok {
					return
				}
				r.account(w, t, op(opCtx, w, t))
			}
		}()
	}
	wg.Wait()
	for _, w := range workers {
		if w.raw != nil {
			w.raw.close()
		}
	}
	if cfg.Workload == "propagation" {
		r.awaitPushes()
	}
	close(progStop)
	<-progDone
	cancel()
	subs.Wait()
	return r.result(), nil
}

// closedNext gives each worker "now" until the end: back-to-back requests.
func (r *runner) closedNext(ctx context.Context) func() (time.Time, bool) {
	return func() (time.Time, bool) {
		now := time.Now()
		return now, now.Before(r.end) && ctx.Err() == nil
	}
}

// openNext hands out the schedule's send times (start + i/rate), one ticket
// each, and sleeps until the ticket's time. A worker that is late takes a
// ticket whose time has passed and sends at once: the latency still counts
// from the ticket's time. Nothing starts after the end.
func (r *runner) openNext(ctx context.Context) func() (time.Time, bool) {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	return func() (time.Time, bool) {
		i := r.tickets.Add(1) - 1
		t := r.start.Add(time.Duration(i) * interval)
		if !t.Before(r.end) {
			return t, false
		}
		if d := time.Until(t); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				return t, false
			case <-timer.C:
			}
		} else if !time.Now().Before(r.end) || ctx.Err() != nil {
			return t, false // a backlog left at the end: unsent
		}
		if r.inWindow(t) {
			r.startedInWindow.Add(1)
		}
		return t, true
	}
}

// scheduledInWindow is how many open-loop send times fall in the window.
func (r *runner) scheduledInWindow() int64 {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	upTo := func(t time.Time) int64 { // tickets with time < t
		return int64((t.Sub(r.start) + interval - 1) / interval)
	}
	return upTo(r.end) - upTo(r.measureStart)
}

// account records one finished operation intended at t.
func (r *runner) account(w *worker, t time.Time, o outcome) {
	served := o.kind == "" || o.kind == kindStale || o.kind == kindNotFound
	if served {
		r.served.Add(1)
	} else {
		r.failed.Add(1)
	}
	if !r.inWindow(t) {
		return
	}
	r.ops.Add(1)
	switch o.kind {
	case "":
		r.ok.Add(1)
	case kindStale:
		r.stale.Add(1)
	case kindNotFound:
		r.notFound.Add(1)
	default:
		r.errMu.Lock()
		r.errs[o.kind]++
		r.errMu.Unlock()
		return
	}
	r.updates.Add(int64(o.updates))
	h := r.lat
	if r.cfg.Workload == "propagation" {
		h = r.wlat
	}
	h.record(w.id, time.Since(t))
}

// progress prints one line per second until stop is closed.
func (r *runner) progress(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastServed, lastFailed int64
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s, f := r.served.Load(), r.failed.Load()
			win := r.lat.takeWindow().Summarize()
			r.timeline = append(r.timeline, float64(s-lastServed))
			if r.cfg.Progress == nil {
				lastServed, lastFailed = s, f
				continue
			}
			phase := "run"
			if now.Before(r.measureStart) {
				phase = "warmup"
			} else if !now.Before(r.end) {
				phase = "drain"
			}
			line := fmt.Sprintf("%s %4.0fs %-6s served/s %6d  errors/s %4d  p50 %6.2fms  p99 %7.2fms", r.cfg.Workload,
				now.Sub(r.start).Seconds(), phase, s-lastServed, f-lastFailed, win.P50, win.P99)
			if r.cfg.Rate > 0 {
				due := int64(now.Sub(r.start)/time.Duration(float64(time.Second)/r.cfg.Rate)) + 1
				line += fmt.Sprintf("  behind %d", max(due-r.tickets.Load(), 0))
			}
			fmt.Fprintln(r.cfg.Progress, line)
			lastServed, lastFailed = s, f
		}
	}
}

func (r *runner) result() *Result {
	c := r.cfg
	res := &Result{
		Workload: c.Workload, URL: c.URL, Mode: "closed", Concurrency: c.Concurrency,
		Duration: c.Duration.Seconds(), Warmup: c.Warmup.Seconds(), Seed: c.Seed, Started: r.start.UTC(),
		Profiles: c.Profiles, Videos: c.Videos, ZipfS: c.ZipfS,
		Ops: r.ops.Load(), OK: r.ok.Load(), Stale: r.stale.Load(), NotFound: r.notFound.Load(),
		Updates: r.updates.Load(), Errors: r.errs, Latency: r.lat.merged().Summarize(),
		Timeline: r.timeline,
	}
	if c.Workload == "batch" {
		res.Batch = c.Batch
	}
	if c.Rate > 0 {
		res.Mode, res.TargetRate = "open", c.Rate
		res.Unsent = max(r.scheduledInWindow()-r.startedInWindow.Load(), 0)
	}
	secs := c.Duration.Seconds()
	res.OpsPerSec = float64(res.OK+res.Stale+res.NotFound) / secs
	res.UpdatesPerSec = float64(res.Updates) / secs
	if c.Workload == "propagation" {
		res.Push, res.Subscribers = c.Push, c.Subscribers
		res.Applied, res.Delivered = r.applied.Load(), r.delivered.Load()
		w := r.wlat.merged().Summarize()
		res.WriteLatency = &w
	}
	return res
}

// newWorkerRand is worker i's random source for seed.
func newWorkerRand(seed uint64, i int) *rand.Rand { return rand.New(rand.NewPCG(seed, uint64(i)+1)) }
