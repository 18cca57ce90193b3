package baseline_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playhead/playhead/api"
	"github.com/playhead/playhead/bench"
	"github.com/playhead/playhead/bench/baseline"
)

// startRedis runs a throwaway redis-server on a free port, or skips the
// test: CI machines may not have Redis (apt-get install -y redis-server).
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install -y redis-server): skipping the baseline's Redis tests")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", t.TempDir(), "--save", "", "--appendonly", "no")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { rdb.Close() })
	for i := 0; baseline.Ready(context.Background(), rdb) != nil; i++ {
		if i > 200 {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rdb
}

// TestScriptRefusesStale checks the Lua max-register against playhead's
// rule: (epoch, seq, session) compared left to right, equal is stale.
func TestScriptRefusesStale(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	key := baseline.Key("acct", "p1", "v1")
	steps := []struct {
		v    baseline.Version
		want bool
	}{
		{baseline.Version{Epoch: 100, Seq: 5, Session: "s-b"}, true},        // first write
		{baseline.Version{Epoch: 100, Seq: 5, Session: "s-b"}, false},       // equal version: stale (a retry)
		{baseline.Version{Epoch: 100, Seq: 4, Session: "s-z"}, false},       // lower seq
		{baseline.Version{Epoch: 99, Seq: 1000, Session: "s-z"}, false},     // lower epoch, whatever the seq
		{baseline.Version{Epoch: 100, Seq: 5, Session: "s-a"}, false},       // same epoch and seq, smaller session
		{baseline.Version{Epoch: 100, Seq: 5, Session: "s-c"}, true},        // same epoch and seq, larger session
		{baseline.Version{Epoch: 100, Seq: 5, Session: "S-d"}, false},       // byte order: 'S' < 's', whatever the locale
		{baseline.Version{Epoch: 100, Seq: 6, Session: "s-a"}, true},        // larger seq
		{baseline.Version{Epoch: 100, Seq: 10, Session: "s-a"}, true},       // 10 > 6 numerically (not as text)
		{baseline.Version{Epoch: 1 << 62, Seq: 0, Session: "s-a"}, true},    // larger epoch, beyond float precision
		{baseline.Version{Epoch: 1<<62 - 1, Seq: 9, Session: "s-z"}, false}, // one below: exact 64-bit compare
		{baseline.Version{Epoch: 1<<62 + 1, Seq: 0, Session: "s-a"}, true},
	}
	for i, s := range steps {
		cur := fmt.Sprintf(`{"n":%d}`, i)
		res, err := baseline.Apply(ctx, rdb, "ev:test", []baseline.Write{{Key: key, V: s.v, Cursor: cur}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Applied != s.want {
			t.Fatalf("step %d %+v: applied=%v, want %v", i, s.v, res[0].Applied, s.want)
		}
		if !s.want && res[0].Cursor == cur {
			t.Fatalf("step %d: a stale write came back as the current cursor", i)
		}
	}
	if c, _ := rdb.HGet(ctx, key, "c").Result(); c != fmt.Sprintf(`{"n":%d}`, len(steps)-1) {
		t.Fatalf("stored %s", c)
	}
}

// TestScriptBatchInOrder: a batch applies its updates in order, so a later
// update of the same cursor sees the earlier one, and each applied one is
// published.
func TestScriptBatchInOrder(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, "ev:batch")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	k1, k2 := baseline.Key("a", "p", "v1"), baseline.Key("a", "p", "v2")
	res, err := baseline.Apply(ctx, rdb, "ev:batch", []baseline.Write{
		{Key: k1, V: baseline.Version{Epoch: 1, Seq: 2, Session: "s"}, Cursor: "a"},
		{Key: k1, V: baseline.Version{Epoch: 1, Seq: 1, Session: "s"}, Cursor: "b"}, // older than the first
		{Key: k2, V: baseline.Version{Epoch: 1, Seq: 1, Session: "s"}, Cursor: "c"},
		{Key: k1, V: baseline.Version{Epoch: 1, Seq: 3, Session: "s"}, Cursor: "d"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, fmt.Sprintf("%v:%s", r.Applied, r.Cursor))
	}
	if want := "true:a false:a true:c true:d"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	var pub []string
	for range 3 {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pub = append(pub, m.Payload)
	}
	if strings.Join(pub, "") != "acd" {
		t.Fatalf("published %v", pub)
	}
}

// TestServerUnderGenerator drives the baseline's HTTP API with the load
// generator's workloads for about a second each (no timing asserted).
func TestServerUnderGenerator(t *testing.T) {
	rdb := startRedis(t)
	secret := []byte("0123456789abcdef0123456789abcdef-baseline")
	s := baseline.New(rdb, secret)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); s.Close() })
	mint := func(p string) (string, error) {
		return api.IssueToken(secret, "acct-"+p, nil, false, time.Hour, time.Now())
	}
	for _, w := range []string{"put", "batch", "read", "propagation"} {
		t.Run(w, func(t *testing.T) {
			res, err := bench.Run(context.Background(), bench.Config{URL: srv.URL, Mint: mint, Workload: w, Rate: 50, Concurrency: 4,
				Duration: time.Second, Warmup: 200 * time.Millisecond, Profiles: 5, Videos: 10, Batch: 5, Push: "sse", Subscribers: 3, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK == 0 || res.ErrorCount() != 0 || res.NotFound != 0 {
				t.Fatalf("%+v", res)
			}
			if w == "propagation" && res.Delivered == 0 {
				t.Fatalf("no push delivered of %d applied", res.Applied)
			}
		})
	}
}
