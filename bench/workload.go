package bench

import (
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
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"
)

// durationMs is every simulated video's length (45 min).
const durationMs = 2_700_000

func profileID(p int) string { return "p-" + strconv.Itoa(p) }
func videoID(v int) string   { return "v-" + strconv.Itoa(v) }
func deviceID(p, d int) string {
	return "d-" + strconv.Itoa(p) + "-" + strconv.Itoa(d)
}

// hlcClock stamps versions the way the SDK does: an HLC (physical ms in the
// high 48 bits, a logical counter in the low 16) that never repeats or goes
// back across the generator's goroutines.
type hlcClock struct{ last atomic.Uint64 }

func (c *hlcClock) now() uint64 {
	for {
		l := c.last.Load()
		n := uint64(time.Now().UnixMilli()) << 16
		if n <= l {
			n = l + 1
		}
		if c.last.CompareAndSwap(l, n) {
			return n
		}
	}
}

// update is one position report before encoding. Device d of profile p has
// one session per video: "s-p-d-v".
type update struct {
	profile, video, device int
	position               int
	version                uint64 // epoch = seq: each report is the viewer's latest act
}

func (r *runner) newUpdate(w *worker, p, d, v int) update {
	return update{profile: p, video: v, device: d, position: w.rng.IntN(durationMs), version: r.clock.now()}
}

// appendUpdate appends u's JSON fields (no braces) to b. Ids are ASCII
// without quotes or backslashes, so no escaping is needed.
func appendUpdate(b []byte, u update, withVideo bool) []byte {
	if withVideo {
		b = append(b, `"video":"v-`...)
		b = strconv.AppendInt(b, int64(u.video), 10)
		b = append(b, `",`...)
	}
	b = append(b, `"position_ms":`...)
	b = strconv.AppendInt(b, int64(u.position), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, durationMs, 10)
	b = append(b, `,"state":"playing","device":"d-`...)
	b = strconv.AppendInt(b, int64(u.profile), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(u.device), 10)
	b = append(b, `","session":"s-`...)
	b = strconv.AppendInt(b, int64(u.profile), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(u.device), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(u.video), 10)
	b = append(b, `","epoch":"`...)
	b = strconv.AppendUint(b, u.version, 10)
	b = append(b, `","seq":"`...)
	b = strconv.AppendUint(b, u.version, 10)
	return append(b, '"')
}

type opFn func(ctx context.Context, w *worker, intended time.Time) outcome

func (r *runner) opFunc() opFn {
	switch r.cfg.Workload {
	case "put":
		return r.opPut
	case "batch":
		return r.opBatch
	case "read":
		return r.opRead
	case "ws":
		return r.opWS
	default: // propagation (Validate checked the name)
		return r.opPropagate
	}
}

// token is the bearer token for a profile.
func (r *runner) token(profile string) string {
	if r.cfg.Mint == nil {
		return r.cfg.Token
	}
	if t, ok := r.tokens.Load(profile); ok {
		return t.(string)
	}
	t, err := r.cfg.Mint(profile)
	if err != nil {
		return r.cfg.Token // the request fails with 401 and is counted
	}
	r.tokens.Store(profile, t)
	return t
}

// do sends one request and returns the status and, when keep is set, the
// body (otherwise the body is read and discarded, keeping the connection).
func (r *runner) do(ctx context.Context, method, profile, path string, body []byte, keep bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.cfg.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token(profile))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if !keep {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// send is do for the measured requests: on the worker's own connection
// (rawhttp.go) when it has one, the body discarded.
func (r *runner) send(ctx context.Context, w *worker, method, profile, path string, body []byte) (int, error) {
	if w.raw == nil {
		st, _, err := r.do(ctx, method, profile, path, body, false)
		return st, err
	}
	return w.raw.do(ctx, method, path, r.token(profile), body)
}

// rawHost returns host:port of a plain http://host:port URL, the targets
// the raw client serves.
func rawHost(u string) (string, bool) {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok || rest == "" || strings.ContainsAny(rest, "/?#@") {
		return "", false
	}
	return rest, true
}

// errKind names a failure: "timeout", "transport" or the HTTP status.
func errKind(err error, status int) string {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return "timeout"
		}
		return "transport"
	}
	return strconv.Itoa(status)
}

func writeOutcome(err error, status, updates int) outcome {
	switch {
	case err == nil && status == http.StatusOK:
		return outcome{updates: updates}
	case err == nil && status == http.StatusConflict:
		return outcome{kind: kindStale, updates: updates}
	}
	return outcome{kind: errKind(err, status)}
}

func positionPath(p, v int) string {
	return "/v1/profiles/p-" + strconv.Itoa(p) + "/positions/v-" + strconv.Itoa(v)
}

func (r *runner) opPut(ctx context.Context, w *worker, _ time.Time) outcome {
	p, v := w.prof.Next(), w.vid.Next()
	u := r.newUpdate(w, p, w.rng.IntN(r.cfg.DevicesPerProfile), v)
	w.buf = append(appendUpdate(append(w.buf[:0], '{'), u, false), '}')
	st, err := r.send(ctx, w, http.MethodPut, profileID(p), positionPath(p, v), w.buf)
	return writeOutcome(err, st, 1)
}

// opBatch sends cfg.Batch updates of one device of one profile (the SDK
// replays its queue as one batch per profile).
func (r *runner) opBatch(ctx context.Context, w *worker, _ time.Time) outcome {
	p, d := w.prof.Next(), w.rng.IntN(r.cfg.DevicesPerProfile)
	b := append(w.buf[:0], `{"updates":[`...)
	for i := range r.cfg.Batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendUpdate(append(b, '{'), r.newUpdate(w, p, d, w.vid.Next()), true), '}')
	}
	w.buf = append(b, "]}"...)
	st, err := r.send(ctx, w, http.MethodPost, profileID(p), "/v1/profiles/"+profileID(p)+"/positions", w.buf)
	return writeOutcome(err, st, r.cfg.Batch)
}

func (r *runner) opRead(ctx context.Context, w *worker, _ time.Time) outcome {
	p, v := w.prof.Next(), w.vid.Next()
	st, err := r.send(ctx, w, http.MethodGet, profileID(p), positionPath(p, v), nil)
	if err == nil && st == http.StatusOK {
		return outcome{}
	}
	if err == nil && st == http.StatusNotFound {
		return outcome{kind: kindNotFound}
	}
	return outcome{kind: errKind(err, st)}
}

func (r *runner) dialWS(ctx context.Context, profile string, device string) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(r.cfg.URL, "http") + "/v1/profiles/" + profile + "/events"
	if r.cfg.WSOmitOwn && device != "" {
		u += "?omit_device=" + device
	}
	opts := &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + r.token(profile)}}}
	if r.cfg.WSMsgpack {
		opts.Subprotocols = []string{wsSubprotocolMsgpack}
	}
	c, _, err := websocket.Dial(ctx, u, opts)
	if err == nil && r.cfg.WSMsgpack && c.Subprotocol() != wsSubprotocolMsgpack {
		c.CloseNow()
		return nil, fmt.Errorf("the target does not speak the %s WebSocket subprotocol", wsSubprotocolMsgpack)
	}
	return c, err
}

// wsSubprotocolMsgpack is playhead's msgpack WebSocket subprotocol.
const wsSubprotocolMsgpack = "playhead.v1.msgpack"

// wsReply is the part of a server message the ws workload reads, in JSON
// or msgpack.
type wsReply struct {
	Type    string `json:"type" msgpack:"type"`
	ID      string `json:"id" msgpack:"id"`
	Applied bool   `json:"applied" msgpack:"applied"`
	Error   *struct {
		Code string `json:"code" msgpack:"code"`
	} `json:"error" msgpack:"error"`
}

// tally adds the answer to out: stale if not applied; false, with out the
// failure, for an error or an unexpected message.
func (m *wsReply) tally(out *outcome) bool {
	switch {
	case m.Type == "ack" && m.Applied:
	case m.Type == "ack":
		out.kind = kindStale
	case m.Error != nil:
		*out = outcome{kind: "ws_" + m.Error.Code}
		return false
	default:
		*out = outcome{kind: "ws_unexpected"}
		return false
	}
	return true
}

// opWS sends cfg.Pipeline updates on the worker's connection back to back
// and waits for all their acks, skipping pushes of other devices' writes
// that arrive in between. The operation is stale if any update was.
func (r *runner) opWS(ctx context.Context, w *worker, _ time.Time) outcome {
	if w.ws == nil {
		// The last connection failed: reconnect, as a device would.
		c, err := r.dialWS(ctx, profileID(w.wsProf), deviceID(w.wsProf, w.wsDev))
		if err != nil {
			return outcome{kind: "ws_dial"}
		}
		c.SetReadLimit(1 << 20)
		w.ws = c
	}
	if r.cfg.WSMsgpack {
		return r.opWSMsgpack(ctx, w)
	}
	first := w.msgN + 1
	for range r.cfg.Pipeline {
		w.msgN++
		u := r.newUpdate(w, w.wsProf, w.wsDev, w.vid.Next())
		b := append(w.buf[:0], `{"type":"update","id":"`...)
		b = strconv.AppendInt(b, int64(w.msgN), 10)
		w.buf = append(appendUpdate(append(b, `",`...), u, true), '}')
		if err := w.ws.Write(ctx, websocket.MessageText, w.buf); err != nil {
			return w.wsFailed("ws_write", err)
		}
	}
	out := outcome{updates: r.cfg.Pipeline}
	for pending := r.cfg.Pipeline; pending > 0; {
		_, msg, err := w.ws.Read(ctx)
		if err != nil {
			return w.wsFailed("ws_read", err)
		}
		if !bytes.Contains(msg, []byte(`"id"`)) {
			continue // a push
		}
		var m wsReply
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		if id, err := strconv.Atoi(m.ID); err != nil || id < first || id > w.msgN {
			continue
		}
		pending--
		if !m.tally(&out) {
			return out
		}
	}
	return out
}

// wsFailed drops the worker's broken connection (the next operation
// reconnects) and names the failure, with the close code the server sent.
func (w *worker) wsFailed(kind string, err error) outcome {
	w.ws.CloseNow()
	w.ws = nil
	if code := websocket.CloseStatus(err); code != -1 {
		kind += "_close_" + strconv.Itoa(int(code))
	}
	return outcome{kind: kind}
}

// wsMsgpackUpdate is an update message of the playhead.v1.msgpack
// subprotocol: the JSON API's keys, HLCs as integers.
type wsMsgpackUpdate struct {
	Type       string `msgpack:"type"`
	ID         string `msgpack:"id"`
	Video      string `msgpack:"video"`
	PositionMs int    `msgpack:"position_ms"`
	DurationMs int    `msgpack:"duration_ms"`
	State      string `msgpack:"state"`
	Device     string `msgpack:"device"`
	Session    string `msgpack:"session"`
	Epoch      uint64 `msgpack:"epoch"`
	Seq        uint64 `msgpack:"seq"`
}

// opWSMsgpack sends cfg.Pipeline updates as one msgpack array message and
// waits for the array of their answers.
func (r *runner) opWSMsgpack(ctx context.Context, w *worker) outcome {
	msgs := make([]wsMsgpackUpdate, r.cfg.Pipeline)
	for i := range msgs {
		w.msgN++
		u := r.newUpdate(w, w.wsProf, w.wsDev, w.vid.Next())
		msgs[i] = wsMsgpackUpdate{Type: "update", ID: strconv.Itoa(w.msgN), Video: videoID(u.video),
			PositionMs: u.position, DurationMs: durationMs, State: "playing",
			Device:  deviceID(u.profile, u.device),
			Session: "s-" + strconv.Itoa(u.profile) + "-" + strconv.Itoa(u.device) + "-" + strconv.Itoa(u.video),
			Epoch:   u.version, Seq: u.version}
	}
	b, err := msgpack.Marshal(msgs)
	if err != nil {
		return outcome{kind: "ws_encode"}
	}
	if err := w.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		return w.wsFailed("ws_write", err)
	}
	for {
		_, msg, err := w.ws.Read(ctx)
		if err != nil {
			return w.wsFailed("ws_read", err)
		}
		if len(msg) == 0 || msg[0]&0xf0 != 0x90 && msg[0] != 0xdc && msg[0] != 0xdd {
			continue // one push (a map); answers to an array are arrays
		}
		if isPushArray(msg) {
			continue // several pushes
		}
		var replies []wsReply
		if msgpack.Unmarshal(msg, &replies) != nil || len(replies) == 0 {
			return outcome{kind: "ws_unexpected"}
		}
		if len(replies) != len(msgs) || replies[0].ID != msgs[0].ID {
			return outcome{kind: "ws_unexpected"}
		}
		out := outcome{updates: len(msgs)}
		for i := range replies {
			if !replies[i].tally(&out) {
				break
			}
		}
		return out
	}
}

// isPushArray reports whether a msgpack array message holds push events
// rather than answers, from its first element's "type" alone (a device
// that only counts its acks need not decode its siblings' pushes).
func isPushArray(msg []byte) bool {
	dec := msgpack.NewDecoder(bytes.NewReader(msg))
	if n, err := dec.DecodeArrayLen(); err != nil || n < 1 {
		return false
	}
	var first struct {
		Type string `msgpack:"type"`
	}
	if dec.Decode(&first) != nil {
		return false
	}
	return first.Type != "ack" && first.Type != "error"
}
