package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBin runs the built binary and returns its stdout, failing on a
// non-zero exit.
func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("playhead %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// `playhead status` shows three serving members with their partitions and
// the raft leader, as a table and as JSON; `playhead backup` takes a
// checkpoint from a serving cluster member, `playhead restore` installs it
// in a fresh data directory, and a node started on it serves the same data.
func TestStatusBackupRestoreProcesses(t *testing.T) {
	pc := newProcCluster(t)
	pc.startThree()
	n1, n2 := pc.nodes[0], pc.nodes[1]
	videos := []string{"p1/positions/a", "p2/positions/b", "p3/positions/c", "p4/positions/d"}
	for i, v := range videos {
		if st, body := pc.do(n1, "PUT", "/v1/profiles/"+v, pc.admin, putBody(int64(i+1)*60_000, "s")); st != 200 {
			t.Fatalf("PUT %s: %d %s", v, st, body)
		}
	}
	table := runBin(t, pc.bin, "status", "--url", "http://"+n1.http, "--secret-file", pc.secret)
	t.Logf("playhead status:\n%s", table)
	for _, want := range []string{"NODE", "PARTITIONS", "HANDOFF", "HINTS", "n1", "n2", "n3", "serving", "replication 3"} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q", want)
		}
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(runBin(t, pc.bin, "status", "--json", "--url", "http://"+n2.http, "--token", pc.admin)), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Nodes) != 3 || rep.Cluster.RaftLeader == "" {
		t.Fatalf("status --json: %+v", rep)
	}
	for _, m := range rep.Nodes {
		if m.Node == nil || m.Node.State != "serving" || m.Node.Partitions != 1024 || m.Node.RaftLeader != rep.Cluster.RaftLeader || m.Node.Version == "" {
			t.Errorf("member %s: %+v %+v", m.ID, m.Node, m.Error)
		}
	}
	// A non-admin token is refused with a pointer to the fix.
	out, err := exec.Command(pc.bin, "status", "--url", "http://"+n1.http, "--token", pc.token).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "403") || !strings.Contains(string(out), "admin") {
		t.Errorf("status with a device token: %v %s", err, out)
	}

	bak := filepath.Join(pc.dir, "backup")
	runBin(t, pc.bin, "backup", "--url", "http://"+n2.http, "--secret-file", pc.secret, "--to", bak)
	if out, err := exec.Command(pc.bin, "backup", "--url", "http://"+n2.http, "--secret-file", pc.secret, "--to", bak).CombinedOutput(); err == nil || !strings.Contains(string(out), "not empty") {
		t.Errorf("backup over a non-empty directory: %v %s", err, out)
	}
	fresh := filepath.Join(pc.dir, "fresh")
	runBin(t, pc.bin, "restore", "--from", bak, "--data-dir", fresh)
	if out, err := exec.Command(pc.bin, "restore", "--from", bak, "--data-dir", fresh).CombinedOutput(); err == nil || !strings.Contains(string(out), "not empty") {
		t.Errorf("restore over a node's data: %v %s", err, out)
	}
	// The restored node runs alone here (a fresh host), and serves it all.
	p := startServe(t, pc.bin, fresh, pc.secret, freeAddr(t))
	alone := &clusterProc{http: p.addr}
	for i, v := range videos {
		if st, body := pc.do(alone, "GET", "/v1/profiles/"+v, pc.admin, ""); st != 200 || position(t, body) != int64(i+1)*60_000 {
			t.Errorf("%s on the restored node: %d %s", v, st, body)
		}
	}
}

// Rolling upgrade: each node in turn is stopped with SIGTERM and started
// again on its data directory from a new binary (another version), while a
// writer runs through all three. Every acknowledged write is readable
// through every node afterwards, and status shows the new version on all.
func TestRollingUpgradeLosesNoAcknowledgedWrite(t *testing.T) {
	pc := newProcCluster(t)
	pc.startThree()
	bin2 := filepath.Join(t.TempDir(), "playhead-v2")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v2-rolling-test", "-o", bin2, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w := pc.startWriter(pc.nodes, 6)
	time.Sleep(time.Second)
	oldBin := pc.bin
	pc.bin = bin2
	for _, p := range pc.nodes {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("%s did not exit cleanly on SIGTERM: %v\n%s", p.id, err, p.out.String())
		}
		time.Sleep(500 * time.Millisecond) // writes run with one node down
		pc.start(p, 3)
		pc.waitReady(p)
		pc.waitRing(p, 3)
		time.Sleep(time.Second)
	}
	acked := w.finish()
	pc.bin = oldBin
	t.Logf("%d writes acknowledged during the rolling upgrade, %d refused (a stopped node's own requests)", w.ok.Load(), w.bad.Load())
	if w.ok.Load() < 100 {
		t.Fatalf("only %d writes acknowledged", w.ok.Load())
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pc.nodes {
		for video, pos := range acked {
			for {
				st, body := pc.do(p, "GET", "/v1/profiles/"+video, pc.admin, "")
				if st == 200 && position(t, body) >= pos {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s via %s: acknowledged %d, read %d %s", video, p.id, pos, st, body)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	var rep statusReport
	json.Unmarshal([]byte(runBin(t, bin2, "status", "--json", "--url", "http://"+pc.nodes[0].http, "--token", pc.admin)), &rep)
	for _, m := range rep.Nodes {
		if m.Node == nil || m.Node.Version != "v2-rolling-test" {
			t.Errorf("after the upgrade %s: %+v %s", m.ID, m.Node, m.Error)
		}
	}
}
