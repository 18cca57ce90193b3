package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Config describes one run.
type Config struct {
	URL   string
	Token string
	// Mint, when set, gives the token for a profile: the load generator then
	// acts as one account per profile (realistic per-account rate limits).
	Mint        func(profile string) (string, error)
	Workload    string        // put, batch, ws, read, propagation
	Rate        float64       // open loop: requests/s (0 = closed loop)
	Concurrency int           // closed loop workers, or open-loop max in flight
	Duration    time.Duration // measured
	Warmup      time.Duration // run but not recorded
	Devices     int           // simulated devices (distinct device/session ids)
	Profiles    int           // Zipf-chosen profiles
	Videos      int           // Zipf-chosen videos per profile
	ZipfS       float64
	Batch       int    // updates per batch request
	Push        string // propagation subscriber transport: "ws" or "sse"
	Subscribers int    // propagation: subscribed profiles
	Seed        uint64
	Progress    io.Writer // one line per second; nil for none
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Devices <= 0 {
		c.Devices = 1000
	}
	if c.Profiles <= 0 {
		c.Profiles = 1000
	}
	if c.Videos <= 0 {
		c.Videos = 200
	}
	if c.ZipfS <= 1 {
		c.ZipfS = 1.1
	}
	if c.Batch <= 0 {
		c.Batch = 50
	}
	if c.Push == "" {
		c.Push = "ws"
	}
	if c.Subscribers <= 0 {
		c.Subscribers = 20
	}
	c.URL = strings.TrimRight(c.URL, "/")
}

// runner holds shared state of a run.
type runner struct {
	cfg       Config
	client    *http.Client
	hist      *Hist
	recording atomic.Bool
	ops, ok   atomic.Int64
	updates   atomic.Int64
	stale     atomic.Int64
	posSeq    atomic.Int64
	errMu     sync.Mutex
	errs      map[string]int64
	// propagation: key profile/position -> send time
	sent   sync.Map
	tokens sync.Map // profile -> token when cfg.Mint is set
}

func (r *runner) token(path string) string {
	if r.cfg.Mint == nil {
		return r.cfg.Token
	}
	prof, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/profiles/"), "/")
	if t, ok := r.tokens.Load(prof); ok {
		return t.(string)
	}
	t, err := r.cfg.Mint(prof)
	if err != nil {
		return r.cfg.Token
	}
	r.tokens.Store(prof, t)
	return t
}

func (r *runner) fail(kind string) {
	if !r.recording.Load() {
		return
	}
	r.errMu.Lock()
	r.errs[kind]++
	r.errMu.Unlock()
}

// worker is one simulated device's state used by a goroutine.
type worker struct {
	id      int
	device  string
	session string
	prof    *Zipf
	vid     *Zipf
	ws      *websocket.Conn
	wsProf  string
	n       int
}

// op performs one operation, returning an error kind ("" = ok) and the
// number of position updates carried.
type opFunc func(ctx context.Context, w *worker) (kind string, updates int)

// Run executes the configured workload and returns its result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	tr := &http.Transport{
		MaxIdleConns:        cfg.Concurrency * 2,
		MaxIdleConnsPerHost: cfg.Concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	defer tr.CloseIdleConnections()
	r := &runner{cfg: cfg, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, hist: NewHist(), errs: map[string]int64{}}
	var op opFunc
	switch cfg.Workload {
	case "put":
		op = r.opPut
	case "batch":
		op = r.opBatch
	case "read":
		op = r.opRead
	case "ws":
		op = r.opWS
	case "propagation":
		op = r.opPut
	default:
		return nil, fmt.Errorf("unknown workload %q (put, batch, ws, read, propagation)", cfg.Workload)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		dev := i % cfg.Devices
		workers[i] = &worker{
			id: i, device: fmt.Sprintf("dev-%d", dev), session: fmt.Sprintf("s-%d-%d", dev, cfg.Seed),
			prof: NewZipf(cfg.Seed+uint64(i)*7919, cfg.ZipfS, cfg.Profiles),
			vid:  NewZipf(cfg.Seed+uint64(i)*104729+1, cfg.ZipfS, cfg.Videos),
		}
	}
	var subWG sync.WaitGroup
	if cfg.Workload == "propagation" {
		// writers target the subscribed profiles only
		for _, w := range workers {
			w.prof = NewZipf(cfg.Seed+uint64(w.id)*7919, cfg.ZipfS, cfg.Subscribers)
		}
		ready := make(chan error, cfg.Subscribers)
		for i := 0; i < cfg.Subscribers; i++ {
			subWG.Add(1)
			go func(p string) { defer subWG.Done(); r.subscribe(ctx, p, ready) }(fmt.Sprintf("p-%d", i))
		}
		for i := 0; i < cfg.Subscribers; i++ {
			if err := <-ready; err != nil {
				return nil, fmt.Errorf("subscribe: %w", err)
			}
		}
	}
	if cfg.Workload == "ws" {
		for _, w := range workers {
			w.wsProf = fmt.Sprintf("p-%d", w.prof.Next())
			c, err := r.dialWS(ctx, w.wsProf)
			if err != nil {
				return nil, fmt.Errorf("websocket: %w", err)
			}
			c.SetReadLimit(1 << 20)
			w.ws = c
			defer c.CloseNow()
		}
	}

	start := time.Now()
	measureStart := start.Add(cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	if cfg.Warmup <= 0 {
		r.recording.Store(true)
	}
	runCtx, stopRun := context.WithDeadline(ctx, end)
	defer stopRun()

	// progress + warm-up switch
	progDone := make(chan struct{})
	go func() {
		defer close(progDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-runCtx.Done():
				return
			case now := <-t.C:
				if !r.recording.Load() && now.After(measureStart) {
					r.recording.Store(true)
					last = 0
				}
				n := r.ops.Load()
				if cfg.Progress != nil {
					phase := "warmup"
					if r.recording.Load() {
						phase = "run"
					}
					r.errMu.Lock()
					var e int64
					for _, v := range r.errs {
						e += v
					}
					r.errMu.Unlock()
					fmt.Fprintf(cfg.Progress, "%s %5.0fs %s ops/s=%d total=%d errors=%d\n", cfg.Workload, now.Sub(start).Seconds(), phase, n-last, n, e)
				}
				last = n
			}
		}
	}()
	if cfg.Warmup > 0 {
		go func() {
			select {
			case <-time.After(cfg.Warmup):
				r.recording.Store(true)
			case <-runCtx.Done():
			}
		}()
	}

	do := func(w *worker, intended time.Time) {
		kind, n := op(runCtx, w)
		if runCtx.Err() != nil && kind != "" {
			return // cut off by the end of the run
		}
		if !r.recording.Load() || intended.Before(measureStart) {
			return
		}
		r.ops.Add(1)
		if kind != "" {
			r.fail(kind)
			return
		}
		r.ok.Add(1)
		r.updates.Add(int64(n))
		if cfg.Workload != "propagation" {
			r.hist.Record(time.Since(intended))
		}
	}

	var wg sync.WaitGroup
	mode := "closed"
	if cfg.Rate > 0 {
		mode = "open"
		// Open loop: a schedule of intended send times; latency counts from
		// the intended time, so queueing behind a slow server is measured.
		jobs := make(chan time.Time, cfg.Concurrency*64)
		for _, w := range workers {
			wg.Add(1)
			go func(w *worker) {
				defer wg.Done()
				for t := range jobs {
					do(w, t)
				}
			}(w)
		}
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		next := start
	sched:
		for {
			now := time.Now()
			for !next.After(now) {
				select {
				case jobs <- next:
				case <-runCtx.Done():
					break sched
				}
				next = next.Add(interval)
			}
			select {
			case <-runCtx.Done():
				break sched
			case <-time.After(next.Sub(now)):
			}
		}
		close(jobs)
	} else {
		for _, w := range workers {
			wg.Add(1)
			go func(w *worker) {
				defer wg.Done()
				for runCtx.Err() == nil {
					do(w, time.Now())
				}
			}(w)
		}
	}
	wg.Wait()
	<-progDone
	if cfg.Workload == "propagation" {
		time.Sleep(200 * time.Millisecond) // let in-flight pushes land
	}
	cancel()
	subWG.Wait()

	res := &Result{
		Workload: cfg.Workload, URL: cfg.URL, Mode: mode, Rate: cfg.Rate, Concurrency: cfg.Concurrency,
		Duration: cfg.Duration.Seconds(), Ops: r.ops.Load(), OK: r.ok.Load(), Updates: r.updates.Load(), Stale409: r.stale.Load(),
		Errors: r.errs, Latency: r.hist.Summarize(), Seed: cfg.Seed, Started: start.UTC(),
	}
	res.OpsPerSec = float64(res.Ops) / cfg.Duration.Seconds()
	if cfg.Workload == "propagation" {
		res.Ops = res.Latency.Count
		res.OpsPerSec = float64(res.Ops) / cfg.Duration.Seconds()
	}
	return res, nil
}

func (r *runner) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.cfg.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token(path))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func errKind(status int, err error) string {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return "transport"
	}
	if status >= 200 && status < 300 {
		return ""
	}
	return strconv.Itoa(status)
}

// update is the body of a position report.
type update struct {
	Type       string `json:"type,omitempty"`
	ID         string `json:"id,omitempty"`
	Video      string `json:"video,omitempty"`
	PositionMs int64  `json:"position_ms"`
	DurationMs int64  `json:"duration_ms"`
	Device     string `json:"device"`
	Session    string `json:"session"`
	State      string `json:"state"`
}

func (r *runner) nextUpdate(w *worker, video string) update {
	p := r.posSeq.Add(1)
	return update{Video: video, PositionMs: p % 3_000_000, DurationMs: 3_000_000, Device: w.device, Session: w.session, State: "playing"}
}

func (r *runner) opPut(ctx context.Context, w *worker) (string, int) {
	prof := fmt.Sprintf("p-%d", w.prof.Next())
	video := fmt.Sprintf("v-%d", w.vid.Next())
	u := r.nextUpdate(w, "")
	body, _ := json.Marshal(u)
	if r.cfg.Workload == "propagation" {
		r.sent.Store(prof+"/"+strconv.FormatInt(u.PositionMs, 10), time.Now())
	}
	st, _, err := r.do(ctx, http.MethodPut, "/v1/profiles/"+prof+"/positions/"+video, body)
	if st == http.StatusConflict {
		// another simulated device wrote this video with a larger version:
		// a correct, served answer, counted apart from errors.
		if r.recording.Load() {
			r.stale.Add(1)
		}
		return "", 0
	}
	return errKind(st, err), 1
}

func (r *runner) opBatch(ctx context.Context, w *worker) (string, int) {
	prof := fmt.Sprintf("p-%d", w.prof.Next())
	ups := make([]update, r.cfg.Batch)
	for i := range ups {
		ups[i] = r.nextUpdate(w, fmt.Sprintf("v-%d", w.vid.Next()))
	}
	body, _ := json.Marshal(map[string]any{"updates": ups})
	st, _, err := r.do(ctx, http.MethodPost, "/v1/profiles/"+prof+"/positions", body)
	return errKind(st, err), len(ups)
}

func (r *runner) opRead(ctx context.Context, w *worker) (string, int) {
	prof := fmt.Sprintf("p-%d", w.prof.Next())
	video := fmt.Sprintf("v-%d", w.vid.Next())
	st, _, err := r.do(ctx, http.MethodGet, "/v1/profiles/"+prof+"/positions/"+video, nil)
	if st == http.StatusNotFound {
		return "", 1 // a never-written video is a valid answer
	}
	return errKind(st, err), 1
}

func (r *runner) dialWS(ctx context.Context, prof string) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(r.cfg.URL, "http") + "/v1/profiles/" + prof + "/events"
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + r.token("/v1/profiles/"+prof)}}})
	return c, err
}

func (r *runner) opWS(ctx context.Context, w *worker) (string, int) {
	w.n++
	u := r.nextUpdate(w, fmt.Sprintf("v-%d", w.vid.Next()))
	u.Type, u.ID = "update", strconv.Itoa(w.n)
	b, _ := json.Marshal(u)
	if err := w.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return "ws_write", 1
	}
	for {
		_, msg, err := w.ws.Read(ctx)
		if err != nil {
			return "ws_read", 1
		}
		var ack struct {
			Type    string `json:"type"`
			ID      string `json:"id"`
			Applied bool   `json:"applied"`
		}
		if json.Unmarshal(msg, &ack) != nil || ack.Type != "ack" || ack.ID != u.ID {
			continue // a push of another cursor
		}
		return "", 1
	}
}

// subscribe keeps a push stream open on profile p and records, for each
// cursor push whose position a writer stamped, the time from the write's send.
func (r *runner) subscribe(ctx context.Context, p string, ready chan<- error) {
	handle := func(msg []byte) {
		var ev struct {
			Type   string `json:"type"`
			Cursor struct {
				PositionMs int64 `json:"position_ms"`
			} `json:"cursor"`
		}
		if json.Unmarshal(msg, &ev) != nil || ev.Type != "cursor" {
			return
		}
		if t, ok := r.sent.LoadAndDelete(p + "/" + strconv.FormatInt(ev.Cursor.PositionMs, 10)); ok && r.recording.Load() {
			r.hist.Record(time.Since(t.(time.Time)))
		}
	}
	if r.cfg.Push == "sse" {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL+"/v1/profiles/"+p+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+r.token("/v1/profiles/"+p))
		req.Header.Set("Accept", "text/event-stream")
		resp, err := (&http.Client{}).Do(req)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		ready <- err
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := sc.Bytes(); bytes.HasPrefix(line, []byte("data:")) {
				handle(bytes.TrimSpace(line[5:]))
			}
		}
		return
	}
	c, err := r.dialWS(ctx, p)
	ready <- err
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		handle(msg)
	}
}
