package node

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/storage"
)

func TestPlayheadHLCHeaderOnEveryResponse(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DeviceRate, c.DeviceBurst = 1, 1 })
	tok := e.token("acct-1")
	reqs := []struct{ method, path, token, body string }{
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
		{"GET", "/metrics", "", ""},
		{"PUT", "/v1/profiles/me/positions/v", tok, `{"position_ms":1,"duration_ms":600000,"device":"d","session":"s"}`},
		{"PUT", "/v1/profiles/me/positions/v", tok, `{"position_ms":1,"duration_ms":600000,"device":"d","session":"s"}`}, // 429
		{"GET", "/v1/profiles/me/positions/v", tok, ""},
		{"GET", "/v1/profiles/me/positions/none", tok, ""}, // 404
		{"PUT", "/v1/profiles/me/positions/v", tok, `{`},   // 400
		{"GET", "/v1/profiles/me/positions/v", "", ""},     // 401
		{"GET", "/v1/cluster", tok, ""},                    // 403
		{"GET", "/nowhere", "", ""},                        // 404 from the mux
		{"POST", "/healthz", "", ""},                       // 405 from the mux
		{"DELETE", "/v1/profiles/me/history", tok, ""},     // 204
		{"GET", "/v1/profiles/me/changes?wait=0", tok, ""},
	}
	var last uint64
	statuses := map[int]bool{}
	for _, q := range reqs {
		r := e.do(q.method, q.path, q.token, q.body)
		statuses[r.status] = true
		h := r.header.Get("Playhead-HLC")
		v, err := strconv.ParseUint(h, 10, 64)
		if err != nil || v == 0 {
			t.Fatalf("%s %s → %d: Playhead-HLC %q", q.method, q.path, r.status, h)
		}
		if v <= last {
			t.Fatalf("Playhead-HLC went from %d to %d", last, v)
		}
		last = v
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", q.method, q.path)
		}
	}
	for _, s := range []int{200, 204, 400, 401, 403, 404, 405, 429} {
		if !statuses[s] {
			t.Errorf("no response with status %d was checked", s)
		}
	}
	// And on a 413.
	big := strings.Repeat("a", 2<<20)
	r := e.do("PUT", "/v1/profiles/me/positions/v", tok, big)
	want(t, r, 413, "too_large")
	if r.header.Get("Playhead-HLC") == "" {
		t.Fatal("413 without Playhead-HLC")
	}
}

func TestListsAreNeverNull(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	for path, want := range map[string]string{
		"/v1/profiles/me/continue-watching": `{"items":[]}`,
		"/v1/profiles/me/history":           `{"entries":[],"next_page":null}`,
		"/v1/profiles/me/changes?wait=0":    `{"cursors":[],"hlc":"0"}`,
	} {
		r := e.do("GET", path, tok, nil)
		if r.status != 200 || strings.TrimSpace(string(r.body)) != want {
			t.Errorf("%s: %s, want %s", path, r, want)
		}
	}
	r := e.do("POST", "/v1/profiles/me/positions", tok, `{"updates": []}`)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"results":[]}` {
		t.Errorf("empty batch: %s", r)
	}
	r = e.do("GET", "/v1/cluster", e.adminToken("ops"), nil)
	if !strings.Contains(string(r.body), `"members":[{`) {
		t.Errorf("cluster: %s", r)
	}
}

func TestReadyzAndShutdown(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	want(t, e.do("GET", "/readyz", "", nil), 200, "")
	want(t, e.do("GET", "/healthz", "", nil), 200, "")
	e.mustPut(tok, "me", "v", upd(10*minute, hour, "tv", "s1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	want(t, e.do("GET", "/readyz", "", nil), 503, "unavailable")
	want(t, e.do("GET", "/healthz", "", nil), 200, "")
	// The store is closed: writes are refused (503, retry elsewhere), not
	// acknowledged and lost.
	r, _ := e.putPos(tok, "me", "v", upd(11*minute, hour, "tv", "s1"))
	want(t, r, 503, "unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	want(t, e.do("GET", "/v1/profiles/me/changes?wait=1s", tok, nil), 503, "unavailable")
	if err := e.n.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestMetricsAfterTraffic(t *testing.T) {
	e := newEnv(t)
	tok := e.token("acct-1")
	e.mustPut(tok, "me", "v", upd(10*minute, hour, "tv", "s1"))
	ep := e.hlcAt(-time.Hour, 0)
	e.putPos(tok, "me", "v", upd(10*minute, hour, "tv", "s0", "epoch", hs(ep))) // stale
	e.get(tok, "me", "v")
	ws := e.wsDial(tok, "me", "?after=0")
	wsNext(t, ws, deliveryDeadline)
	// The stream counts an event once its write returns, which may be just
	// after the device read it: poll the metrics briefly.
	var m string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r := e.do("GET", "/metrics", "", nil)
		want(t, r, 200, "")
		m = string(r.body)
		if strings.Contains(m, `playhead_push_events_sent_total{transport="ws"} 1`) || time.Now().After(deadline) {
			break
		}
	}
	for _, name := range []string{
		`playhead_http_requests_total{code="200",route="PUT /v1/profiles/{profile}/positions/{video}"} 1`,
		`playhead_http_requests_total{code="409",route="PUT /v1/profiles/{profile}/positions/{video}"} 1`,
		`playhead_http_request_duration_seconds_bucket{route="GET /v1/profiles/{profile}/positions/{video}"`,
		`playhead_updates_total{result="applied"} 1`,
		`playhead_updates_total{result="stale"} 1`,
		`playhead_push_events_sent_total{transport="ws"} 1`,
		`playhead_push_subscribers 1`,
		`playhead_push_subscribers_dropped_total 0`,
		`playhead_token_cache_total{result="hit"}`,
		`playhead_store_sync_duration_seconds`,
		`playhead_rate_limited_total`,
		`go_goroutines`,
	} {
		if !strings.Contains(m, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

func TestStoreSyncMetricWithPebble(t *testing.T) {
	n, err := New(Config{NodeID: "p", DataDir: t.TempDir(), AuthSecret: testSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	defer n.Shutdown(context.Background())
	tok, _ := api.IssueToken(testSecret, "a", nil, false, time.Hour, time.Now())
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/profiles/me/positions/v", strings.NewReader(`{"position_ms":1,"duration_ms":600000,"device":"d","session":"s"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := srv.Client().Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", err, res)
	}
	res.Body.Close()
	res, _ = srv.Client().Get(srv.URL + "/metrics")
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "playhead_store_sync_duration_seconds_count") ||
		strings.Contains(string(b), "playhead_store_sync_duration_seconds_count 0\n") {
		t.Fatalf("no store syncs observed:\n%s", grepLines(string(b), "store_sync"))
	}
}

func TestMetricsInSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	mk := func(id string) error {
		_, err := NewWithStore(Config{NodeID: id, AuthSecret: testSecret, Registry: reg, Logger: slog.New(slog.DiscardHandler)}, storage.NewMem())
		return err
	}
	if err := mk("n1"); err != nil {
		t.Fatal(err)
	}
	if err := mk("n2"); err != nil {
		t.Fatalf("two nodes in one registry: %v", err)
	}
	if err := mk("n1"); err == nil {
		t.Fatal("a duplicate node id registered twice")
	}
}

func TestClusterIsAdminOnly(t *testing.T) {
	e := newEnv(t)
	want(t, e.do("GET", "/v1/cluster", "", nil), 401, "unauthorized")
	want(t, e.do("GET", "/v1/cluster", e.token("acct-1"), nil), 403, "forbidden")
	r := e.do("GET", "/v1/cluster", e.adminToken("ops"), nil)
	want(t, r, 200, "")
	var st ClusterStatus
	r.decode(t, &st)
	if len(st.Members) != 1 || st.Members[0].ID != "test-1" || st.Members[0].State != "alive" ||
		st.Members[0].Partitions != 1024 || st.Partitions != 1024 || st.Replication != 1 || st.RaftLeader != "test-1" {
		t.Fatalf("cluster: %s", r.body)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.DeviceRate, c.DeviceBurst = 2, 3
		c.AccountRate, c.AccountBurst = 1, 2
	})
	tok := e.token("acct-1")
	for i := 0; i < 3; i++ {
		e.mustPut(tok, "me", "v", upd(int64(10+i)*minute, hour, "tv", "s1"))
	}
	r, _ := e.putPos(tok, "me", "v", upd(20*minute, hour, "tv", "s1"))
	want(t, r, 429, "rate_limited")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Another device of the account, and the same device name in another
	// account, have their own buckets.
	e.mustPut(tok, "me", "w", upd(21*minute, hour, "phone", "s2"))
	e.mustPut(e.token("acct-2"), "me", "v", upd(21*minute, hour, "tv", "s1"))
	// A batch costs one token per distinct device.
	r = e.do("POST", "/v1/profiles/me/positions", tok, map[string]any{"updates": []any{upd(1, hour, "phone", "s2", "video", "x")}})
	want(t, r, 200, "")
	// The bucket refills with time (the node's clock).
	e.clock.Advance(500 * time.Millisecond)
	e.mustPut(tok, "me", "v", upd(22*minute, hour, "tv", "s1"))
	r, _ = e.putPos(tok, "me", "v", upd(23*minute, hour, "tv", "s1"))
	want(t, r, 429, "rate_limited")
	if c, _ := e.get(tok, "me", "v"); c.PositionMs != 22*minute {
		t.Fatalf("a refused write changed the cursor: %+v", c)
	}

	// Reads: per account. get above took one token; one more, then 429.
	want(t, e.do("GET", "/v1/profiles/me/settings", tok, nil), 200, "")
	r = e.do("GET", "/v1/profiles/me/settings", tok, nil)
	want(t, r, 429, "rate_limited")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	want(t, e.do("GET", "/v1/profiles/me/settings", e.token("acct-3"), nil), 200, "")
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	l := newLimiter(10, 5, 64)
	for i := 0; i < 10_000; i++ {
		l.allow("k"+strconv.Itoa(i), int64(i))
	}
	if n := l.size(); n > 64+limiterShards {
		t.Fatalf("%d buckets kept, bound 64", n)
	}
	// Idle buckets go first: an active (drained) bucket survives a wave of
	// newcomers once they have become idle.
	l = newLimiter(1, 2, limiterShards) // one bucket per shard
	l.allow("hot", 0)
	l.allow("hot", 0)
	if ok, _ := l.allow("hot", 0); ok {
		t.Fatal("burst exceeded")
	}
	if ok, _ := l.allow("hot", 1000); !ok {
		t.Fatal("no refill after 1 s at 1/s")
	}
}

// TestRunServesAndShutsDownGracefully runs a node on Pebble with a real
// listener on port 0, holds push streams and a long-poll open, cancels the
// context (SIGTERM in the command) and checks: Run returns nil, the
// WebSocket gets a going-away close, SSE an error event, the long-poll an
// answer, and every acknowledged write is there after reopening.
func TestRunServesAndShutsDownGracefully(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{NodeID: "run-1", DataDir: dir, HTTPAddr: "127.0.0.1:0", AuthSecret: testSecret,
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1, SweepInterval: 10 * time.Millisecond}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(ctx) }()
	select {
	case <-n.Listening():
	case <-time.After(5 * time.Second):
		t.Fatal("not listening")
	}
	base := "http://" + n.Addr().String()
	tok, _ := api.IssueToken(testSecret, "acct-1", nil, false, time.Hour, time.Now())
	client := &http.Client{}
	do := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}

	var mu sync.Mutex
	acked := map[string]int64{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			video := "v" + strconv.Itoa(w)
			for i := int64(1); i <= 20; i++ {
				st, _ := do("PUT", "/v1/profiles/me/positions/"+video,
					`{"position_ms":`+strconv.FormatInt(i*1000, 10)+`,"duration_ms":3600000,"device":"d","session":"s`+video+`"}`)
				if st == 200 {
					mu.Lock()
					acked[video] = i * 1000
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()

	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/v1/profiles/me/events"
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	ws, _, err := websocket.Dial(wctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	req, _ := http.NewRequest("GET", base+"/v1/profiles/me/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	sse, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	pollDone := make(chan int, 1)
	go func() {
		st, _ := do("GET", "/v1/profiles/me/changes?after=18446744073709551615&wait=60s", "")
		pollDone <- st
	}()
	time.Sleep(50 * time.Millisecond)

	start := time.Now()
	cancel() // SIGTERM
	wsErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				wsErr <- err
				return
			}
		}
	}()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	t.Logf("shut down in %v", time.Since(start))
	if err := <-wsErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("WebSocket ended with %v, want going away (1001)", err)
	}
	sawError := false
	sc := bufio.NewScanner(sse.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "event: error") {
			sawError = true
		}
	}
	if !sawError {
		t.Error("SSE stream ended without an error event")
	}
	select {
	case st := <-pollDone:
		if st != 200 {
			t.Errorf("long-poll answered %d during shutdown", st)
		}
	case <-time.After(time.Second):
		t.Error("long-poll not answered at shutdown")
	}

	// Reopen: every acknowledged write is there.
	n2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Shutdown(context.Background())
	srv := httptest.NewServer(n2.Handler())
	defer srv.Close()
	for video, pos := range acked {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/profiles/me/positions/"+video, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var c tCursor
		json.NewDecoder(res.Body).Decode(&c)
		res.Body.Close()
		if res.StatusCode != 200 || c.PositionMs != pos {
			t.Errorf("%s: acknowledged %d, after restart %d %d", video, pos, res.StatusCode, c.PositionMs)
		}
	}
	if len(acked) != 4 {
		t.Fatalf("%d videos acknowledged", len(acked))
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := n.Serve(context.Background(), ln); err == nil {
		t.Fatal("Serve after shutdown succeeded")
	}
}

func TestRunRefusesBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n, err := New(Config{DataDir: t.TempDir(), HTTPAddr: ln.Addr().String(), AuthSecret: testSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("Run on a busy address: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	var c Config
	c.EnsureDefaults()
	if c.HTTPAddr != DefaultHTTPAddr || c.MaxClockSkew != 60*time.Second || c.MaxBodyBytes != 1<<20 ||
		c.LongPollMax != 60*time.Second || c.Policy.MinResumePct != 5 || c.NodeID == "" {
		t.Fatalf("defaults: %+v", c)
	}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("missing secret: %v", err)
	}
	c.AuthSecret = testSecret
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.HTTPAddr = "8080"
	c.LongPollWait = 2 * time.Minute
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "host:port") || !strings.Contains(err.Error(), "long-poll") {
		t.Fatalf("bad config: %v", err)
	}
	if _, err := New(Config{AuthSecret: testSecret}); err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("New without a data dir: %v", err)
	}
	if _, err := New(Config{AuthSecret: []byte("short"), DataDir: t.TempDir()}); err == nil {
		t.Fatal("New with a short secret")
	}
}
