package main

import (
	"bufio"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
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

// startDev runs `playhead dev` with args and returns the node URLs and the
// token it printed, and the running command.
func startDev(t *testing.T, bin string, args ...string) ([]string, string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev", "--http-addr", "127.0.0.1:0", "--log-level", "error"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var urls []string
	var token string
	deadline := time.After(60 * time.Second)
	for token == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("playhead dev exited")
			}
			if f := strings.Fields(l); len(f) == 3 && f[0] == "node" {
				urls = append(urls, f[2])
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "export TOKEN="); ok {
				token = v
			}
		case <-deadline:
			t.Fatal("playhead dev printed no token in 60 s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return urls, token, cmd
}

// `playhead dev --data-dir` keeps its secret, cluster key and cluster
// addresses: a token printed by one run of the 3-node cluster is accepted
// by the next on the same directory, which comes up and still has the data.
func TestDevDataDirKeepsSecretAcrossRestarts(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	urls, tok1, cmd := startDev(t, bin, "--data-dir", dir)
	pc := &procCluster{t: t}
	n := &clusterProc{http: strings.TrimPrefix(urls[0], "http://")}
	if st, body := pc.do(n, "PUT", "/v1/profiles/me/positions/ep-1", tok1, putBody(754_000, "s-tv-1")); st != 200 {
		t.Fatalf("PUT: %d %s", st, body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	urls, _, _ = startDev(t, bin, "--data-dir", dir)
	n = &clusterProc{http: strings.TrimPrefix(urls[2], "http://")}
	if st, body := pc.do(n, "GET", "/v1/profiles/me/positions/ep-1", tok1, ""); st != 200 || position(t, body) != 754_000 {
		t.Fatalf("yesterday's token after a restart on the same --data-dir: %d %s", st, body)
	}
}
