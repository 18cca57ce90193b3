package node

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/playhead/playhead/api"
)

// respWriter records what a handler answered, for the request log and the
// metrics. It unwraps (http.ResponseController, the WebSocket upgrade).
type respWriter struct {
	http.ResponseWriter
	r       *http.Request
	reqID   string
	status  int
	stream  bool // a push stream: not timed in the latency histogram
	account string
	// muxError: the mux found no route and answered 404 or 405 itself; the
	// JSON error has been written and the mux's text body is dropped.
	muxError bool
}

func (w *respWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.muxError = true
		e := errNotFound("no such endpoint: %s %s (see API.md)", w.r.Method, truncate(w.r.URL.Path))
		if code == http.StatusMethodNotAllowed {
			e = &apiError{status: code, code: api.CodeBadRequest,
				msg: fmt.Sprintf("method %s is not allowed here; allowed: %s", w.r.Method, w.Header().Get("Allow"))}
		}
		w.Header().Del("X-Content-Type-Options")
		writeError(w.ResponseWriter, e)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.muxError {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets SSE flush through the wrapper without a ResponseController.
func (w *respWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// requestIDs issues request ids: a random per-node prefix and a counter.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// instrument is the outermost handler: it stamps Playhead-HLC and
// X-Request-Id on every response, recovers panics, and logs and measures
// each request. Tokens are never logged (only the path, never the query).
func (n *Node) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &respWriter{ResponseWriter: w, r: r, reqID: requestID(r, &n.reqIDs)}
		// Set by hand under their canonical keys, both values in one
		// allocation: Header.Set canonicalised "Playhead-HLC" into a new
		// string and allocated a slice per header, on every request.
		h := w.Header()
		vals := []string{n.svc.Now().String(), rw.reqID}
		h["Playhead-Hlc"] = vals[0:1:1]
		h["X-Request-Id"] = vals[1:2:2]
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				n.log.Error("panic in handler", "request_id", rw.reqID, "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rw.status == 0 {
					writeError(rw, &apiError{status: http.StatusInternalServerError, code: api.CodeUnavailable, msg: "internal error; retry"})
				}
			}
			n.observe(rw, r, time.Since(start))
		}()
		next.ServeHTTP(rw, r)
	})
}

// requestID honours a sane incoming X-Request-Id, else issues one.
func requestID(r *http.Request, g *requestIDs) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && api.ValidID(id) && !strings.ContainsRune(id, ' ') {
		return id
	}
	return g.next()
}

func (n *Node) observe(rw *respWriter, r *http.Request, d time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	n.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	if !rw.stream {
		n.metrics.latency.WithLabelValues(route).Observe(d.Seconds())
	}
	if n.log.Enabled(r.Context(), slog.LevelDebug) {
		n.log.Debug("request", "request_id", rw.reqID, "method", r.Method, "path", r.URL.Path,
			"route", route, "status", status, "duration", d, "account", rw.account)
	}
}
