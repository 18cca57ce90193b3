package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/gossip/clusterkey"
)

// testCluster is n in-process cluster nodes on loopback, each with its own
// HTTP listener, data dir, memberlist, raft and replication transport.
type testCluster struct {
	t     testing.TB
	nodes []*Node
	urls  []string
	token string
}

func startTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	return startTestClusterWith(t, n, nil)
}

// startTestClusterWith is startTestCluster with each node's Config changed
// by mod first (when set).
func startTestClusterWith(t testing.TB, n int, mod func(*Config)) *testCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	key := bytes.Repeat([]byte{7}, clusterkey.Size)
	tc := &testCluster{t: t}
	var seed string
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := &ClusterOptions{GossipAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0",
			Keys: [][]byte{key}, Loopback: true}
		if seed != "" {
			opts.Join = []string{seed}
		}
		cfg := Config{NodeID: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), HTTPAddr: ln.Addr().String(),
			AuthSecret: testSecret, Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1,
			Partitions: 64, ClusterOptions: opts}
		if mod != nil {
			mod(&cfg)
		}
		nd, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { nd.Serve(ctx, ln); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		if seed == "" {
			seed = nd.cfg.Cluster.(*clusterParts).members.GossipAddr()
		}
		tc.nodes = append(tc.nodes, nd)
		tc.urls = append(tc.urls, "http://"+ln.Addr().String())
	}
	tok, err := api.IssueToken(testSecret, "acct-1", nil, false, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tc.token = tok
	tc.waitOwners(n)
	return tc
}

// waitOwners waits until every node routes by a ring of min(3, members)
// owners per partition over want members.
func (tc *testCluster) waitOwners(want int) {
	tc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, nd := range tc.nodes {
			tb, have := nd.cfg.Cluster.(*clusterParts).cl.Table()
			if !have || len(tb.Load()) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tc.t.Fatalf("the ring did not reach %d members", want)
}

func (tc *testCluster) req(i int, method, path string, body any) (int, []byte) {
	tc.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r, _ := http.NewRequest(method, tc.urls[i]+path, rd)
	r.Header.Set("Authorization", "Bearer "+tc.token)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

func TestClusterWriteReadAndPushAcrossNodes(t *testing.T) {
	tc := startTestCluster(t, 3)

	// A subscriber on node 2.
	r, _ := http.NewRequest("GET", tc.urls[1]+"/v1/profiles/kids/events", nil)
	r.Header.Set("Authorization", "Bearer "+tc.token)
	r.Header.Set("Accept", "text/event-stream")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(r.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				lines <- string(buf[:n])
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the interest reaches the owners

	start := time.Now()
	st, body := tc.req(0, "PUT", "/v1/profiles/kids/positions/film", upd(754_000, hour, "tv", "s1"))
	if st != 200 {
		t.Fatalf("write via node 1: %d %s", st, body)
	}
	st, body = tc.req(2, "GET", "/v1/profiles/kids/positions/film", nil)
	if st != 200 || !strings.Contains(string(body), `"position_ms":754000`) {
		t.Fatalf("read via node 3: %d %s", st, body)
	}
	var got strings.Builder
	for !strings.Contains(got.String(), "754000") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("push stream ended: %s", got.String())
			}
			got.WriteString(l)
		case <-time.After(time.Until(start.Add(time.Second))):
			t.Fatalf("no push on node 2 within 1 s: %q", got.String())
		}
	}

	st, body = tc.req(0, "GET", "/v1/cluster", nil)
	if st != 403 {
		t.Fatalf("/v1/cluster without admin: %d %s", st, body)
	}
	admin, _ := api.IssueToken(testSecret, "acct-1", nil, true, time.Hour, time.Now())
	tc.token = admin
	st, body = tc.req(1, "GET", "/v1/cluster", nil)
	var cs ClusterStatus
	json.Unmarshal(body, &cs)
	if st != 200 || len(cs.Members) != 3 || cs.RaftLeader == "" || cs.Replication != 3 {
		t.Fatalf("/v1/cluster: %d %s", st, body)
	}
	for _, m := range cs.Members {
		if m.State != "alive" || m.Partitions != 64 {
			t.Fatalf("member %+v (RF=3 of 3 nodes: every node owns every partition)", m)
		}
	}
}

// BenchmarkClusterPut: HTTP PUTs through all three nodes of an in-process
// RF=3, W=2 cluster on loopback (each write durable on two Pebble stores
// before its answer). Compare with BenchmarkHTTPPut (one node).
func BenchmarkClusterPut(b *testing.B) {
	tc := startTestCluster(b, 3)
	benchPuts(b, tc.urls, tc.token)
}

// benchPuts sends PUTs from 16 parallel writers per core (or
// PLAYHEAD_BENCH_WRITERS_PER_CORE), each with its own profile and device,
// spread over urls, and reports writes/s. A cluster write waits for syncs on
// two nodes in turn, so it takes more writers in flight than one node to
// saturate the same cores.
func benchPuts(b *testing.B, urls []string, token string) {
	var ctr atomic.Int64
	perCore := 16
	if v, err := strconv.Atoi(os.Getenv("PLAYHEAD_BENCH_WRITERS_PER_CORE")); err == nil && v > 0 {
		perCore = v
	}
	b.SetParallelism(perCore)
	// Keep-alive for every writer (the default transport keeps 2 idle
	// connections per host, so more writers would reconnect all the time).
	tr := &http.Transport{MaxIdleConnsPerHost: 4096}
	defer tr.CloseIdleConnections()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		g := ctr.Add(1)
		client := &http.Client{Transport: tr}
		for i := int64(1); pb.Next(); i++ {
			body := fmt.Sprintf(`{"position_ms":%d,"duration_ms":100000000,"device":"d%d","session":"s%d"}`, i*1000, g, g)
			url := urls[int(i+g)%len(urls)]
			r, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/profiles/p%d/positions/v", url, g), strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(r)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkSingleNodePut is BenchmarkClusterPut's load against one node on
// Pebble (durable, group commit): the baseline of the cluster's figure.
func BenchmarkSingleNodePut(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	nd, err := New(Config{NodeID: "n1", DataDir: b.TempDir(), HTTPAddr: ln.Addr().String(), AuthSecret: testSecret,
		Logger: slog.New(slog.DiscardHandler), DeviceRate: -1, AccountRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nd.Serve(ctx, ln); close(done) }()
	defer func() { cancel(); <-done }()
	tok, _ := api.IssueToken(testSecret, "acct-1", nil, false, time.Hour, time.Now())
	benchPuts(b, []string{"http://" + ln.Addr().String()}, tok)
}
