package tcp

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/clusterkey"
	"github.com/playhead/playhead/gossip/ring"
)

type inbox struct {
	mu     sync.Mutex
	frames map[ring.NodeID][][]byte
}

func (b *inbox) on(from ring.NodeID, f []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.frames == nil {
		b.frames = map[ring.NodeID][][]byte{}
	}
	b.frames[from] = append(b.frames[from], bytes.Clone(f))
}

func (b *inbox) count(from ring.NodeID) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.frames[from])
}

func newTestTransport(t *testing.T, id ring.NodeID, keys [][]byte, addr string) (*Transport, *inbox) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	in := &inbox{}
	tr, err := New(Config{Self: id, Listener: l, Keys: keys, OnFrame: in.on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, in
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, clusterkey.Size) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTCPFramesInOrder(t *testing.T) {
	k := [][]byte{key(1)}
	a, _ := newTestTransport(t, "a", k, "")
	b, inB := newTestTransport(t, "b", k, "")
	c, inC := newTestTransport(t, "c", k, "")
	const n = 2000
	for i := range n {
		a.Send("b", b.Addr().String(), []byte(fmt.Sprint("to b ", i)))
		c.Send("b", b.Addr().String(), []byte(fmt.Sprint("from c ", i)))
		a.Send("c", c.Addr().String(), []byte(fmt.Sprint("to c ", i)))
	}
	waitFor(t, "frames", func() bool { return inB.count("a") == n && inB.count("c") == n && inC.count("a") == n })
	for i, f := range inB.frames["a"] {
		if string(f) != fmt.Sprint("to b ", i) {
			t.Fatalf("frame %d from a: %q", i, f)
		}
	}
	if s := a.Stats(); s.Sent != 2*n || s.Dropped != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestTCPWrongKeyDeliversNothing(t *testing.T) {
	a, _ := newTestTransport(t, "a", [][]byte{key(1)}, "")
	b, inB := newTestTransport(t, "b", [][]byte{key(2)}, "")
	a.Send("b", b.Addr().String(), []byte("hello"))
	waitFor(t, "an auth failure", func() bool { return b.Stats().AuthFailures > 0 && a.Stats().AuthFailures > 0 })
	time.Sleep(50 * time.Millisecond)
	if inB.count("a") != 0 {
		t.Fatal("a frame crossed with the wrong key")
	}
}

func TestTCPKeyRotation(t *testing.T) {
	// a sends with k1 (its primary); b accepts k1 as its second key.
	a, inA := newTestTransport(t, "a", [][]byte{key(1), key(2)}, "")
	b, inB := newTestTransport(t, "b", [][]byte{key(2), key(1)}, "")
	a.Send("b", b.Addr().String(), []byte("x"))
	b.Send("a", a.Addr().String(), []byte("y"))
	waitFor(t, "frames both ways", func() bool { return inB.count("a") == 1 && inA.count("b") == 1 })
}

func TestTCPReconnectsAfterPeerRestart(t *testing.T) {
	k := [][]byte{key(1)}
	a, _ := newTestTransport(t, "a", k, "")
	b, inB := newTestTransport(t, "b", k, "")
	addr := b.Addr().String()
	a.Send("b", addr, []byte("1"))
	waitFor(t, "first frame", func() bool { return inB.count("a") == 1 })
	b.Close()
	b2, inB2 := newTestTransport(t, "b", k, addr)
	_ = b2
	waitFor(t, "frames after restart", func() bool {
		a.Send("b", addr, []byte("again"))
		time.Sleep(20 * time.Millisecond)
		return inB2.count("a") > 0
	})
}

func TestTCPOversizedAndOverflow(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	in := &inbox{}
	a, err := New(Config{Self: "a", Listener: l, Keys: [][]byte{key(1)}, OnFrame: in.on, MaxFrame: 100, QueueLen: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Send("b", "127.0.0.1:1", make([]byte, 101)); err == nil {
		t.Fatal("oversized frame accepted")
	}
	for range 10 {
		a.Send("b", "127.0.0.1:1", []byte("x")) // nothing listens there
	}
	waitFor(t, "drops", func() bool { return a.Stats().Dropped >= 7 })
}

func TestTCPCloseLeaksNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		k := [][]byte{key(1)}
		l1, _ := net.Listen("tcp", "127.0.0.1:0")
		l2, _ := net.Listen("tcp", "127.0.0.1:0")
		in := &inbox{}
		a, _ := New(Config{Self: "a", Listener: l1, Keys: k, OnFrame: in.on})
		b, _ := New(Config{Self: "b", Listener: l2, Keys: k, OnFrame: in.on})
		a.Send("b", l2.Addr().String(), []byte("x"))
		b.Send("a", l1.Addr().String(), []byte("y"))
		waitFor(t, "frames", func() bool { return in.count("a") == 1 && in.count("b") == 1 })
		a.Close()
		b.Close()
	}()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// FuzzTCPHandshake: hostile bytes on an inbound connection never panic the
// acceptor nor deliver a frame.
func FuzzTCPHandshake(f *testing.F) {
	f.Add([]byte("PHRP1\x01a" + string(make([]byte, 32)) + string(make([]byte, 32))))
	f.Add([]byte("PHRP1\xffzz"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		srv, cli := net.Pipe()
		tr := &Transport{cfg: Config{Self: "a", Keys: [][]byte{key(1)}, MaxFrame: 1 << 10, DialTimeout: time.Second}}
		go func() { cli.Write(b); cli.Close() }()
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := cli.Read(buf); err != nil {
					return
				}
			}
		}()
		if _, _, err := tr.acceptHandshake(srv, srv); err == nil {
			t.Fatal("handshake without the key succeeded")
		}
		srv.Close()
	})
}

func BenchmarkTCPTransport(b *testing.B) {
	k := [][]byte{key(1)}
	l1, _ := net.Listen("tcp", "127.0.0.1:0")
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	var got sync.WaitGroup
	a, _ := New(Config{Self: "a", Listener: l1, Keys: k, OnFrame: func(ring.NodeID, []byte) {}, QueueLen: 1 << 20})
	bt, _ := New(Config{Self: "b", Listener: l2, Keys: k, OnFrame: func(ring.NodeID, []byte) { got.Done() }})
	defer a.Close()
	defer bt.Close()
	frame := make([]byte, 200)
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	got.Add(b.N)
	for range b.N {
		a.Send("b", l2.Addr().String(), frame)
	}
	got.Wait()
}
