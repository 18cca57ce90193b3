package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestComposeCluster builds the product image the documented way (a static
// binary, the repository's Dockerfile, FROM scratch) and brings up
// deploy/compose.yaml: all three containers must become healthy through
// `playhead health`, a write through node 1 must be read through node 3, and
// GET /v1/cluster must list three alive members. It needs a Docker engine
// and docker-compose, and skips with the reason when either is missing.
func TestComposeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs containers")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine (`docker info` fails): the compose test needs one")
	}
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (apt-get install docker-compose): the compose test needs it")
	}
	root, _ := filepath.Abs("../..")
	ctxDir := t.TempDir()
	bin := filepath.Join(ctxDir, "playhead")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	// The build context the Dockerfile expects: the binary and deploy/rootfs.
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "Dockerfile"), filepath.Join(root, "deploy"), ctxDir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	image := fmt.Sprintf("playhead:composetest-%d", os.Getpid())
	if out, err := exec.Command("docker", "build", "-q", "-t", image, ctxDir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() })

	secrets := filepath.Join(t.TempDir(), "secrets")
	if out, err := exec.Command(filepath.Join(root, "deploy", "secrets.sh"), secrets).CombinedOutput(); err != nil {
		t.Fatalf("deploy/secrets.sh: %v\n%s", err, out)
	}
	var ports [3]string
	env := append(os.Environ(), "PLAYHEAD_IMAGE="+image, "PLAYHEAD_SECRETS_DIR="+secrets)
	for i := range ports {
		ports[i] = freeAddr(t)
		env = append(env, fmt.Sprintf("PLAYHEAD_PORT_%d=%s", i+1, ports[i]))
	}
	project := fmt.Sprintf("phcompose%d", os.Getpid())
	dc := func(args ...string) ([]byte, error) {
		cmd := exec.Command(compose, append([]string{"-p", project, "-f", filepath.Join(root, "deploy", "compose.yaml")}, args...)...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := dc("logs", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		dc("down", "-v", "--timeout", "20")
	})
	if out, err := dc("up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	// Healthy = the image's health check (`playhead health`) passed.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := exec.Command("docker", "ps", "--filter", "label=com.docker.compose.project="+project, "--format", "{{.Names}} {{.Status}}").CombinedOutput()
		if strings.Count(string(out), "(healthy)") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers not healthy after 3 min:\n%s", out)
		}
		time.Sleep(2 * time.Second)
	}
	tok := mintAdminToken(t, filepath.Join(secrets, "auth-secret"))
	put := `{"position_ms": 754000, "duration_ms": 2580000, "device": "tv", "session": "s-tv-1", "state": "paused"}`
	code, body := httpDo(t, "PUT", "http://"+ports[0]+"/v1/profiles/me/positions/ep-1", tok, put)
	if code != 200 {
		t.Fatalf("PUT through n1: %d %s", code, body)
	}
	code, body = httpDo(t, "GET", "http://"+ports[2]+"/v1/profiles/me/positions/ep-1", tok, "")
	if code != 200 || !strings.Contains(body, `"resume_ms":754000`) {
		t.Fatalf("GET through n3: %d %s", code, body)
	}
	code, body = httpDo(t, "GET", "http://"+ports[1]+"/v1/cluster", tok, "")
	var st struct {
		Members []struct{ ID, State string }
	}
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.Members) != 3 {
		t.Fatalf("GET /v1/cluster: %d %s", code, body)
	}
	for _, m := range st.Members {
		if m.State != "alive" {
			t.Fatalf("member %s is %s: %s", m.ID, m.State, body)
		}
	}
}

func mintAdminToken(t *testing.T, secretFile string) string {
	t.Helper()
	var out bytes.Buffer
	if code := run([]string{"token", "--secret-file", secretFile, "--account", "dev", "--admin"}, &out, io.Discard); code != 0 {
		t.Fatalf("playhead token exited %d", code)
	}
	return strings.TrimSpace(out.String())
}

func httpDo(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
