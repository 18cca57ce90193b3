package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
)

// BenchmarkHTTPPut measures a PUT round trip through the whole stack: HTTP
// (httptest, keep-alive), auth (token cache), decoding, the coordinator and
// a synced write to Pebble on disk; parallel clients share WAL syncs (group
// commit). Each client reports positions for its own video, node-stamped.
//
//	go test ./node -run '^$' -bench HTTPPut -benchtime 2000x
func BenchmarkHTTPPut(b *testing.B) {
	n, err := New(Config{NodeID: "bench", DataDir: b.TempDir(), AuthSecret: testSecret,
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	defer n.Shutdown(context.Background())
	tok, _ := api.IssueToken(testSecret, "bench", nil, false, time.Hour, time.Now())
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: transport}
	defer transport.CloseIdleConnections()
	var clients atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients.Add(1)
		url := fmt.Sprintf("%s/v1/profiles/p%d/positions/video-%d", srv.URL, c%16, c)
		for i := int64(1); pb.Next(); i++ {
			body := fmt.Sprintf(`{"position_ms":%d,"duration_ms":360000000,"device":"dev-%d","session":"s-%d"}`, i*1000, c, c)
			req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// benchWriter is a reusable http.ResponseWriter for handler benchmarks: it
// keeps the status and the body's length, so the benchmark's own side
// allocates nothing per request.
type benchWriter struct {
	h      http.Header
	status int
	n      int
	body   []byte
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	w.body = append(w.body[:0], b...)
	return len(b), nil
}

// SetReadDeadline lets http.ResponseController set the body's deadline, as
// the server's writer does (it has no connection to set it on).
func (w *benchWriter) SetReadDeadline(time.Time) error { return nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// BenchmarkPUTHandler measures one PUT through the node's real handler
// (instrumentation, auth with its token cache, routing, decoding, the
// coordinator, a synced write to Pebble on disk, the JSON answer) without a
// network or an HTTP client: allocs/op and B/op are the server's own, and
// cpu-µs/op is the process's CPU time (user and system, Pebble's WAL
// goroutine and fsyncs included) per request. 16 writers per core, each with
// its own profile and video, node-stamped, share WAL syncs (group commit).
//
//	go test ./node -run '^$' -bench PUT -benchmem -benchtime 20000x
func BenchmarkPUTHandler(b *testing.B) {
	benchHandlerWrites(b, "PUT", func(c int64) (string, string) {
		return fmt.Sprintf("/v1/profiles/p%d/positions/video-%d", c, c),
			fmt.Sprintf(`{"position_ms":%d,"duration_ms":3600000,"device":"dev-%d","session":"%016x","state":"playing"}`, 1000*c, c, c)
	})
}

// BenchmarkPOSTBatchHandler is BenchmarkPUTHandler for a batch of 50
// updates (50 videos of one profile) per request; the figures are per
// request (divide by 50 for an update).
//
//	go test ./node -run '^$' -bench POSTBatch -benchmem -benchtime 2000x
func BenchmarkPOSTBatchHandler(b *testing.B) {
	benchHandlerWrites(b, "POST", func(c int64) (string, string) {
		var sb strings.Builder
		sb.WriteString(`{"updates":[`)
		for v := range 50 {
			if v > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"video":"video-%d","position_ms":%d,"duration_ms":3600000,"device":"dev-%d","session":"%016x","state":"playing"}`, v, 1000*v, c, c)
		}
		sb.WriteString(`]}`)
		return fmt.Sprintf("/v1/profiles/p%d/positions", c), sb.String()
	})
}

func benchHandlerWrites(b *testing.B, method string, target func(client int64) (path, body string)) {
	n, err := New(Config{NodeID: "bench", DataDir: b.TempDir(), AuthSecret: testSecret,
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	h := n.Handler()
	tok, _ := api.IssueToken(testSecret, "bench", nil, false, time.Hour, time.Now())
	var clients atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients.Add(1)
		path, body := target(c)
		rd := strings.NewReader(body)
		req := httptest.NewRequest(method, path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			rd.Reset(body)
			req.Body = io.NopCloser(rd)
			req.ContentLength = int64(len(body))
			w.reset()
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Errorf("status %d: %s", w.status, w.body)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
