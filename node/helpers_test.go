package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/storage"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-node-tests")

// testClock is a gossip.Clock that tests move by hand. It starts at the
// wall clock's now so that HLCs and times look real.
type testClock struct{ ms atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ms.Store(time.Now().UnixMilli())
	return c
}

func (c *testClock) NowMs() int64            { return c.ms.Load() }
func (c *testClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *testClock) Now() time.Time          { return time.UnixMilli(c.NowMs()) }

// env is a node over an in-memory store behind a real HTTP server.
type env struct {
	t     *testing.T
	n     *Node
	srv   *httptest.Server
	clock *testClock
	store *storage.Mem
}

// newEnv starts a node. Rate limits are off unless an option turns them on.
func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	clk := newTestClock()
	cfg := Config{
		NodeID:      "test-1",
		AuthSecret:  testSecret,
		Clock:       clk,
		Logger:      slog.New(slog.DiscardHandler),
		DeviceRate:  -1,
		AccountRate: -1,
	}
	for _, o := range opts {
		o(&cfg)
	}
	mem := storage.NewMem()
	n, err := NewWithStore(cfg, mem)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	tt, _ := t.(*testing.T)
	return &env{t: tt, n: n, srv: srv, clock: clk, store: mem}
}

// token issues a token valid for ten years of the test clock.
func (e *env) token(account string, profiles ...string) string {
	tok, err := api.IssueToken(testSecret, account, profiles, false, 10*365*24*time.Hour, e.clock.Now())
	if err != nil {
		panic(err)
	}
	return tok
}

func (e *env) adminToken(account string) string {
	tok, err := api.IssueToken(testSecret, account, nil, true, 10*365*24*time.Hour, e.clock.Now())
	if err != nil {
		panic(err)
	}
	return tok
}

// resp is a read response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r *resp) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// decode decodes the body into v, failing the test on error.
func (r *resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
}

func (r *resp) decodeQuiet(v any) error { return json.Unmarshal(r.body, v) }

// errCode returns the error code of an error body, "" if none.
func (r *resp) errCode() string {
	var b struct {
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(r.body, &b) != nil || b.Error == nil {
		return ""
	}
	return b.Error.Code
}

// do sends a request. body is a string or []byte (sent as is), nil (no
// body) or anything else (sent as JSON).
func (e *env) do(method, path, token string, body any, hdr ...string) *resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: b}
}

// want fails the test unless r has the status (and, if code is set, the
// error code).
func want(t testing.TB, r *resp, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.errCode() != code) {
		t.Fatalf("want %d %s, got %s", status, code, r)
	}
}

// tCursor is a cursor as a test reads it: api.Cursor, but with its HLCs
// as the raw strings on the wire (the outer fields shadow the embedded ones
// in encoding/json), so tests see exactly what the node wrote. The
// embedded Epoch, Seq and UpdatedHLC (and so Version) stay zero: use
// epoch(), seq() and updated().
type tCursor struct {
	api.Cursor
	Epoch      string `json:"epoch"`
	Seq        string `json:"seq"`
	UpdatedHLC string `json:"updated_hlc"`
}

func (c tCursor) epoch() crdt.HLC   { return mustHLC(c.Epoch) }
func (c tCursor) seq() crdt.HLC     { return mustHLC(c.Seq) }
func (c tCursor) updated() crdt.HLC { return mustHLC(c.UpdatedHLC) }

func mustHLC(s string) crdt.HLC {
	h, err := crdt.ParseHLC(s)
	if err != nil {
		panic(err)
	}
	return h
}

// tWrite is a write's answer as a test reads it: api.WriteResult (200) or
// api.StaleBody (409).
type tWrite struct {
	Applied bool             `json:"applied"`
	Cursor  *tCursor         `json:"cursor"`
	Error   *api.ErrorDetail `json:"error"`
}

// upd builds an update body; extra is key, value pairs.
func upd(pos, dur int64, device, session string, extra ...any) map[string]any {
	m := map[string]any{"position_ms": pos, "duration_ms": dur, "device": device, "session": session}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

// putPos PUTs a position and decodes the answer (200 or 409).
func (e *env) putPos(tok, profile, video string, body any) (*resp, tWrite) {
	e.t.Helper()
	r := e.do("PUT", "/v1/profiles/"+profile+"/positions/"+video, tok, body)
	var w tWrite
	if r.status == 200 || r.status == 409 {
		r.decode(e.t, &w)
	}
	return r, w
}

// mustPut PUTs a position and requires it applied.
func (e *env) mustPut(tok, profile, video string, body any) tCursor {
	e.t.Helper()
	r, w := e.putPos(tok, profile, video, body)
	if r.status != 200 || !w.Applied || w.Cursor == nil {
		e.t.Fatalf("PUT %s/%s: want applied, got %s", profile, video, r)
	}
	return *w.Cursor
}

// get GETs a cursor; ok false on 404.
func (e *env) get(tok, profile, video string) (tCursor, bool) {
	e.t.Helper()
	r := e.do("GET", "/v1/profiles/"+profile+"/positions/"+video, tok, nil)
	if r.status == 404 {
		return tCursor{}, false
	}
	want(e.t, r, 200, "")
	var c tCursor
	r.decode(e.t, &c)
	return c, true
}

func (e *env) historyOf(tok, profile, query string) api.HistoryPage {
	e.t.Helper()
	r := e.do("GET", "/v1/profiles/"+profile+"/history"+query, tok, nil)
	want(e.t, r, 200, "")
	var h api.HistoryPage
	r.decode(e.t, &h)
	return h
}

func (e *env) continueOf(tok, profile, query string) []tCursor {
	e.t.Helper()
	r := e.do("GET", "/v1/profiles/"+profile+"/continue-watching"+query, tok, nil)
	want(e.t, r, 200, "")
	var b struct {
		Items []tCursor `json:"items"`
	}
	r.decode(e.t, &b)
	return b.Items
}

// hlcAt returns an HLC at the test clock's now plus d (client stamping).
func (e *env) hlcAt(d time.Duration, logical uint16) crdt.HLC {
	return crdt.NewHLC(e.clock.NowMs()+d.Milliseconds(), logical)
}

func hs(h crdt.HLC) string { return strconv.FormatUint(uint64(h), 10) }

// wsDial opens the events WebSocket of a profile.
func (e *env) wsDial(tok, profile, query string) *websocket.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/profiles/" + profile + "/events" + query
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	c, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		e.t.Fatalf("websocket dial: %v (%v)", err, res)
	}
	if res.Header.Get("Playhead-HLC") == "" {
		e.t.Error("WebSocket upgrade response has no Playhead-HLC header")
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return c
}

// tEvent is any message of the push stream as a test reads it: the fields
// of every api event type (CursorEvent, TakeoverEvent, ClearedEvent, Ack,
// ErrorEvent), with pointers where a test must tell null from absent.
type tEvent struct {
	Type    string           `json:"type"`
	Cursor  *tCursor         `json:"cursor"`
	Video   *string          `json:"video"`
	Entry   string           `json:"entry"`
	Session string           `json:"session"`
	By      *api.TakeoverBy  `json:"by"`
	ID      *string          `json:"id"`
	Applied bool             `json:"applied"`
	Error   *api.ErrorDetail `json:"error"`
}

// wsNext reads the next event within d.
func wsNext(t testing.TB, c *websocket.Conn, d time.Duration) tEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read within %v: %v", d, err)
	}
	var ev tEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return ev
}

// wsSend writes a JSON message.
func wsSend(t testing.TB, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// sseStream is an open SSE stream.
type sseStream struct {
	res    *http.Response
	events chan sseEvent
}

type sseEvent struct {
	id, typ string
	data    []byte
}

// sseOpen opens the SSE stream of a profile and parses it in the
// background.
func (e *env) sseOpen(tok, profile, query string, hdr ...string) *sseStream {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/profiles/"+profile+"/events"+query, nil)
	req.Header.Set("Accept", "text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		e.t.Fatalf("SSE: %d %s", res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("SSE content type %q", ct)
	}
	s := &sseStream{res: res, events: make(chan sseEvent, 100)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = []byte(strings.TrimPrefix(line, "data: "))
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			}
		}
	}()
	e.t.Cleanup(func() { res.Body.Close() })
	return s
}

// next returns the next event within d.
func (s *sseStream) next(t testing.TB, d time.Duration) (sseEvent, tEvent) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("SSE stream ended")
		}
		var te tEvent
		if err := json.Unmarshal(ev.data, &te); err != nil {
			t.Fatalf("SSE data %q: %v", ev.data, err)
		}
		if te.Type != ev.typ {
			t.Fatalf("SSE event: %q, data type %q", ev.typ, te.Type)
		}
		return ev, te
	case <-time.After(d):
		t.Fatalf("no SSE event within %v", d)
	}
	panic("unreachable")
}
