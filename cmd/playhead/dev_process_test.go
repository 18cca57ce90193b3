package main

import (
	"bufio"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `playhead dev` (the README's first command) starts a 3-node cluster and
// prints what a newcomer needs: a write through node 1 is read on node 3.
func TestDevStartsAWorkingCluster(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "dev", "--http-addr", "127.0.0.1:0", "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var urls []string
	var token, page string
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for token == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("playhead dev exited")
			}
			if f := strings.Fields(l); len(f) == 3 && f[0] == "node" {
				urls = append(urls, f[2])
			}
			if strings.Contains(l, "/#token=") {
				page = strings.TrimSpace(l)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "export TOKEN="); ok {
				token = v
			}
		case <-deadline:
			t.Fatal("playhead dev printed no token in 30 s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	if len(urls) != 3 {
		t.Fatalf("node URLs: %v", urls)
	}
	// The demo page's URL carries the same token, and node 1 serves it.
	if page != urls[0]+"/#token="+token+"&profile=me" {
		t.Fatalf("page URL %q, want node 1's / with the token in the fragment", page)
	}
	if res, err := http.Get(urls[0] + "/"); err != nil || res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / on node 1: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	pc := &procCluster{t: t}
	n1 := &clusterProc{http: strings.TrimPrefix(urls[0], "http://")}
	n3 := &clusterProc{http: strings.TrimPrefix(urls[2], "http://")}
	if st, body := pc.do(n1, "PUT", "/v1/profiles/me/positions/ep-1", token, putBody(754_000, "s-tv-1")); st != 200 {
		t.Fatalf("PUT via node 1: %d %s", st, body)
	}
	if st, body := pc.do(n3, "GET", "/v1/profiles/me/positions/ep-1", token, ""); st != 200 || position(t, body) != 754_000 {
		t.Fatalf("GET via node 3: %d %s", st, body)
	}
}
