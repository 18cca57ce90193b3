package baseline_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playhead/playhead/bench/baseline"
)

// startRedis runs a throwaway redis-server on a free port, or skips.
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install -y redis-server); skipping the Lua stale-refusal test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { rdb.Close() })
	for i := 0; ; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			break
		}
		if i > 100 {
			t.Fatal("redis did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rdb
}

func TestLuaRefusesStale(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	steps := []struct {
		epoch, seq uint64
		session    string
		want       bool
	}{
		{100, 5, "s-b", true},     // first write
		{100, 5, "s-b", false},    // equal version: stale
		{100, 4, "s-z", false},    // lower seq
		{99, 1000, "s-z", false},  // lower epoch
		{100, 5, "s-a", false},    // same epoch/seq, smaller session
		{100, 5, "s-c", true},     // same epoch/seq, larger session
		{100, 6, "s-a", true},     // larger seq
		{1 << 62, 0, "s-a", true}, // larger epoch, beyond float precision
		{1<<62 - 1, 9, "s-z", false},
	}
	for i, s := range steps {
		cur := fmt.Sprintf(`{"n":%d}`, i)
		ok, stored, err := baseline.Apply(ctx, rdb, "p1", "v1", s.epoch, s.seq, s.session, cur)
		if err != nil {
			t.Fatal(err)
		}
		if ok != s.want {
			t.Fatalf("step %d %+v: applied=%v want %v", i, s, ok, s.want)
		}
		if !ok && stored == cur {
			t.Fatalf("step %d: stale write returned as current", i)
		}
	}
	c, _ := rdb.HGet(ctx, baseline.Key("p1", "v1"), "c").Result()
	if c != `{"n":7}` {
		t.Fatalf("stored %s", c)
	}
}
