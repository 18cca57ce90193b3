// Package baseline is the comparison point of playhead's benchmarks: the
// design brief's "obvious" architecture, built honestly — a stateless Go
// net/http service in front of one Redis. A cursor is a Redis hash; a Lua
// script refuses stale versions by (epoch, seq, session) exactly as
// playhead's 409 does, stores the cursor and PUBLISHes it; Server-Sent Events
// streams are fed from Redis pub/sub. It speaks the subset of playhead's
// device API the load generator uses: PUT, batch POST and GET of positions
// and the SSE push stream. See README.md for what it does not do.
package baseline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playhead/playhead/api"
)

// Limits of the API subset, as playhead's.
const (
	maxBody  = 1 << 20
	maxBatch = api.MaxBatch
)

// Server is the baseline HTTP service. Safe for concurrent use.
type Server struct {
	rdb  *redis.Client
	auth *authenticator // nil: no auth (tests)
	hub  *hub
	hlc  atomic.Uint64 // stamps versions a device left out
	mux  *http.ServeMux
}

// New returns a server over rdb. secret verifies HS256 device tokens as
// playhead does (nil: no auth). Close releases the pub/sub connection.
func New(rdb *redis.Client, secret []byte) *Server {
	s := &Server{rdb: rdb, hub: newHub(rdb), mux: http.NewServeMux()}
	if secret != nil {
		s.auth = newAuthenticator(secret)
	}
	s.mux.HandleFunc("PUT /v1/profiles/{profile}/positions/{video}", s.put)
	s.mux.HandleFunc("GET /v1/profiles/{profile}/positions/{video}", s.get)
	s.mux.HandleFunc("POST /v1/profiles/{profile}/positions", s.batch)
	s.mux.HandleFunc("GET /v1/profiles/{profile}/events", s.events)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return s
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops the pub/sub fan-out.
func (s *Server) Close() error { return s.hub.close() }

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeErr(w, 500, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// account authenticates r for profile and returns the account ("" when
// the server runs without auth), or answers 401/403 and returns false.
func (s *Server) account(w http.ResponseWriter, r *http.Request, profile string) (string, bool) {
	if !api.ValidID(profile) {
		writeErr(w, 400, "bad_request", "bad profile id")
		return "", false
	}
	if s.auth == nil {
		return "-", true
	}
	h := r.Header.Get("Authorization")
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		writeErr(w, 401, "unauthorized", "missing bearer token")
		return "", false
	}
	c, err := s.auth.verify(strings.TrimSpace(h[7:]), time.Now())
	if err != nil {
		writeErr(w, 401, "unauthorized", "bad token")
		return "", false
	}
	if !c.allows(profile) {
		writeErr(w, 403, "forbidden", "profile not allowed")
		return "", false
	}
	return c.Account, true
}

// hlcNumber accepts an HLC as a JSON string or number.
type hlcNumber struct {
	v   uint64
	set bool
}

func (h *hlcNumber) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	if err != nil {
		return fmt.Errorf("baseline: bad HLC %s", b)
	}
	h.v, h.set = v, true
	return nil
}

// Update is a position report (the fields the baseline keeps).
type Update struct {
	Video      string    `json:"video"`
	PositionMs *int64    `json:"position_ms"`
	DurationMs *int64    `json:"duration_ms"`
	Device     string    `json:"device"`
	Session    string    `json:"session"`
	State      string    `json:"state"`
	Epoch      hlcNumber `json:"epoch"`
	Seq        hlcNumber `json:"seq"`
	Title      string    `json:"title,omitempty"`
}

// Cursor is the stored resume point (a subset of playhead's cursor).
type Cursor struct {
	Video      string `json:"video"`
	PositionMs int64  `json:"position_ms"`
	DurationMs int64  `json:"duration_ms"`
	ResumeMs   int64  `json:"resume_ms"`
	State      string `json:"state"`
	Session    string `json:"session"`
	Device     string `json:"device"`
	Epoch      string `json:"epoch"`
	Seq        string `json:"seq"`
	UpdatedAt  string `json:"updated_at"`
	Title      string `json:"title,omitempty"`
}

func validUpdate(u *Update) bool {
	if u.State == "" {
		u.State = "playing"
	}
	return u.PositionMs != nil && u.DurationMs != nil && *u.DurationMs > 0 && *u.PositionMs >= 0 &&
		*u.PositionMs <= *u.DurationMs && api.ValidID(u.Device) && api.ValidID(u.Session) && api.ValidID(u.Video)
}

// now is the server's HLC: physical ms << 16 | logical, never repeating.
func (s *Server) now() uint64 {
	for {
		l := s.hlc.Load()
		n := uint64(time.Now().UnixMilli()) << 16
		if n <= l {
			n = l + 1
		}
		if s.hlc.CompareAndSwap(l, n) {
			return n
		}
	}
}

// write turns an update into a script Write. A device that sends no
// version gets epoch = seq = now (unlike playhead, the baseline does not
// remember a session's epoch; the load generator always sends versions).
func (s *Server) write(account, profile string, u *Update) Write {
	now := time.Now()
	e, q := u.Epoch.v, u.Seq.v
	if !u.Epoch.set || !u.Seq.set {
		t := s.now()
		if !u.Epoch.set {
			e = t
		}
		if !u.Seq.set {
			q = t
		}
	}
	c := Cursor{Video: u.Video, PositionMs: *u.PositionMs, DurationMs: *u.DurationMs, ResumeMs: *u.PositionMs, State: u.State,
		Session: u.Session, Device: u.Device, Epoch: strconv.FormatUint(e, 10), Seq: strconv.FormatUint(q, 10),
		UpdatedAt: now.UTC().Format("2006-01-02T15:04:05.000Z"), Title: u.Title}
	b, _ := json.Marshal(c)
	return Write{Key: Key(account, profile, u.Video), V: Version{Epoch: e, Seq: q, Session: u.Session}, Cursor: string(b)}
}

// result is one applied-or-stale answer.
type result struct {
	Applied bool            `json:"applied"`
	Cursor  json.RawMessage `json:"cursor"`
}

func rawCursor(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	acct, ok := s.account(w, r, profile)
	if !ok {
		return
	}
	var u Update
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&u); err != nil {
		writeErr(w, 400, "bad_request", err.Error())
		return
	}
	u.Video = r.PathValue("video")
	if !validUpdate(&u) {
		writeErr(w, 400, "bad_request", "invalid update")
		return
	}
	res, err := Apply(r.Context(), s.rdb, Channel(acct, profile), []Write{s.write(acct, profile, &u)})
	if err != nil {
		writeErr(w, 503, "unavailable", err.Error())
		return
	}
	if !res[0].Applied {
		writeJSON(w, 409, map[string]any{"error": map[string]string{"code": "stale_write", "message": "a larger version is stored"},
			"applied": false, "cursor": rawCursor(res[0].Cursor)})
		return
	}
	writeJSON(w, 200, result{Applied: true, Cursor: rawCursor(res[0].Cursor)})
}

// batch applies all updates of the request in one script call: one round
// trip and one atomic step in Redis.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	acct, ok := s.account(w, r, profile)
	if !ok {
		return
	}
	var body struct {
		Updates []Update `json:"updates"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&body); err != nil {
		writeErr(w, 400, "bad_request", err.Error())
		return
	}
	if len(body.Updates) == 0 || len(body.Updates) > maxBatch {
		writeErr(w, 400, "bad_request", "a batch holds 1 to 500 updates")
		return
	}
	ws := make([]Write, len(body.Updates))
	for i := range body.Updates {
		if !validUpdate(&body.Updates[i]) {
			writeErr(w, 400, "bad_request", fmt.Sprintf("update %d is invalid", i))
			return
		}
		ws[i] = s.write(acct, profile, &body.Updates[i])
	}
	res, err := Apply(r.Context(), s.rdb, Channel(acct, profile), ws)
	if err != nil {
		writeErr(w, 503, "unavailable", err.Error())
		return
	}
	out := make([]result, len(res))
	for i, a := range res {
		out[i] = result{Applied: a.Applied, Cursor: rawCursor(a.Cursor)}
	}
	writeJSON(w, 200, map[string]any{"results": out})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	acct, ok := s.account(w, r, profile)
	if !ok {
		return
	}
	c, err := s.rdb.HGet(r.Context(), Key(acct, profile, r.PathValue("video")), "c").Result()
	if err == redis.Nil {
		writeErr(w, 404, "not_found", "no cursor")
		return
	}
	if err != nil {
		writeErr(w, 503, "unavailable", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(c))
}

// events is an SSE stream of the profile's cursor pushes. (WebSocket and
// replay with after= are not part of the baseline.)
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	acct, ok := s.account(w, r, profile)
	if !ok {
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		writeErr(w, 400, "bad_request", "the baseline serves push streams as Server-Sent Events only (Accept: text/event-stream)")
		return
	}
	rc := http.NewResponseController(w)
	ch := Channel(acct, profile)
	st, err := s.hub.subscribe(r.Context(), ch)
	if err != nil {
		writeErr(w, 503, "unavailable", err.Error())
		return
	}
	defer s.hub.unsubscribe(ch, st)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	rc.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-st.gone:
			return // too slow; the device reconnects
		case <-heartbeat.C:
			w.Write([]byte(": ping\n\n"))
		case c := <-st.ch:
			fmt.Fprintf(w, "event: cursor\ndata: {\"type\":\"cursor\",\"cursor\":%s}\n\n", c)
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// ensure the interface go-redis scripts run on.
var _ redis.Scripter = (*redis.Client)(nil)

// Ready loads the script (so requests use EVALSHA) and pings Redis.
func Ready(ctx context.Context, rdb *redis.Client) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	return Script.Load(ctx, rdb).Err()
}
