package node

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/crdt"
)

// sseWriteTimeout bounds one SSE write and flush.
const sseWriteTimeout = 10 * time.Second

// sseRetryMs is the reconnect delay suggested to EventSource clients.
const sseRetryMs = 1000

// serveSSE runs a Server-Sent Events push stream: one "event: <type>" and
// "data: <json>" per event, flushed at once; cursor events carry "id:
// <resume point>" (the stream's after, not the newest updated_hlc sent) so
// an EventSource resumes with Last-Event-ID and misses nothing; a comment line
// every SSEHeartbeat keeps proxies from closing the stream.
func (s *stream) serveSSE(replay []crdt.Cursor) {
	n, c := s.n, s.call
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.w)
	defer rc.SetWriteDeadline(time.Time{})
	bw := bufio.NewWriter(c.w)
	flush := func() bool {
		rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		return bw.Flush() == nil && rc.Flush() == nil
	}
	bw.WriteString("retry: " + strconv.Itoa(sseRetryMs) + "\n: connected\n\n")
	if !flush() {
		return
	}
	send := func(typ string, data []byte, id crdt.HLC) bool {
		if id != 0 {
			bw.WriteString("id: " + id.String() + "\n")
		}
		bw.WriteString("event: " + typ + "\ndata: ")
		bw.Write(data)
		bw.WriteString("\n\n")
		if !flush() {
			return false
		}
		if typ != api.EventError {
			n.metrics.pushSent.WithLabelValues(transportSSE).Inc()
		}
		return true
	}
	for _, ev := range s.replayEvents(replay) {
		typ, data, ok := s.encode(ev, true)
		if ok && !send(typ, data, s.after) {
			return
		}
	}
	heartbeat := time.NewTicker(n.cfg.SSEHeartbeat)
	defer heartbeat.Stop()
	expiry := time.NewTimer(time.Until(c.p.exp))
	defer expiry.Stop()
	var evs []*Pushed
	for {
		select {
		case <-s.sub.Ready():
			evs = s.sub.Take(evs[:0])
			for _, ev := range evs {
				typ, data, ok := s.encode(&ev.Event, false)
				if !ok {
					continue
				}
				var id crdt.HLC
				if typ == api.EventCursor {
					id = s.after
				}
				if !send(typ, data, id) {
					return
				}
			}
		case <-heartbeat.C:
			bw.WriteString(": ping\n\n")
			if !flush() {
				return
			}
		case <-s.sub.Done():
			code, msg := s.endMessage()
			b, _ := json.Marshal(api.ErrorEvent{Type: api.EventError, Error: api.ErrorDetail{Code: code, Message: msg}})
			send(api.EventError, b, 0)
			return
		case <-expiry.C:
			b, _ := json.Marshal(api.ErrorEvent{Type: api.EventError, Error: api.ErrorDetail{Code: api.CodeUnauthorized, Message: "token expired; reconnect with a new token and after=" + s.after.String()}})
			send(api.EventError, b, 0)
			return
		case <-c.r.Context().Done():
			return
		}
	}
}
