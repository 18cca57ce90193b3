package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthURL(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080/readyz",
		":9000":          "http://127.0.0.1:9000/readyz",
		"[::]:8080":      "http://[::1]:8080/readyz",
		"10.0.0.5:80":    "http://10.0.0.5:80/readyz",
		"localhost:8080": "http://localhost:8080/readyz",
	} {
		if got, err := healthURL(addr, false); err != nil || got != want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := healthURL("nonsense", false); err == nil {
		t.Error("a malformed address was accepted")
	}
}

// `playhead health` exits 0 on 200 and 1 otherwise, saying why.
func TestHealthCommand(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"status":"x"}`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if code := run([]string{"health", "--http-addr", addr}, io.Discard, io.Discard); code != 0 {
		t.Errorf("ready node: exit %d", code)
	}
	status = http.StatusServiceUnavailable
	var errb bytes.Buffer
	if code := run([]string{"health", "--http-addr", addr}, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "503") {
		t.Errorf("unready node: exit %d, %q", code, errb.String())
	}
	srv.Close()
	if code := run([]string{"health", "--http-addr", addr}, io.Discard, io.Discard); code != 1 {
		t.Errorf("no node: exit %d", code)
	}
}

// `playhead bench` points to the bench's own binary.
func TestBenchMovedPointer(t *testing.T) {
	var errb bytes.Buffer
	if code := run([]string{"bench", "--url", "x"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "go run ./cmd/playhead-bench") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
