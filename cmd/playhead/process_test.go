package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles playhead once per test run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "playhead-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "playhead")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// handedOut holds every address freeAddr returned in this test binary. The
// kernel may give a port just closed to the next Listen(":0"), so two
// addresses picked for one cluster could collide (n4's HTTP address was n5's
// replication address once); never hand out the same one twice.
var handedOut sync.Map

func freeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
	t.Fatal("no free address after 100 tries")
	return ""
}

// proc is a running playhead serve.
type proc struct {
	cmd  *exec.Cmd
	addr string
	out  *bytes.Buffer
}

func startServe(t *testing.T, bin, dataDir, secretFile, addr string) *proc {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--http-addr", addr, "--auth-secret-file", secretFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: addr, out: &out}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("playhead serve did not become ready:\n%s", out.String())
	return nil
}

func mintToken(t testing.TB, bin, secretFile, account string) string {
	t.Helper()
	out, err := exec.Command(bin, "token", "--secret-file", secretFile, "--account", account, "--profile", "p1").Output()
	if err != nil {
		t.Fatalf("playhead token: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		t.Fatal("playhead token printed nothing")
	}
	return f[len(f)-1]
}

// TestSIGKILLKeepsEveryAcknowledgedWrite starts the real binary, writes from
// several goroutines, kills the process with SIGKILL mid-stream, restarts it
// on the same data dir and checks that every acknowledged write is there.
func TestSIGKILLKeepsEveryAcknowledgedWrite(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef-test-secret\n"), 0o600)
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	p := startServe(t, bin, data, secret, addr)
	tok := mintToken(t, bin, secret, "acct-1")

	var mu sync.Mutex
	acked := map[string]int64{} // video -> highest acknowledged position
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			video := fmt.Sprintf("video-%d", w)
			for i := int64(1); ctx.Err() == nil; i++ {
				pos := i * 1000
				body := fmt.Sprintf(`{"position_ms":%d,"duration_ms":100000000,"device":"d%d","session":"s%d"}`, pos, w, w)
				req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+addr+"/v1/profiles/p1/positions/"+video, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					return // the process is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[video] = pos
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatalf("no write was acknowledged before the kill:\n%s", p.out.String())
	}

	p2 := startServe(t, bin, data, secret, addr)
	total := 0
	for video, pos := range acked {
		req, _ := http.NewRequest("GET", "http://"+p2.addr+"/v1/profiles/p1/positions/"+video, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			PositionMs int64 `json:"position_ms"`
		}
		json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if resp.StatusCode != 200 || c.PositionMs < pos {
			t.Errorf("%s: acknowledged position %d, after restart status %d position %d", video, pos, resp.StatusCode, c.PositionMs)
		}
		total += int(pos / 1000)
	}
	t.Logf("%d acknowledged writes across %d videos survived SIGKILL", total, len(acked))
}

// TestSIGTERMShutsDownGracefully checks that SIGTERM ends the process with
// exit status 0 and that a restart finds the data.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef-test-secret"), 0o600)
	addr := freeAddr(t)
	p := startServe(t, bin, filepath.Join(dir, "data"), secret, addr)
	tok := mintToken(t, bin, secret, "acct-1")
	req, _ := http.NewRequest("PUT", "http://"+addr+"/v1/profiles/p1/positions/v1",
		strings.NewReader(`{"position_ms":600000,"duration_ms":3600000,"device":"tv","session":"s1"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("put: %v %v", err, resp)
	}
	resp.Body.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15 s of SIGTERM:\n%s", p.out.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
	sawShutdown := false
	for sc.Scan() {
		if strings.Contains(strings.ToLower(sc.Text()), "shut") {
			sawShutdown = true
		}
	}
	if !sawShutdown {
		t.Errorf("no shutdown log line:\n%s", p.out.String())
	}
	p2 := startServe(t, bin, filepath.Join(dir, "data"), secret, addr)
	req, _ = http.NewRequest("GET", "http://"+p2.addr+"/v1/profiles/p1/positions/v1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("get after restart: %v %v", err, resp)
	}
	resp.Body.Close()
}
