package node

import (
	"archive/tar"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// GET /v1/node (API.md): admin only; a lone node owns every partition, has
// nothing pending and leads its own ring.
func TestNodeStatusEndpoint(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Version = "v9.9.9" })
	want(t, e.do("GET", "/v1/node", "", nil), 401, "unauthorized")
	want(t, e.do("GET", "/v1/node", e.token("acme"), nil), 403, "forbidden")
	r := e.do("GET", "/v1/node", e.adminToken("acme"), nil)
	want(t, r, 200, "")
	var st NodeStatus
	r.decode(t, &st)
	if st.ID != "test-1" || st.Version != "v9.9.9" || st.State != "serving" || st.Partitions != 1024 ||
		st.PendingHints != 0 || st.PendingHandoffs != 0 || st.RaftLeader != "test-1" {
		t.Errorf("GET /v1/node: %+v", st)
	}
	if _, err := time.Parse(time.RFC3339, st.StartedAt); err != nil {
		t.Errorf("started_at %q: %v", st.StartedAt, err)
	}
	// A store without checkpoints (memory) answers 503 and changes nothing.
	want(t, e.do("POST", "/v1/node/backup", e.adminToken("acme"), nil), 503, "unavailable")
	want(t, e.do("POST", "/v1/node/backup", e.token("acme"), nil), 403, "forbidden")
	want(t, e.do("POST", "/v1/node/backup", "", nil), 401, "unauthorized")
}

// POST /v1/node/backup streams a checkpoint taken while the node serves; a
// node started on the unpacked files serves the same data.
func TestBackupRestoresOnAFreshNode(t *testing.T) {
	cfg := Config{NodeID: "b-1", AuthSecret: testSecret, Logger: slog.New(slog.DiscardHandler),
		DataDir: filepath.Join(t.TempDir(), "data"), DeviceRate: -1, AccountRate: -1}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	defer n.Shutdown(context.Background())
	e := &env{t: t, n: n, srv: srv, clock: newTestClock()}
	e.clock.ms.Store(time.Now().UnixMilli())
	tok, admin := e.token("acme"), e.adminToken("acme")
	for _, v := range []string{"ep-1", "ep-2", "ep-3"} {
		e.mustPut(tok, "kids", v, upd(754_000, 2_580_000, "tv", "s-"+v))
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/node/backup", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := srv.Client().Do(req)
	if err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("backup: %v %v", err, res)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	os.MkdirAll(restored, 0o755)
	tr := tar.NewReader(res.Body)
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, "/") || strings.Contains(h.Name, "..") {
			t.Fatalf("tar entry %q is not a plain file name", h.Name)
		}
		f, _ := os.Create(filepath.Join(restored, h.Name))
		io.Copy(f, tr)
		f.Close()
		files++
	}
	res.Body.Close()
	if files == 0 {
		t.Fatal("empty backup")
	}
	// The checkpoint directory is removed once streamed.
	if m, _ := filepath.Glob(filepath.Join(cfg.DataDir, "checkpoint-*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
	cfg2 := cfg
	cfg2.NodeID, cfg2.DataDir = "b-2", restored
	n2, err := New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Shutdown(context.Background())
	srv2 := httptest.NewServer(n2.Handler())
	defer srv2.Close()
	e2 := &env{t: t, n: n2, srv: srv2, clock: e.clock}
	for _, v := range []string{"ep-1", "ep-2", "ep-3"} {
		c, ok := e2.get(tok, "kids", v)
		if !ok || c.ResumeMs != 754_000 {
			t.Errorf("%s on the restored node: %+v %v", v, c, ok)
		}
	}
}
