// Package baseline is the comparison point for playhead's benchmarks: the
// "obvious" design of a stateless Go HTTP service over Redis. Positions live
// in Redis hashes; a Lua script refuses stale versions by comparing
// (epoch, seq, session) exactly as playhead's 409 does, stores the cursor and
// PUBLISHes it; SSE subscribers are fed from Redis pub/sub.
package baseline

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// applyScript stores a cursor unless a version at least as large is stored.
// KEYS[1] cursor key, KEYS[2] pub/sub channel. ARGV: epoch, seq, session
// (epoch and seq zero-padded to 20 digits so string order = numeric order),
// cursor JSON. Returns {1, json} when applied, {0, current json} when stale.
const applyScript = `
local cur = redis.call('HMGET', KEYS[1], 'e', 's', 'sess', 'c')
if cur[1] then
  local stale = false
  if ARGV[1] < cur[1] then stale = true
  elseif ARGV[1] == cur[1] then
    if ARGV[2] < cur[2] then stale = true
    elseif ARGV[2] == cur[2] and ARGV[3] <= cur[3] then stale = true end
  end
  if stale then return {0, cur[4]} end
end
redis.call('HSET', KEYS[1], 'e', ARGV[1], 's', ARGV[2], 'sess', ARGV[3], 'c', ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[4])
return {1, ARGV[4]}
`

// Script is the stale-refusing apply script.
var Script = redis.NewScript(applyScript)

// Server is the baseline HTTP service.
type Server struct {
	rdb    *redis.Client
	secret []byte
	seq    atomic.Uint64
	mux    *http.ServeMux
}

// New returns a server over rdb; secret verifies HS256 tokens (nil: no auth).
func New(rdb *redis.Client, secret []byte) *Server {
	s := &Server{rdb: rdb, secret: secret, mux: http.NewServeMux()}
	s.mux.HandleFunc("PUT /v1/profiles/{profile}/positions/{video}", s.put)
	s.mux.HandleFunc("GET /v1/profiles/{profile}/positions/{video}", s.get)
	s.mux.HandleFunc("POST /v1/profiles/{profile}/positions", s.batch)
	s.mux.HandleFunc("GET /v1/profiles/{profile}/events", s.events)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return s
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.mux }

// Key is the Redis key of a cursor.
func Key(profile, video string) string { return "pos:{" + profile + "}:" + video }

// Channel is the pub/sub channel of a profile.
func Channel(profile string) string { return "ev:" + profile }

// Pad20 renders a uint64 so that string order is numeric order.
func Pad20(v uint64) string { return fmt.Sprintf("%020d", v) }

// auth checks an HS256 JWT signature and expiry (claims: acct, profiles).
func (s *Server) auth(w http.ResponseWriter, r *http.Request, profile string) bool {
	if s.secret == nil {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(tok, ".")
	if !ok || len(parts) != 3 {
		writeErr(w, 401, "unauthorized")
		return false
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		writeErr(w, 401, "unauthorized")
		return false
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Exp      int64    `json:"exp"`
		Profiles []string `json:"profiles"`
	}
	if json.Unmarshal(raw, &c) != nil || (c.Exp != 0 && time.Now().Unix() > c.Exp) {
		writeErr(w, 401, "unauthorized")
		return false
	}
	if c.Profiles != nil {
		for _, p := range c.Profiles {
			if p == profile {
				return true
			}
		}
		writeErr(w, 403, "forbidden")
		return false
	}
	return true
}

func writeErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Update is a position report.
type Update struct {
	Video      string          `json:"video,omitempty"`
	PositionMs int64           `json:"position_ms"`
	DurationMs int64           `json:"duration_ms"`
	Device     string          `json:"device"`
	Session    string          `json:"session"`
	State      string          `json:"state"`
	Epoch      json.RawMessage `json:"epoch,omitempty"`
	Seq        json.RawMessage `json:"seq,omitempty"`
}

// Cursor is the stored resume point.
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
}

func num(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.Trim(string(raw), `"`), 10, 64)
	return v, err == nil
}

func (s *Server) validate(u *Update) bool {
	if u.State == "" {
		u.State = "playing"
	}
	return u.DurationMs > 0 && u.PositionMs >= 0 && u.PositionMs <= u.DurationMs && u.Device != "" && u.Session != "" && u.Video != ""
}

// prepare stamps the version (when absent) and returns the script args.
func (s *Server) prepare(profile string, u *Update) (keys []string, args []any, c Cursor) {
	now := time.Now()
	epoch, ok := num(u.Epoch)
	if !ok {
		epoch = uint64(now.UnixMilli()) << 16
	}
	seq, ok := num(u.Seq)
	if !ok {
		seq = s.seq.Add(1)
	}
	c = Cursor{Video: u.Video, PositionMs: u.PositionMs, DurationMs: u.DurationMs, ResumeMs: u.PositionMs, State: u.State,
		Session: u.Session, Device: u.Device, Epoch: strconv.FormatUint(epoch, 10), Seq: strconv.FormatUint(seq, 10),
		UpdatedAt: now.UTC().Format(time.RFC3339Nano)}
	b, _ := json.Marshal(c)
	return []string{Key(profile, u.Video), Channel(profile)}, []any{Pad20(epoch), Pad20(seq), u.Session, string(b)}, c
}

func result(v any) (bool, json.RawMessage) {
	arr, _ := v.([]any)
	if len(arr) != 2 {
		return false, json.RawMessage("null")
	}
	applied, _ := arr[0].(int64)
	str, _ := arr[1].(string)
	if str == "" {
		str = "null"
	}
	return applied == 1, json.RawMessage(str)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	if !s.auth(w, r, profile) {
		return
	}
	var u Update
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&u); err != nil {
		writeErr(w, 400, "bad_request")
		return
	}
	u.Video = r.PathValue("video")
	if !s.validate(&u) {
		writeErr(w, 400, "bad_request")
		return
	}
	keys, args, _ := s.prepare(profile, &u)
	v, err := Script.Run(r.Context(), s.rdb, keys, args...).Result()
	if err != nil {
		writeErr(w, 503, "unavailable")
		return
	}
	applied, cur := result(v)
	if !applied {
		writeJSON(w, 409, map[string]any{"error": map[string]string{"code": "stale_write", "message": "stale"}, "applied": false, "cursor": cur})
		return
	}
	writeJSON(w, 200, map[string]any{"applied": true, "cursor": cur})
}

// batch runs all updates' scripts in one pipeline (one round trip).
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	if !s.auth(w, r, profile) {
		return
	}
	var body struct {
		Updates []Update `json:"updates"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || len(body.Updates) > 500 {
		writeErr(w, 400, "bad_request")
		return
	}
	for i := range body.Updates {
		if !s.validate(&body.Updates[i]) {
			writeErr(w, 400, "bad_request")
			return
		}
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(body.Updates))
	for i := range body.Updates {
		keys, args, _ := s.prepare(profile, &body.Updates[i])
		cmds[i] = Script.EvalSha(r.Context(), pipe, keys, args...)
	}
	if _, err := pipe.Exec(r.Context()); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// first use after a restart: load the script and retry once
		Script.Load(r.Context(), s.rdb)
		pipe = s.rdb.Pipeline()
		for i := range body.Updates {
			keys, args, _ := s.prepare(profile, &body.Updates[i])
			cmds[i] = Script.EvalSha(r.Context(), pipe, keys, args...)
		}
		pipe.Exec(r.Context())
	}
	type res struct {
		Applied bool            `json:"applied"`
		Cursor  json.RawMessage `json:"cursor"`
	}
	out := make([]res, len(cmds))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil {
			writeErr(w, 503, "unavailable")
			return
		}
		out[i].Applied, out[i].Cursor = result(v)
	}
	writeJSON(w, 200, map[string]any{"results": out})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	if !s.auth(w, r, profile) {
		return
	}
	c, err := s.rdb.HGet(r.Context(), Key(profile, r.PathValue("video")), "c").Result()
	if err == redis.Nil {
		writeErr(w, 404, "not_found")
		return
	}
	if err != nil {
		writeErr(w, 503, "unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(c))
}

// events is an SSE stream fed by the profile's pub/sub channel.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	profile := r.PathValue("profile")
	if !s.auth(w, r, profile) {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, 500, "no_flush")
		return
	}
	ps := s.rdb.Subscribe(r.Context(), Channel(profile))
	defer ps.Close()
	if _, err := ps.Receive(r.Context()); err != nil {
		writeErr(w, 503, "unavailable")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	fl.Flush()
	ch := ps.Channel()
	for {
		select {
		case <-r.Context().Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: cursor\ndata: {\"type\":\"cursor\",\"cursor\":%s}\n\n", m.Payload)
			fl.Flush()
		}
	}
}

// Apply runs the script once (for tests): applied and the stored cursor JSON.
func Apply(ctx context.Context, rdb *redis.Client, profile, video string, epoch, seq uint64, session, cursorJSON string) (bool, string, error) {
	v, err := Script.Run(ctx, rdb, []string{Key(profile, video), Channel(profile)}, Pad20(epoch), Pad20(seq), session, cursorJSON).Result()
	if err != nil {
		return false, "", err
	}
	ok, cur := result(v)
	return ok, string(cur), nil
}
