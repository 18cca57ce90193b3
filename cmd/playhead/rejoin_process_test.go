package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Rejoin tests (issue 11): real `playhead serve` processes whose join seeds
// die, or that are cut off past the failure detector, must come back into
// one cluster, and must not serve while they are out of it.

// addSeeded starts a new member that joins seeds (not every earlier
// member, as add does), with the given dead-node grace.
func (pc *procCluster) addSeeded(expect int, grace string, seeds ...*clusterProc) *clusterProc {
	i := len(pc.nodes) + 1
	p := &clusterProc{id: fmt.Sprintf("n%d", i), dataDir: filepath.Join(pc.dir, fmt.Sprintf("n%d", i)),
		http: freeAddr(pc.t), gossip: freeAddr(pc.t), rpc: freeAddr(pc.t), raft: freeAddr(pc.t)}
	pc.nodes = append(pc.nodes, p)
	pc.startSeeded(p, expect, grace, seeds...)
	return p
}

// startSeeded (re)starts p joining seeds (p itself is skipped).
func (pc *procCluster) startSeeded(p *clusterProc, expect int, grace string, seeds ...*clusterProc) {
	args := []string{"serve", "--node-id", p.id, "--data-dir", p.dataDir, "--http-addr", p.http,
		"--gossip-addr", p.gossip, "--rpc-addr", p.rpc, "--raft-addr", p.raft,
		"--auth-secret-file", pc.secret, "--gossip-key-file", pc.key, "--bootstrap-expect", fmt.Sprint(expect),
		"--dead-node-grace", grace, "--log-level", "warn", "--device-rate", "-1", "--loopback-timings"}
	for _, q := range seeds {
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
	pc.t.Cleanup(func() { cmd.Process.Signal(syscall.SIGCONT); cmd.Process.Kill(); cmd.Wait() })
}

func (pc *procCluster) kill(ps ...*clusterProc) {
	for _, p := range ps {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	for _, p := range ps {
		p.cmd.Wait()
	}
}

// oneCluster waits until every node is ready and sees every node alive and
// owning partitions, with the same raft leader: one cluster, one ring.
func (pc *procCluster) oneCluster(timeout time.Duration) time.Duration {
	pc.t.Helper()
	start := time.Now()
	why := ""
	for time.Since(start) < timeout {
		why = pc.whyNotOne()
		if why == "" {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range pc.nodes {
		pc.t.Logf("%s log:\n%s", p.id, p.out.String())
	}
	pc.t.Fatalf("not one cluster after %v: %s", timeout, why)
	return 0
}

func (pc *procCluster) whyNotOne() string {
	leader := ""
	for _, p := range pc.nodes {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err != nil {
			return p.id + ": " + err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Sprintf("%s /readyz %d", p.id, resp.StatusCode)
		}
		st, body := pc.do(p, "GET", "/v1/cluster", pc.admin, "")
		var v clusterView
		if st != 200 || json.Unmarshal(body, &v) != nil {
			return fmt.Sprintf("%s /v1/cluster %d %s", p.id, st, body)
		}
		alive, owning := 0, 0
		for _, m := range v.Members {
			if m.State == "alive" {
				alive++
			}
			if m.Partitions > 0 {
				owning++
			}
		}
		if alive != len(pc.nodes) || owning != len(pc.nodes) {
			return fmt.Sprintf("%s sees %d alive, %d owning of %d: %s", p.id, alive, owning, len(pc.nodes), body)
		}
		if leader == "" {
			leader = v.RaftLeader
		}
		if v.RaftLeader == "" || v.RaftLeader != leader {
			return fmt.Sprintf("%s has raft leader %q, another node %q", p.id, v.RaftLeader, leader)
		}
	}
	return ""
}

// checkAcked reads every acknowledged position through every node.
func (pc *procCluster) checkAcked(acked map[string]int64) {
	pc.t.Helper()
	for _, p := range pc.nodes {
		for video, pos := range acked {
			var st int
			var body []byte
			for range 20 { // a 503 is an honest answer; retry it
				if st, body = pc.do(p, "GET", "/v1/profiles/"+video, pc.admin, ""); st != 503 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if st != 200 || position(pc.t, body) < pos {
				pc.t.Errorf("%s via %s: acknowledged %d, read %d %s", video, p.id, pos, st, body)
			}
		}
	}
}

func (pc *procCluster) noPanics() {
	pc.t.Helper()
	for _, p := range pc.nodes {
		if strings.Contains(p.out.String(), "panic") {
			pc.t.Errorf("%s panicked:\n%s", p.id, p.out.String())
		}
	}
}

// startFive starts n1..n5, every one joining through n1 and n2 only
// (`--join n1 --join n2`), as an operator lists two seeds.
func (pc *procCluster) startFive(grace string) {
	n1 := pc.addSeeded(3, grace)
	n2 := pc.addSeeded(3, grace, n1)
	for range 3 {
		pc.addSeeded(3, grace, n1, n2)
	}
	pc.oneCluster(40 * time.Second)
}

// TestClusterKillingBothSeedsRejoins: five nodes joined through seeds n1
// and n2; both seeds are SIGKILLed, stay down past the dead-node grace (the
// ring drops them), and restart joining only each other. Before the fix
// they formed a second cluster for good. Now they rejoin through the peers
// they remembered (and the others redial them): one cluster with every
// node, writes flowing throughout, nothing acknowledged lost.
func TestClusterKillingBothSeedsRejoins(t *testing.T) {
	pc := newProcCluster(t)
	t0 := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what) }
	pc.startFive("3s")
	phase("five nodes ready")
	n1, n2, n3, n4, n5 := pc.nodes[0], pc.nodes[1], pc.nodes[2], pc.nodes[3], pc.nodes[4]
	w := pc.startWriter([]*clusterProc{n3, n4, n5}, 6)
	time.Sleep(time.Second)
	pc.kill(n1, n2)
	pc.waitRing(n3, 3) // past the grace: the ring is n3, n4, n5
	phase("seeds killed and dropped from the ring")
	okBefore := w.ok.Load()
	time.Sleep(time.Second)
	if w.ok.Load() == okBefore {
		t.Fatal("no write succeeded on the three-node ring")
	}
	pc.startSeeded(n1, 3, "3s", n2)
	pc.startSeeded(n2, 3, "3s", n1)
	took := pc.oneCluster(30 * time.Second)
	t.Logf("one cluster of five %v after both seeds restarted", took.Round(100*time.Millisecond))
	okHealed := w.ok.Load()
	time.Sleep(time.Second)
	if w.ok.Load() == okHealed {
		t.Fatal("no write succeeded after the heal")
	}
	acked := w.finish()
	phase("writer stopped")
	t.Logf("%d writes acknowledged, %d refused", w.ok.Load(), w.bad.Load())
	// Writes through the restarted seeds work too.
	// (A client retries a 503: right after the heal the restarted seed may
	// not yet see two owners of the partition alive.)
	st, body := pc.do(n1, "PUT", "/v1/profiles/p0/positions/v0", pc.admin, putBody(acked["p0/positions/v0"]+1000, "s0"))
	for deadline := time.Now().Add(10 * time.Second); st == 503 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		st, body = pc.do(n1, "PUT", "/v1/profiles/p0/positions/v0", pc.admin, putBody(acked["p0/positions/v0"]+1000, "s0"))
	}
	if st != 200 {
		t.Fatalf("write via n1 after the heal: %d %s", st, body)
	}
	acked["p0/positions/v0"] += 1000
	pc.checkAcked(acked)
	phase("acknowledged writes checked")
	pc.noPanics()
}

// TestClusterSplitSeedsDoNotServe: both seeds are cut off (SIGSTOP) until
// the rest declare them dead, a newer position is written to the rest, and
// the rest are frozen while the seeds resume: the seeds see only each
// other, with the ring they held. Before the fix they answered /readyz 200
// and served from that ring. Now they are not ready and answer profile
// reads and writes 503 with Retry-After until the others come back; then
// one cluster serves the newer position. (Seeds killed and restarted do not
// show the bug here: without a raft snapshot a restarted node knows no
// table until a leader reaches it; TestClusterKillingBothSeedsRejoins
// covers the restart.)
func TestClusterSplitSeedsDoNotServe(t *testing.T) {
	pc := newProcCluster(t)
	start := time.Now()
	pc.startFive("1h")
	t.Logf("five nodes ready in %v", time.Since(start).Round(100*time.Millisecond))
	n1, n2, n3, n4, n5 := pc.nodes[0], pc.nodes[1], pc.nodes[2], pc.nodes[3], pc.nodes[4]
	// Profiles whose partitions n1 and n2 both own lose their write quorum
	// with them; write several, and follow one that the rest can write.
	const profiles = 12
	for i := range profiles {
		if st, body := pc.do(n1, "PUT", fmt.Sprintf("/v1/profiles/split%d/positions/film", i), pc.admin, putBody(100_000, "s1")); st != 200 {
			t.Fatalf("first write: %d %s", st, body)
		}
	}
	// Cut the seeds off (frozen, so they keep the ring they had in memory)
	// until the rest declare them dead.
	for _, p := range []*clusterProc{n1, n2} {
		p.cmd.Process.Signal(syscall.SIGSTOP)
	}
	dl := time.Now().Add(20 * time.Second)
	for {
		st, body := pc.do(n3, "GET", "/v1/cluster", pc.admin, "")
		if st == 200 && strings.Contains(string(body), `"id":"n1","state":"dead"`) && strings.Contains(string(body), `"id":"n2","state":"dead"`) {
			break
		}
		if time.Now().After(dl) {
			t.Fatalf("n3 never declared the frozen seeds dead: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	video, name := "", ""
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; video == "" && time.Now().Before(deadline); i = (i + 1) % profiles {
		v := fmt.Sprintf("/v1/profiles/split%d/positions/film", i)
		if st, _ := pc.do(n3, "PUT", v, pc.admin, putBody(200_000, "s1")); st == 200 {
			video, name = v, fmt.Sprintf("split%d/positions/film", i)
		}
	}
	if video == "" {
		t.Fatal("no profile could be written with n1 and n2 down")
	}
	rest := []*clusterProc{n3, n4, n5}
	for _, p := range rest {
		p.cmd.Process.Signal(syscall.SIGSTOP)
	}
	for _, p := range []*clusterProc{n1, n2} {
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
	// The seeds are awake with their old table and only each other; long
	// enough for them to elect if they could (loopback raft timeouts are
	// 300 ms).
	deadline = time.Now().Add(6 * time.Second)
	checks := 0
	for time.Now().Before(deadline) {
		for _, p := range []*clusterProc{n1, n2} {
			resp, err := http.Get("http://" + p.http + "/readyz")
			if err != nil {
				continue // not listening yet
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				_, cl := pc.do(p, "GET", "/v1/cluster", pc.admin, "")
				t.Fatalf("%s reports ready while cut off from the ring's majority (%d checks before): %s", p.id, checks, cl)
			}
			req, _ := http.NewRequest("GET", "http://"+p.http+video, nil)
			req.Header.Set("Authorization", "Bearer "+pc.admin)
			resp, err = httpc.Do(req)
			if err != nil {
				continue
			}
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(b.String(), "not serving") {
				t.Fatalf("%s answered a profile read while split: %d %q %s", p.id, resp.StatusCode, resp.Header.Get("Retry-After"), b.String())
			}
			if st, b := pc.do(p, "PUT", video, pc.admin, putBody(150_000, "s9")); st != 503 {
				t.Fatalf("%s took a write while split: %d %s", p.id, st, b)
			}
			checks++
		}
		time.Sleep(200 * time.Millisecond)
	}
	if checks < 4 {
		t.Fatalf("only %d checks ran against the split seeds", checks)
	}
	for _, p := range rest {
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
	took := pc.oneCluster(30 * time.Second)
	t.Logf("one cluster %v after the others resumed; %d refusals checked while split", took.Round(100*time.Millisecond), checks)
	pc.checkAcked(map[string]int64{name: 200_000})
	pc.noPanics()
}

// TestClusterPausedNodeRejoins: a node frozen with SIGSTOP past the failure
// detector (the others declare it dead) and then resumed is a member again
// within seconds: ready, owning its partitions, serving every
// acknowledged write, including those made while it was out.
func TestClusterPausedNodeRejoins(t *testing.T) {
	pc := newProcCluster(t)
	pc.startThree()
	n1, n2, n3 := pc.nodes[0], pc.nodes[1], pc.nodes[2]
	w := pc.startWriter([]*clusterProc{n1, n2}, 4)
	time.Sleep(500 * time.Millisecond)
	n3.cmd.Process.Signal(syscall.SIGSTOP)
	// Until n1 declares n3 dead, then some more.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, body := pc.do(n1, "GET", "/v1/cluster", pc.admin, "")
		if st == 200 && strings.Contains(string(body), `"id":"n3","state":"dead"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 never declared the paused n3 dead: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	n3.cmd.Process.Signal(syscall.SIGCONT)
	took := pc.oneCluster(30 * time.Second)
	t.Logf("one cluster %v after n3 resumed", took.Round(100*time.Millisecond))
	acked := w.finish()
	t.Logf("%d writes acknowledged, %d refused", w.ok.Load(), w.bad.Load())
	pc.checkAcked(acked)
	pc.noPanics()
}
