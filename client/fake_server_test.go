package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// fakeServer implements the endpoints the SDK uses, with the API's shapes
// and status codes, plus knobs to make it fail. It keeps one max-register
// cursor per (profile, video); it has no history, policy or auth beyond
// checking that a bearer token is present.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server
	// skewMs is added to the wall clock for the server's HLC.
	skewMs int64
	clock  *crdt.Clock

	mu      sync.Mutex
	cursors map[string]map[string]Cursor // profile → video → cursor
	reqs    []fakeReq
	// writeStatus, when set, answers every write with this status (and
	// Retry-After: retryAfter when not empty).
	writeStatus int
	retryAfter  string
	// badVideo makes batches containing it 400 and PUTs of it 400.
	badVideo string
	// maxSkewMs, when > 0, refuses (400) writes whose epoch or seq lies
	// more than maxSkewMs ahead of the server's clock, as a node does
	// (max_clock_skew), with the node's message.
	maxSkewMs int64
	// skewAll refuses every write as too far ahead, whatever its stamps.
	skewAll bool
	// wsReject answers WebSocket upgrades with 503.
	wsReject bool
	// conns are the open WebSocket streams.
	conns map[*fakeStream]bool
	// changed is closed and replaced whenever a cursor changes.
	changed chan struct{}
}

type fakeReq struct {
	Method, Path string
	Query        url.Values
	Body         []byte
	WS           bool
	Seen         string // the Playhead-Seen header
}

type fakeStream struct {
	conn *websocket.Conn
	out  chan []byte
	drop chan struct{}
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{
		t: t, clock: crdt.NewClock(0),
		cursors: map[string]map[string]Cursor{},
		conns:   map[*fakeStream]bool{},
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/profiles/{profile}/positions/{video}", f.put)
	mux.HandleFunc("GET /v1/profiles/{profile}/positions/{video}", f.get)
	mux.HandleFunc("POST /v1/profiles/{profile}/positions", f.post)
	mux.HandleFunc("GET /v1/profiles/{profile}/changes", f.changes)
	mux.HandleFunc("GET /v1/profiles/{profile}/events", f.events)
	f.srv = httptest.NewServer(f.middleware(mux))
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) close() {
	f.dropStreams()
	f.srv.Close()
}

func (f *fakeServer) nowHLC() crdt.HLC {
	return f.clock.Now(time.Now().UnixMilli() + atomic.LoadInt64(&f.skewMs))
}

func (f *fakeServer) middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		f.mu.Lock()
		f.reqs = append(f.reqs, fakeReq{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body,
			WS: strings.EqualFold(r.Header.Get("Upgrade"), "websocket"), Seen: r.Header.Get(seenHeader)})
		f.mu.Unlock()
		w.Header().Set(HeaderHLC, f.nowHLC().String())
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			writeTestJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeUnauthorized, Message: "no token"}})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// requests returns the requests so far matching method and path prefix.
func (f *fakeServer) requests(method, prefix string) []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeReq
	for _, r := range f.reqs {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeServer) set(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// failWrite answers a write with the configured failure, if any.
func (f *fakeServer) failWrite(w http.ResponseWriter) bool {
	f.mu.Lock()
	status, ra := f.writeStatus, f.retryAfter
	f.mu.Unlock()
	if status == 0 {
		return false
	}
	if ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	code := api.CodeUnavailable
	if status == http.StatusTooManyRequests {
		code = api.CodeRateLimited
	}
	writeTestJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: "try later"}})
	return true
}

// checkSkew answers the node's 400 for the first of ups whose epoch or seq
// lies beyond maxSkewMs ahead of the server's clock (all of them with
// skewAll), and reports whether it did. The message is the node's
// (node/errors.go serviceError of gossip.Local.Put's error).
func (f *fakeServer) checkSkew(w http.ResponseWriter, ups []crdt.Update) bool {
	f.mu.Lock()
	maxSkew, all := f.maxSkewMs, f.skewAll
	f.mu.Unlock()
	if maxSkew <= 0 && !all {
		return false
	}
	now := time.Now().UnixMilli() + atomic.LoadInt64(&f.skewMs)
	chk := crdt.Clock{MaxSkewMs: maxSkew}
	for i, u := range ups {
		for _, h := range [2]crdt.HLC{u.Epoch, u.Seq} {
			err := chk.Check(h, now)
			if all && err == nil { // a server whose clock is far behind
				err = fmt.Errorf("%w: %d ms ahead (allowed %d ms)", crdt.ErrClockSkew, 600_000, 60_000)
			}
			if err != nil {
				writeTestJSON(w, http.StatusBadRequest, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeBadRequest, Message: fmt.Sprintf("update %d (video %q): %v", i, u.Video, err) +
					"; fix the device clock (keep it in step with the Playhead-HLC header) or let the node stamp epoch/seq"}})
				return true
			}
		}
	}
	return false
}

// apply merges u into the profile's cursor: it returns the result and
// whether it was applied.
func (f *fakeServer) apply(profile string, u crdt.Update) api.WriteResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.cursors[profile]
	if m == nil {
		m = map[string]Cursor{}
		f.cursors[profile] = m
	}
	old, found := m[u.Video]
	if found && !old.Version().Less(versionOf(u)) {
		c := old
		return api.WriteResult{Applied: false, Cursor: &c}
	}
	upd := f.nowHLC()
	c := Cursor{
		Video: u.Video, PositionMs: u.PositionMs, DurationMs: u.DurationMs, ResumeMs: u.PositionMs,
		State: u.State.String(), Session: u.Session, Device: u.Device, Epoch: u.Epoch, Seq: u.Seq,
		UpdatedAt: upd.Time().Format(time.RFC3339Nano), UpdatedHLC: upd,
		Title: u.Title, SeriesID: u.SeriesID, NextVideo: u.NextVideo,
	}
	if found { // metadata left out keeps its value
		c.Title = cmpOr(c.Title, old.Title)
		c.SeriesID = cmpOr(c.SeriesID, old.SeriesID)
		c.NextVideo = cmpOr(c.NextVideo, old.NextVideo)
	}
	m[u.Video] = c
	f.broadcastLocked(Event{Type: api.EventCursor, Cursor: &c})
	if found && old.Session != c.Session {
		f.broadcastLocked(Event{Type: api.EventTakeover, Video: u.Video, Session: old.Session,
			By: &api.TakeoverBy{Device: c.Device, Session: c.Session}})
	}
	close(f.changed)
	f.changed = make(chan struct{})
	cc := c
	return api.WriteResult{Applied: true, Cursor: &cc}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// storeQuietly stores u stamped at updated, as a change another node
// coordinated and has not pushed to this one yet: no event goes out.
func (f *fakeServer) storeQuietly(profile string, u crdt.Update, updated crdt.HLC) Cursor {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.cursors[profile]
	if m == nil {
		m = map[string]Cursor{}
		f.cursors[profile] = m
	}
	c := Cursor{Video: u.Video, PositionMs: u.PositionMs, DurationMs: u.DurationMs, ResumeMs: u.PositionMs,
		State: u.State.String(), Session: u.Session, Device: u.Device, Epoch: u.Epoch, Seq: u.Seq,
		UpdatedAt: updated.Time().Format(time.RFC3339Nano), UpdatedHLC: updated}
	m[u.Video] = c
	return c
}

// write stores u as if another device had reported it.
func (f *fakeServer) write(profile string, u crdt.Update) Cursor {
	r := f.apply(profile, u)
	return *r.Cursor
}

func (f *fakeServer) cursor(profile, video string) (Cursor, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cursors[profile][video]
	return c, ok
}

func (f *fakeServer) put(w http.ResponseWriter, r *http.Request) {
	if f.failWrite(w) {
		return
	}
	body, _ := io.ReadAll(r.Body)
	var b api.UpdateBody
	if err := json.Unmarshal(body, &b); err != nil {
		writeTestJSON(w, http.StatusBadRequest, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeBadRequest, Message: err.Error()}})
		return
	}
	u, err := updateOf(b, r.PathValue("video"))
	f.mu.Lock()
	bad := f.badVideo != "" && u.Video == f.badVideo
	f.mu.Unlock()
	if err != nil || bad {
		writeTestJSON(w, http.StatusBadRequest, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeBadRequest, Message: "bad update"}})
		return
	}
	if f.checkSkew(w, []crdt.Update{u}) {
		return
	}
	res := f.apply(r.PathValue("profile"), u)
	if !res.Applied {
		writeTestJSON(w, http.StatusConflict, api.StaleBody{Error: api.ErrorDetail{Code: api.CodeStaleWrite, Message: "stale"}, Cursor: res.Cursor})
		return
	}
	writeTestJSON(w, http.StatusOK, res)
}

func (f *fakeServer) post(w http.ResponseWriter, r *http.Request) {
	if f.failWrite(w) {
		return
	}
	var b api.BatchRequest
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || len(b.Updates) > api.MaxBatch {
		writeTestJSON(w, http.StatusBadRequest, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeBadRequest, Message: "bad batch"}})
		return
	}
	ups := make([]crdt.Update, len(b.Updates))
	f.mu.Lock()
	bad := f.badVideo
	f.mu.Unlock()
	for i, ub := range b.Updates {
		u, err := updateOf(ub, "")
		if err != nil || (bad != "" && u.Video == bad) {
			writeTestJSON(w, http.StatusBadRequest, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeBadRequest, Message: "updates[" + strconv.Itoa(i) + "] bad"}})
			return
		}
		ups[i] = u
	}
	if f.checkSkew(w, ups) {
		return
	}
	res := api.BatchResponse{Results: make([]api.WriteResult, len(ups))}
	for i, u := range ups {
		res.Results[i] = f.apply(r.PathValue("profile"), u)
	}
	writeTestJSON(w, http.StatusOK, res)
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	c, ok := f.cursor(r.PathValue("profile"), r.PathValue("video"))
	if !ok {
		writeTestJSON(w, http.StatusNotFound, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeNotFound, Message: "no position"}})
		return
	}
	writeTestJSON(w, http.StatusOK, c)
}

// newer returns the profile's cursors above after, oldest first, and the
// current change channel.
func (f *fakeServer) newer(profile string, after crdt.HLC) ([]Cursor, chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Cursor
	for _, c := range f.cursors[profile] {
		if c.UpdatedHLC > after {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UpdatedHLC < out[j].UpdatedHLC })
	return out, f.changed
}

func (f *fakeServer) changes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after crdt.HLC
	if q.Has("after") {
		var err error
		if after, err = crdt.ParseHLC(q.Get("after")); err != nil {
			writeTestJSON(w, http.StatusBadRequest, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeBadRequest, Message: "after"}})
			return
		}
	}
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait > 60*time.Second {
		writeTestJSON(w, http.StatusBadRequest, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeBadRequest, Message: "wait"}})
		return
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		cs, ch := f.newer(r.PathValue("profile"), after)
		if len(cs) > 0 {
			hlc := after
			for _, c := range cs {
				hlc = max(hlc, c.UpdatedHLC)
			}
			writeTestJSON(w, http.StatusOK, api.Changes{Cursors: cs, HLC: hlc})
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			writeTestJSON(w, http.StatusOK, api.Changes{Cursors: []Cursor{}, HLC: after})
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeServer) events(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	reject := f.wsReject
	f.mu.Unlock()
	if reject {
		w.Header().Set("Retry-After", "0")
		writeTestJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeUnavailable, Message: "no websockets today"}})
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	st := &fakeStream{conn: conn, out: make(chan []byte, 64), drop: make(chan struct{})}
	q := r.URL.Query()
	var replay []Cursor
	f.mu.Lock()
	f.conns[st] = true
	f.mu.Unlock()
	if q.Has("after") {
		after, _ := crdt.ParseHLC(q.Get("after"))
		replay, _ = f.newer(r.PathValue("profile"), after)
	}
	defer func() {
		f.mu.Lock()
		delete(f.conns, st)
		f.mu.Unlock()
	}()
	ctx := conn.CloseRead(r.Context())
	for i := range replay {
		b, _ := json.Marshal(Event{Type: api.EventCursor, Cursor: &replay[i]})
		if conn.Write(ctx, websocket.MessageText, b) != nil {
			return
		}
	}
	for {
		select {
		case b := <-st.out:
			if conn.Write(ctx, websocket.MessageText, b) != nil {
				return
			}
		case <-st.drop:
			conn.Close(websocket.StatusGoingAway, "dropped by test")
			return
		case <-ctx.Done():
			return
		}
	}
}

// broadcastLocked sends ev to every open stream.
func (f *fakeServer) broadcastLocked(ev Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		f.t.Errorf("marshal event: %v", err)
		return
	}
	for st := range f.conns {
		select {
		case st.out <- b:
		default:
		}
	}
}

// send pushes a raw event to every open stream.
func (f *fakeServer) send(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broadcastLocked(ev)
}

// streams returns the number of open WebSocket streams.
func (f *fakeServer) streams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// dropStreams closes every open WebSocket stream.
func (f *fakeServer) dropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for st := range f.conns {
		close(st.drop)
		delete(f.conns, st)
	}
}

// netSwitch is an http.RoundTripper that fails every request while off,
// as a device without network would.
type netSwitch struct {
	base http.RoundTripper
	off  atomic.Bool
}

var errNoNetwork = errors.New("test: network is down")

func (n *netSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if n.off.Load() {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errNoNetwork
	}
	return n.base.RoundTrip(r)
}

// testClock is a settable Clock.
type testClock struct{ ms atomic.Int64 }

func newTestClock(ms int64) *testClock {
	c := &testClock{}
	c.ms.Store(ms)
	return c
}

func (c *testClock) NowMs() int64            { return c.ms.Load() }
func (c *testClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ctxT returns a context cancelled at the end of the test.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
