package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Docker side: an image built FROM scratch from a static build of
// ./cmd/playhead, two private networks, five containers.
//
// Every node sits on two networks: "peer" carries gossip, replication and
// raft (each node binds its peer IP), "ctl" carries the clients' HTTP from
// the test process (the API binds 0.0.0.0:8080). A nemesis that cuts a node
// off disconnects it from peer only, so clients still reach it: what a
// cut-off node answers is part of the history.

const nodes = 5

// dockerCmd runs docker with args and returns its combined output.
func dockerCmd(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// requireDocker skips unless PLAYHEAD_E2E=1 and a Docker engine answers.
func requireDocker(t *testing.T) {
	t.Helper()
	if os.Getenv("PLAYHEAD_E2E") != "1" {
		t.Skip("e2e: opt-in; run with PLAYHEAD_E2E=1 (needs a Docker engine; see docs/E2E.md)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("e2e: no docker command on PATH; skipping (see docs/E2E.md)")
	}
	if out, err := dockerCmd(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("e2e: the Docker engine does not answer (`docker info`: %s); skipping", out)
	}
}

// env is what every phase shares: the image, the networks, the tokens.
type env struct {
	t                *testing.T
	name             string // prefix of every Docker object
	image            string
	peerNet, ctlNet  string
	peerPfx, ctlPfx  string // "10.a.b." of each /24
	bin              string // the host copy of the binary
	token, admin     string
	short            bool
	containersExists bool
}

func newEnv(t *testing.T, short bool) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, short: short, name: fmt.Sprintf("phe2e-%d-%04x", os.Getpid(), rand.IntN(1<<16))}
	dir := t.TempDir()
	e.bin = filepath.Join(dir, "playhead")
	build := exec.Command("go", "build", "-trimpath", "-o", e.bin, "github.com/playhead/playhead/cmd/playhead")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build of ./cmd/playhead: %v\n%s", err, out)
	}
	secret := "e2e-secret-0123456789abcdef0123456789abcdef"
	must(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(secret+"\n"), 0o644))
	key, err := exec.Command(e.bin, "keygen").Output()
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "cluster.key"), key, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(
		"FROM scratch\nCOPY playhead /playhead\nCOPY secret /secret\nCOPY cluster.key /cluster.key\nENTRYPOINT [\"/playhead\"]\n"), 0o644))
	e.image = e.name + ":latest"
	if _, err := dockerCmd(ctx, "build", "-q", "-t", e.image, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dockerCmd(context.Background(), "rmi", "-f", e.image) })
	e.token = e.mint("--account", "acct-e2e")
	e.admin = e.mint("--account", "acct-e2e", "--admin")
	// Two /24s nobody else on this engine uses: pick, retry on overlap.
	for try := 0; ; try++ {
		a, b := 100+rand.IntN(150), rand.IntN(250)
		e.peerPfx, e.ctlPfx = fmt.Sprintf("10.%d.%d.", a, b), fmt.Sprintf("10.%d.%d.", a, b+1)
		e.peerNet, e.ctlNet = e.name+"-peer", e.name+"-ctl"
		_, err1 := dockerCmd(ctx, "network", "create", "--subnet", e.peerPfx+"0/24", e.peerNet)
		if err1 == nil {
			if _, err2 := dockerCmd(ctx, "network", "create", "--subnet", e.ctlPfx+"0/24", e.ctlNet); err2 == nil {
				break
			} else {
				dockerCmd(ctx, "network", "rm", e.peerNet)
				err1 = err2
			}
		}
		if try == 5 {
			t.Fatalf("creating the e2e networks: %v", err1)
		}
	}
	t.Cleanup(func() {
		e.removeContainers()
		dockerCmd(context.Background(), "network", "rm", e.peerNet, e.ctlNet)
	})
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) mint(args ...string) string {
	e.t.Helper()
	out, err := exec.Command(e.bin, append([]string{"token", "--secret-file", filepath.Join(filepath.Dir(e.bin), "secret")}, args...)...).Output()
	if err != nil {
		e.t.Fatalf("playhead token: %v", err)
	}
	f := strings.Fields(string(out))
	return f[len(f)-1]
}

func (e *env) container(i int) string { return fmt.Sprintf("%s-n%d", e.name, i) }
func (e *env) peerIP(i int) string    { return fmt.Sprintf("%s%d", e.peerPfx, 10+i) }
func (e *env) ctlIP(i int) string     { return fmt.Sprintf("%s%d", e.ctlPfx, 10+i) }
func (e *env) url(i int) string       { return "http://" + e.ctlIP(i) + ":8080" }

// startCluster starts five fresh nodes and waits until every one is ready
// and sees five members owning partitions.
func (e *env) startCluster() {
	e.t.Helper()
	ctx := context.Background()
	e.removeContainers()
	for i := 1; i <= nodes; i++ {
		var join []string
		for j := 1; j <= nodes; j++ {
			if j != i {
				join = append(join, e.peerIP(j)+":7946")
			}
		}
		args := []string{"run", "-d", "--name", e.container(i), "--hostname", fmt.Sprintf("n%d", i),
			"--network", e.peerNet, "--ip", e.peerIP(i), e.image,
			"serve", "--node-id", fmt.Sprintf("n%d", i), "--data-dir", "/data", "--http-addr", "0.0.0.0:8080",
			"--gossip-addr", e.peerIP(i) + ":7946", "--auth-secret-file", "/secret", "--gossip-key-file", "/cluster.key",
			"--bootstrap-expect", fmt.Sprint(nodes), "--join", strings.Join(join, ","),
			"--device-rate", "-1", "--account-rate", "-1", "--loopback-timings", "--memory-limit", "512MiB"}
		if _, err := dockerCmd(ctx, args...); err != nil {
			e.t.Fatal(err)
		}
		if _, err := dockerCmd(ctx, "network", "connect", "--ip", e.ctlIP(i), e.ctlNet, e.container(i)); err != nil {
			e.t.Fatal(err)
		}
	}
	e.containersExists = true
	for i := 1; i <= nodes; i++ {
		if err := e.waitReady(i, 60*time.Second); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.waitHealthy(60 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) removeContainers() {
	if !e.containersExists {
		return
	}
	var names []string
	for i := 1; i <= nodes; i++ {
		names = append(names, e.container(i))
	}
	dockerCmd(context.Background(), append([]string{"rm", "-f"}, names...)...)
	e.containersExists = false
}

// saveLogs writes every node's log into dir.
func (e *env) saveLogs(dir string) {
	for i := 1; i <= nodes; i++ {
		out, _ := exec.Command("docker", "logs", e.container(i)).CombinedOutput()
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("n%d.log", i)), out, 0o644)
	}
}

var probe = &http.Client{Timeout: 2 * time.Second}

// waitReady waits until node i's /readyz answers 200.
func (e *env) waitReady(i int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := probe.Get(e.url(i) + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _ := exec.Command("docker", "logs", "--tail", "30", e.container(i)).CombinedOutput()
	return fmt.Errorf("n%d not ready within %v; its log ends:\n%s", i, within, out)
}

type clusterView struct {
	Members []struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		Partitions int    `json:"partitions"`
	} `json:"members"`
}

// healthy reports whether every node sees all five members alive and
// owning partitions; why says what is missing.
func (e *env) healthy() (bool, string) {
	for i := 1; i <= nodes; i++ {
		req, _ := http.NewRequest("GET", e.url(i)+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := probe.Do(req)
		if err != nil {
			return false, fmt.Sprintf("n%d: %v", i, err)
		}
		var v clusterView
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		alive := 0
		for _, m := range v.Members {
			if m.State == "alive" && m.Partitions > 0 {
				alive++
			}
		}
		if alive != nodes {
			return false, fmt.Sprintf("n%d sees %d of %d members alive and owning: %+v", i, alive, nodes, v.Members)
		}
	}
	return true, ""
}

func (e *env) waitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	why := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, why = e.healthy(); ok {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("the cluster is not whole after %v: %s", within, why)
}

// The nemesis's moves.

func (e *env) docker(args ...string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := dockerCmd(ctx, args...); err != nil {
		e.t.Error(err)
	}
}

// cut disconnects node i from the peer network; heal reconnects it.
func (e *env) cut(i int) { e.docker("network", "disconnect", e.peerNet, e.container(i)) }
func (e *env) heal(i int) {
	e.docker("network", "connect", "--ip", e.peerIP(i), e.peerNet, e.container(i))
}

// kill sends SIGKILL; start starts the stopped container again (same
// data, same addresses).
func (e *env) kill(i int)    { e.docker("kill", "-s", "KILL", e.container(i)) }
func (e *env) start(i int)   { e.docker("start", e.container(i)) }
func (e *env) pause(i int)   { e.docker("pause", e.container(i)) }
func (e *env) unpause(i int) { e.docker("unpause", e.container(i)) }

// stop sends SIGTERM and waits up to 20 s for a graceful exit.
func (e *env) stop(i int) { e.docker("stop", "-t", "20", e.container(i)) }

// get does an authorized GET on node i and decodes a 200 body into out.
func (e *env) get(ctx context.Context, c *http.Client, i int, path, token string, hdr map[string]string, out any) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url(i)+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %s: %v", path, err)
		}
	}
	return resp.StatusCode, nil
}
