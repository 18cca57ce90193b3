package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRawClient: the generator's own HTTP client sends what net/http would
// (method, path, token, body) and reads answers with a length, chunked
// answers and answers that close the connection, on one connection while
// the server keeps it alive and on a new one when the server closed it.
func TestRawClient(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" || r.Host == "" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.Path {
		case "/echo":
			if r.Method != "PUT" || r.Header.Get("Content-Type") != "application/json" || string(body) != `{"a":1}` {
				w.WriteHeader(400)
				return
			}
			w.Write([]byte(`{"ok":true}`))
		case "/chunked":
			w.Write([]byte(strings.Repeat("x", 100)))
			w.(http.Flusher).Flush() // no Content-Length: chunked
			w.Write([]byte(strings.Repeat("y", 5000)))
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(409)
			w.Write([]byte("stale"))
		default:
			w.WriteHeader(404)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host, ok := rawHost(srv.URL)
	if !ok {
		t.Fatalf("rawHost(%q)", srv.URL)
	}
	c := newRawClient(host)
	defer c.close()
	ctx := context.Background()
	for i, tc := range []struct {
		method, path string
		body         string
		want         int
		conns        int64
	}{
		{"PUT", "/echo", `{"a":1}`, 200, 1},
		{"GET", "/chunked", "", 200, 1},
		{"PUT", "/echo", `{"a":1}`, 200, 1},
		{"GET", "/nope", "", 404, 1},
		{"POST", "/close", `{}`, 409, 1},
		{"PUT", "/echo", `{"a":1}`, 200, 2}, // a new connection after close
	} {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		st, err := c.do(ctx, tc.method, tc.path, "tok", body)
		if err != nil || st != tc.want {
			t.Fatalf("request %d %s %s: status %d, err %v; want %d", i, tc.method, tc.path, st, err, tc.want)
		}
		if n := conns.Load(); n != tc.conns {
			t.Fatalf("request %d: %d connections, want %d", i, n, tc.conns)
		}
	}
	// The server drops its idle connections: the next request retries on a
	// new one instead of failing.
	srv.CloseClientConnections()
	if st, err := c.do(ctx, "PUT", "/echo", "tok", []byte(`{"a":1}`)); err != nil || st != 200 {
		t.Fatalf("after the server closed the idle connection: %d %v", st, err)
	}
	for _, u := range []string{"https://h:1", "http://h:1/prefix", "http://user@h:1", "http://"} {
		if _, ok := rawHost(u); ok {
			t.Errorf("rawHost(%q) accepted", u)
		}
	}
}
