package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// clusterProc is one `playhead serve` cluster member.
type clusterProc struct {
	id, dataDir             string
	http, gossip, rpc, raft string
	cmd                     *exec.Cmd
	out                     *bytes.Buffer
}

type procCluster struct {
	t      testing.TB
	bin    string
	dir    string
	secret string
	key    string
	nodes  []*clusterProc
	token  string
	admin  string
	extra  []string // more serve flags for every member
}

func newProcCluster(t testing.TB) *procCluster {
	bin := binary(t)
	dir := t.TempDir()
	pc := &procCluster{t: t, bin: bin, dir: dir, secret: filepath.Join(dir, "secret"), key: filepath.Join(dir, "cluster.key")}
	os.WriteFile(pc.secret, []byte("0123456789abcdef0123456789abcdef-test-secret\n"), 0o600)
	out, err := exec.Command(bin, "keygen").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pc.key, out, 0o600)
	pc.token = mintToken(t, bin, pc.secret, "acct-1")
	o, err := exec.Command(bin, "token", "--secret-file", pc.secret, "--account", "acct-1", "--admin").Output()
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	f := strings.Fields(string(o))
	pc.admin = f[len(f)-1]
	return pc
}

// add starts a new member (joining the first one unless it is the first).
func (pc *procCluster) add(expect int) *clusterProc {
	i := len(pc.nodes) + 1
	p := &clusterProc{id: fmt.Sprintf("n%d", i), dataDir: filepath.Join(pc.dir, fmt.Sprintf("n%d", i)),
		http: freeAddr(pc.t), gossip: freeAddr(pc.t), rpc: freeAddr(pc.t), raft: freeAddr(pc.t)}
	pc.nodes = append(pc.nodes, p)
	pc.start(p, expect)
	return p
}

func (pc *procCluster) start(p *clusterProc, expect int) {
	args := []string{"serve", "--node-id", p.id, "--data-dir", p.dataDir, "--http-addr", p.http,
		"--gossip-addr", p.gossip, "--rpc-addr", p.rpc, "--raft-addr", p.raft,
		"--auth-secret-file", pc.secret, "--gossip-key-file", pc.key, "--bootstrap-expect", fmt.Sprint(expect),
		"--dead-node-grace", "1h", "--log-level", "warn", "--device-rate", "-1", "--loopback-timings"}
	args = append(args, pc.extra...)
	for _, q := range pc.nodes {
		if q != p {
			args = append(args, "--join", q.gossip)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(pc.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	p.cmd, p.out = cmd, &out
	pc.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func (pc *procCluster) waitReady(p *clusterProc) {
	pc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	pc.t.Fatalf("%s did not become ready:\n%s", p.id, p.out.String())
}

type clusterView struct {
	Members []struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		Partitions int    `json:"partitions"`
	} `json:"members"`
	RaftLeader string `json:"raft_leader"`
}

// waitRing waits until node p reports want members owning partitions.
func (pc *procCluster) waitRing(p *clusterProc, want int) clusterView {
	pc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var v clusterView
	for time.Now().Before(deadline) {
		st, body := pc.do(p, "GET", "/v1/cluster", pc.admin, "")
		if st == 200 {
			v = clusterView{}
			json.Unmarshal(body, &v)
			owning := 0
			for _, m := range v.Members {
				if m.Partitions > 0 {
					owning++
				}
			}
			if owning == want {
				return v
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	pc.t.Fatalf("the ring never had %d owning members: %+v", want, v)
	return v
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func (pc *procCluster) do(p *clusterProc, method, path, token, body string) (int, []byte) {
	req, _ := http.NewRequest(method, "http://"+p.http+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func putBody(pos int64, session string) string {
	return fmt.Sprintf(`{"position_ms":%d,"duration_ms":100000000,"device":"d","session":%q}`, pos, session)
}

func position(t testing.TB, body []byte) int64 {
	var c struct {
		PositionMs int64 `json:"position_ms"`
	}
	json.Unmarshal(body, &c)
	return c.PositionMs
}

func (pc *procCluster) startThree() {
	for range 3 {
		pc.add(3)
	}
	for _, p := range pc.nodes {
		pc.waitReady(p)
	}
	pc.waitRing(pc.nodes[0], 3)
}

// A write through node 1 is read from node 3 and pushed to a subscriber on
// node 2 within a second.
func TestClusterProcessesWriteReadPush(t *testing.T) {
	pc := newProcCluster(t)
	pc.startThree()
	n1, n2, n3 := pc.nodes[0], pc.nodes[1], pc.nodes[2]

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n2.http+"/v1/profiles/p1/events", nil)
	req.Header.Set("Authorization", "Bearer "+pc.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			got <- sc.Text()
		}
		close(got)
	}()
	time.Sleep(500 * time.Millisecond) // interest reaches the owners

	start := time.Now()
	if st, body := pc.do(n1, "PUT", "/v1/profiles/p1/positions/film", pc.token, putBody(754_000, "s1")); st != 200 {
		t.Fatalf("write via n1: %d %s", st, body)
	}
	if st, body := pc.do(n3, "GET", "/v1/profiles/p1/positions/film", pc.token, ""); st != 200 || position(t, body) != 754_000 {
		t.Fatalf("read via n3: %d %s", st, body)
	}
	for {
		select {
		case l, ok := <-got:
			if !ok {
				t.Fatal("push stream closed")
			}
			if strings.Contains(l, `"position_ms":754000`) {
				t.Logf("push reached the subscriber on n2 %v after the write on n1", time.Since(start).Round(time.Millisecond))
				return
			}
		case <-time.After(time.Until(start.Add(time.Second))):
			t.Fatal("no push on n2 within 1 s of the write on n1")
		}
	}
}

// writer writes to every video in a loop through the given nodes and
// records the highest acknowledged position per video.
type writer struct {
	mu      sync.Mutex
	acked   map[string]int64
	ok, bad atomic.Int64
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func (pc *procCluster) startWriter(through []*clusterProc, workers int) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{acked: map[string]int64{}, stop: cancel}
	for i := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			// Each worker writes its own profile, so the writes spread over
			// partitions that different nodes coordinate.
			video := fmt.Sprintf("p%d/positions/v%d", i, i)
			for k := int64(1); ctx.Err() == nil; k++ {
				p := through[int(k)%len(through)]
				st, body := pc.do(p, "PUT", "/v1/profiles/"+video, pc.admin, putBody(k*1000, fmt.Sprint("s", i)))
				if st != 200 && os.Getenv("DEBUG_WRITER") != "" {
					fmt.Println(st, string(body))
				}
				if st == 200 {
					w.ok.Add(1)
					w.mu.Lock()
					w.acked[video] = max(w.acked[video], k*1000)
					w.mu.Unlock()
				} else {
					w.bad.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return w
}

func (w *writer) finish() map[string]int64 {
	w.stop()
	w.wg.Wait()
	return w.acked
}

// SIGKILL one node while a writer runs at full speed: writes keep
// succeeding, and after the node restarts every acknowledged write is on it
// within 5 s. Then two nodes die: writes answer 503, and nothing
// acknowledged is lost.
func TestClusterProcessesNodeLossAndQuorumLoss(t *testing.T) {
	pc := newProcCluster(t)
	pc.startThree()
	n1, n2, n3 := pc.nodes[0], pc.nodes[1], pc.nodes[2]

	w := pc.startWriter([]*clusterProc{n1, n2}, 8)
	time.Sleep(time.Second)
	n3.cmd.Process.Signal(syscall.SIGKILL)
	n3.cmd.Wait()
	killedAt := w.ok.Load()
	time.Sleep(3 * time.Second)
	if after := w.ok.Load() - killedAt; after < 50 {
		t.Fatalf("only %d writes succeeded in the 3 s after n3 died", after)
	}
	acked := w.finish()
	t.Logf("%d writes acknowledged, %d refused while n3 was killed", w.ok.Load(), w.bad.Load())

	pc.start(n3, 3)
	restarted := time.Now()
	pc.waitReady(n3)
	// ?replica=local reads a node's own replica (RF=3 of 3: every node
	// holds every partition), so it shows what each replica holds. All three must hold every one
	// within 5 s of the restart (anti-entropy and hints).
	missing := func() (string, int64) {
		for _, p := range []*clusterProc{n3, n1, n2} {
			for video, pos := range acked {
				st, body := pc.do(p, "GET", "/v1/profiles/"+video+"?replica=local", pc.admin, "")
				if st != 200 || position(t, body) < pos {
					return p.id + " " + video, pos
				}
			}
		}
		return "", 0
	}
	for {
		video, pos := missing()
		if video == "" {
			t.Logf("all three replicas held every acknowledged write %v after n3's restart", time.Since(restarted).Round(10*time.Millisecond))
			break
		}
		if time.Since(restarted) > 5*time.Second {
			t.Fatalf("5 s after n3's restart, %s still lacks position %d", video, pos)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n1.cmd.Process.Signal(syscall.SIGKILL)
	n2.cmd.Process.Signal(syscall.SIGKILL)
	n1.cmd.Wait()
	n2.cmd.Wait()
	for video, pos := range acked {
		st, body := pc.do(n3, "GET", "/v1/profiles/"+video+"?replica=local", pc.admin, "")
		if st != 200 || position(t, body) < pos {
			t.Errorf("%s: acknowledged %d, on n3 alone: %d %s", video, pos, st, body)
		}
	}

	// Quorum loss: n3 alone cannot take writes.
	st, body := pc.do(n3, "PUT", "/v1/profiles/p1/positions/new", pc.token, putBody(1000, "sx"))
	if st != 503 || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("write with 1 of 3 replicas: %d %s", st, body)
	}
}

// A fourth node joins and takes its share of partitions with no write lost
// and reads correct throughout; then it leaves gracefully.
func TestClusterProcessesJoinAndLeave(t *testing.T) {
	pc := newProcCluster(t)
	pc.startThree()
	n1, n2 := pc.nodes[0], pc.nodes[1]

	w := pc.startWriter([]*clusterProc{n1, n2}, 4)
	time.Sleep(500 * time.Millisecond)
	n4 := pc.add(3)
	pc.waitReady(n4)
	v := pc.waitRing(n1, 4)
	for _, m := range v.Members {
		if m.ID == "n4" && (m.Partitions < 1024*3/4*9/10 || m.Partitions > 1024*3/4*11/10) {
			t.Errorf("n4 owns %d partition replicas, fair share %d", m.Partitions, 1024*3/4)
		}
	}
	time.Sleep(2 * time.Second) // handoff, with writes running
	acked := w.finish()
	for _, p := range pc.nodes {
		for video, pos := range acked {
			st, body := pc.do(p, "GET", "/v1/profiles/"+video, pc.admin, "")
			if st != 200 || position(t, body) < pos {
				t.Errorf("%s via %s after the join: acknowledged %d, read %d %s", video, p.id, pos, st, body)
			}
		}
	}
	t.Logf("%d writes acknowledged across the join, %d refused", w.ok.Load(), w.bad.Load())

	// Graceful leave: the ring goes back to three owners, nothing is lost.
	n4.cmd.Process.Signal(syscall.SIGTERM)
	if err := n4.cmd.Wait(); err != nil {
		t.Fatalf("n4 did not exit cleanly: %v\n%s", err, n4.out.String())
	}
	pc.waitRing(n1, 3)
	for video, pos := range acked {
		// A leave can move raft's leadership (n4 may have led): a node
		// answers 503 with Retry-After until it is in contact with the new
		// leader, and a client retries, as this one does.
		st, body := pc.do(n2, "GET", "/v1/profiles/"+video, pc.admin, "")
		for deadline := time.Now().Add(10 * time.Second); st == 503 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			st, body = pc.do(n2, "GET", "/v1/profiles/"+video, pc.admin, "")
		}
		if st != 200 || position(t, body) < pos {
			t.Errorf("%s after n4 left: acknowledged %d, read %d %s", video, pos, st, body)
		}
	}
}
