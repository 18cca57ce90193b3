package tcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playhead/playhead/gossip/ring"
)

// Complements transport_test.go (which holds the inbox, newTestTransport,
// key and waitFor helpers): many frames in order over two and three nodes,
// key rotation with overlapping keyrings, restart, oversized frames, queue
// bounds, replay/reorder/tamper, silent peers, address changes, shutdown,
// and fuzz targets for the dialer's handshake and the frame reader.

// startTCP starts a transport on a free loopback port with cfg's zero
// fields filled for tests; frames go to the returned inbox unless
// cfg.OnFrame is set.
func startTCP(t testing.TB, cfg Config) (*Transport, *inbox) {
	t.Helper()
	in := &inbox{}
	if cfg.OnFrame == nil {
		cfg.OnFrame = in.on
	}
	if cfg.Listener == nil && cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1:0"
	}
	if cfg.Keys == nil {
		cfg.Keys = [][]byte{key(1)}
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, in
}

func (b *inbox) get(from ring.NodeID) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.frames[from]...)
}

// numbered returns frame i of a test stream: its number, then filler so
// sizes vary from 8 bytes to about 2 KiB.
func numbered(i int) []byte {
	f := make([]byte, 8+(i*37)%2048)
	binary.BigEndian.PutUint64(f, uint64(i))
	for j := 8; j < len(f); j++ {
		f[j] = byte(i + j)
	}
	return f
}

func checkNumbered(t *testing.T, what string, got [][]byte, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s: %d frames, want %d", what, len(got), n)
	}
	for i, f := range got {
		if want := numbered(i); string(f) != string(want) {
			t.Fatalf("%s: frame %d is wrong or out of order (len %d, want %d)", what, i, len(f), len(want))
		}
	}
}

func TestTCPTwoNodesManyFramesBothWays(t *testing.T) {
	// The senders outrun the first dial: queue them all.
	const n = 5000
	a, inA := startTCP(t, Config{Self: "a", QueueLen: n})
	b, inB := startTCP(t, Config{Self: "b", QueueLen: n})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			a.Send("b", b.Addr().String(), numbered(i))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range n {
			b.Send("a", a.Addr().String(), numbered(i))
		}
	}()
	wg.Wait()
	waitFor(t, "all frames", func() bool { return inB.count("a") == n && inA.count("b") == n })
	checkNumbered(t, "a→b", inB.get("a"), n)
	checkNumbered(t, "b→a", inA.get("b"), n)
	for _, s := range []Stats{a.Stats(), b.Stats()} {
		if s.Sent != n || s.Received != n || s.Dropped != 0 || s.Connects != 1 || s.Accepts != 1 || s.AuthFailures != 0 {
			t.Fatalf("stats: %+v", s)
		}
	}
}

func TestTCPThreeNodesFullMesh(t *testing.T) {
	ids := []ring.NodeID{"n1", "n2", "n3"}
	trs := map[ring.NodeID]*Transport{}
	ins := map[ring.NodeID]*inbox{}
	for _, id := range ids {
		trs[id], ins[id] = startTCP(t, Config{Self: id})
	}
	const n = 2000
	var wg sync.WaitGroup
	for _, from := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				for _, to := range ids {
					if to != from {
						trs[from].Send(to, trs[to].Addr().String(), numbered(i))
					}
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "all frames", func() bool {
		for _, to := range ids {
			for _, from := range ids {
				if from != to && ins[to].count(from) != n {
					return false
				}
			}
		}
		return true
	})
	for _, to := range ids {
		for _, from := range ids {
			if from != to {
				checkNumbered(t, fmt.Sprintf("%s→%s", from, to), ins[to].get(from), n)
			}
		}
	}
}

// countHandler counts log records by message.
type countHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countHandler) WithGroup(string) slog.Handler            { return h }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	return nil
}

func (h *countHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

func TestTCPWrongKeyRejectedAndLogRateLimited(t *testing.T) {
	logA, logB := &countHandler{}, &countHandler{}
	fast := Config{BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond}
	cfgA, cfgB := fast, fast
	cfgA.Self, cfgA.Keys, cfgA.Logger = "a", [][]byte{key(1)}, slog.New(logA)
	cfgB.Self, cfgB.Keys, cfgB.Logger = "b", [][]byte{key(2)}, slog.New(logB)
	a, _ := startTCP(t, cfgA)
	b, inB := startTCP(t, cfgB)
	waitFor(t, "many refused handshakes", func() bool {
		a.Send("b", b.Addr().String(), []byte("let me in"))
		time.Sleep(time.Millisecond)
		return b.Stats().AuthFailures >= 20
	})
	if inB.count("a") != 0 {
		t.Fatal("a frame crossed with the wrong key")
	}
	if sa := a.Stats(); sa.AuthFailures == 0 || sa.Connects != 0 || sa.Sent != 0 {
		t.Fatalf("dialer stats: %+v", sa)
	}
	if n := logB.count("refused a replication connection"); n != 1 {
		t.Fatalf("acceptor logged %d refusals for %d failures, want 1 (rate-limited)", n, b.Stats().AuthFailures)
	}
	if n := logA.count("replication handshake failed"); n != 1 {
		t.Fatalf("dialer logged %d handshake failures, want 1 (rate-limited)", n)
	}
	// b still serves peers with the right key.
	c, _ := startTCP(t, Config{Self: "c", Keys: [][]byte{key(2)}})
	c.Send("b", b.Addr().String(), []byte("hi"))
	waitFor(t, "c→b", func() bool { return inB.count("c") == 1 })
}

func TestTCPKeyRotationOverlap(t *testing.T) {
	k1, k2, k3 := key(1), key(2), key(3)
	// a has the new key k2 as its second; b already dropped k1.
	a, inA := startTCP(t, Config{Self: "a", Keys: [][]byte{k1, k2}})
	b, inB := startTCP(t, Config{Self: "b", Keys: [][]byte{k2}})
	a.Send("b", b.Addr().String(), []byte("x"))
	b.Send("a", a.Addr().String(), []byte("y"))
	waitFor(t, "frames both ways", func() bool { return inB.count("a") == 1 && inA.count("b") == 1 })

	// No key in common: nothing crosses.
	c, inC := startTCP(t, Config{Self: "c", Keys: [][]byte{k3, k2}})
	d, inD := startTCP(t, Config{Self: "d", Keys: [][]byte{k1}})
	c.Send("d", d.Addr().String(), []byte("x"))
	d.Send("c", c.Addr().String(), []byte("y"))
	waitFor(t, "refusals", func() bool { return c.Stats().AuthFailures > 0 && d.Stats().AuthFailures > 0 })
	if inC.count("d")+inD.count("c") != 0 {
		t.Fatal("frames crossed without a shared key")
	}
}

// pipeHandshake runs both sides of the handshake over net.Pipe.
func pipeHandshake(t *testing.T, dialKeys, acceptKeys [][]byte) (d, a *tcpSession, err error) {
	t.Helper()
	cli, srv := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	dialer := &Transport{cfg: Config{Self: "d", Keys: dialKeys}}
	acceptor := &Transport{cfg: Config{Self: "a", Keys: acceptKeys}}
	var aerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, a, aerr = acceptor.acceptHandshake(srv, srv)
		if aerr != nil {
			srv.Close()
		}
	}()
	d, err = dialer.dialHandshake(cli, "a")
	if err != nil {
		cli.Close()
	}
	<-done
	return d, a, errors.Join(err, aerr)
}

func TestTCPHandshakeKeyChoice(t *testing.T) {
	k1, k2, k3 := key(1), key(2), key(3)
	for _, tc := range []struct {
		name         string
		dial, accept [][]byte
		index        int // -1: must fail
	}{
		{"same key", [][]byte{k1}, [][]byte{k1}, 0},
		{"dialer primary preferred", [][]byte{k1, k2}, [][]byte{k2, k1}, 0},
		{"dialer secondary", [][]byte{k3, k2}, [][]byte{k2}, 1},
		{"acceptor secondary", [][]byte{k2}, [][]byte{k1, k2}, 0},
		{"no key in common", [][]byte{k1, k2}, [][]byte{k3}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, a, err := pipeHandshake(t, tc.dial, tc.accept)
			if tc.index < 0 {
				if err == nil {
					t.Fatal("handshake succeeded without a shared key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.keyIndex != tc.index || a.keyIndex != tc.index {
				t.Fatalf("key index %d/%d, want %d", d.keyIndex, a.keyIndex, tc.index)
			}
			// The directions have distinct keys that match across sides.
			msg := []byte("frame")
			sealed := d.send.aead.Seal(nil, make([]byte, 12), msg, nil)
			if _, err := a.recv.aead.Open(nil, make([]byte, 12), sealed, nil); err != nil {
				t.Fatal("dialer→acceptor keys differ")
			}
			if _, err := d.recv.aead.Open(nil, make([]byte, 12), sealed, nil); err == nil {
				t.Fatal("both directions share a key")
			}
		})
	}
}

func TestTCPPeerRestartReconnects(t *testing.T) {
	a, _ := startTCP(t, Config{Self: "a"})
	b, inB := startTCP(t, Config{Self: "b"})
	addr := b.Addr().String()
	a.Send("b", addr, []byte("before"))
	waitFor(t, "first frame", func() bool { return inB.count("a") == 1 })
	b.Close()
	b2, inB2 := startTCP(t, Config{Self: "b", BindAddr: addr})
	_ = b2
	// a noticed the close (its reader saw EOF): the first frame sent after
	// the restart goes over a new connection.
	time.Sleep(100 * time.Millisecond)
	a.Send("b", addr, []byte("after"))
	waitFor(t, "the first frame after the restart", func() bool { return inB2.count("a") == 1 })
	const n = 1000
	for i := range n {
		a.Send("b", addr, numbered(i))
	}
	waitFor(t, "frames after restart", func() bool { return inB2.count("a") == n+1 })
	checkNumbered(t, "after restart", inB2.get("a")[1:], n)
	if s := a.Stats(); s.Connects != 2 || s.Dropped != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestTCPOversizedFrame(t *testing.T) {
	a, _ := startTCP(t, Config{Self: "a", MaxFrame: 4096})
	b, inB := startTCP(t, Config{Self: "b", MaxFrame: 1000})
	if err := a.Send("b", b.Addr().String(), make([]byte, 4097)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Send of 4097 bytes: %v", err)
	}
	if err := a.Send("b", b.Addr().String(), nil); !errors.Is(err, ErrEmptyFrame) {
		t.Fatalf("Send of an empty frame: %v", err)
	}
	// b's limit is lower than a's: b drops the connection on the big
	// frame; a reconnects and the next frame arrives.
	a.Send("b", b.Addr().String(), make([]byte, 1001))
	waitFor(t, "b to refuse the frame", func() bool { return b.Stats().FrameErrors == 1 })
	waitFor(t, "a frame after the refusal", func() bool {
		a.Send("b", b.Addr().String(), []byte("small"))
		time.Sleep(10 * time.Millisecond)
		return inB.count("a") > 0
	})
	for _, f := range inB.get("a") {
		if len(f) > 1000 {
			t.Fatal("oversized frame delivered")
		}
	}
	if s := a.Stats(); s.Dropped != 1 {
		t.Fatalf("sender stats: %+v", s)
	}
}

// gate is a TCP proxy to target that holds each connection until open is
// closed.
type gate struct {
	ln   net.Listener
	open chan struct{}
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, open: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				<-g.open
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.Close() }()
				io.Copy(c, u)
			}()
		}
	}()
	return g
}

func TestTCPQueueOverflowDropsOldest(t *testing.T) {
	b, inB := startTCP(t, Config{Self: "b"})
	t.Run("frames", func(t *testing.T) {
		g := newGate(t, b.Addr().String())
		a, _ := startTCP(t, Config{Self: "a", QueueLen: 3, DialTimeout: 5 * time.Second})
		for i := range 10 {
			a.Send("b", g.ln.Addr().String(), []byte{byte(i)})
		}
		if s := a.Stats(); s.Dropped != 7 {
			t.Fatalf("dropped %d, want 7", s.Dropped)
		}
		close(g.open)
		waitFor(t, "the kept frames", func() bool { return inB.count("a") == 3 })
		time.Sleep(50 * time.Millisecond)
		if got := inB.get("a"); len(got) != 3 || got[0][0] != 7 || got[1][0] != 8 || got[2][0] != 9 {
			t.Fatalf("delivered %v, want the newest three [7] [8] [9]", got)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		g := newGate(t, b.Addr().String())
		a, _ := startTCP(t, Config{Self: "a2", QueueBytes: 250, DialTimeout: 5 * time.Second})
		for i := range 5 {
			f := make([]byte, 100)
			f[0] = byte(i)
			a.Send("b", g.ln.Addr().String(), f)
		}
		if s := a.Stats(); s.Dropped != 3 {
			t.Fatalf("dropped %d, want 3", s.Dropped)
		}
		close(g.open)
		waitFor(t, "the kept frames", func() bool { return inB.count("a2") == 2 })
		if got := inB.get("a2"); got[0][0] != 3 || got[1][0] != 4 {
			t.Fatalf("delivered frames %d and %d, want 3 and 4", got[0][0], got[1][0])
		}
	})
}

// rawDial completes a genuine handshake with tr as node self and returns
// the connection and its session, so a test can write chosen bytes.
func rawDial(t *testing.T, tr *Transport, self ring.NodeID, keys [][]byte) (net.Conn, *tcpSession) {
	t.Helper()
	c, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := &Transport{cfg: Config{Self: self, Keys: keys}}
	s, err := d.dialHandshake(c, tr.cfg.Self)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// sealed returns frame f sealed as the ctr-th frame of s's send direction.
func sealed(s *tcpSession, ctr uint64, f []byte) []byte {
	var buf strings.Builder
	w := bufio.NewWriter(&buf)
	s.send.ctr = ctr
	s.send.writeFrame(w, f)
	w.Flush()
	return []byte(buf.String())
}

// closedByPeer reports whether the remote end closes c within 3 s
// (keepalives it sends are skipped).
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestTCPReplayReorderTamperRejected(t *testing.T) {
	b, inB := startTCP(t, Config{Self: "b"})
	for _, tc := range []struct {
		name  string
		write func(s *tcpSession) [][]byte
		want  int // frames delivered before the bad one
	}{
		{"replay", func(s *tcpSession) [][]byte {
			f0 := sealed(s, 0, []byte("zero"))
			return [][]byte{f0, f0, sealed(s, 1, []byte("one"))}
		}, 1},
		{"reorder", func(s *tcpSession) [][]byte {
			return [][]byte{sealed(s, 1, []byte("one")), sealed(s, 0, []byte("zero"))}
		}, 0},
		{"skip", func(s *tcpSession) [][]byte {
			return [][]byte{sealed(s, 0, []byte("zero")), sealed(s, 2, []byte("two"))}
		}, 1},
		{"tamper", func(s *tcpSession) [][]byte {
			f := sealed(s, 0, []byte("payload"))
			f[len(f)-1] ^= 1
			return [][]byte{f}
		}, 0},
		{"tamper length", func(s *tcpSession) [][]byte {
			f := append(sealed(s, 0, []byte("payload")), 0)
			f[3]++ // the length is authenticated as associated data
			return [][]byte{f}
		}, 0},
		{"other direction's key", func(s *tcpSession) [][]byte {
			s.send = s.recv
			return [][]byte{sealed(s, 0, []byte("reflected"))}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := ring.NodeID("m-" + strings.ReplaceAll(tc.name, " ", "-"))
			c, s := rawDial(t, b, id, [][]byte{key(1)})
			for _, f := range tc.write(s) {
				c.Write(f)
			}
			if !closedByPeer(c) {
				t.Fatal("the connection stayed open")
			}
			if n := inB.count(id); n != tc.want {
				t.Fatalf("%d frames delivered, want %d", n, tc.want)
			}
		})
	}
	if s := b.Stats(); s.FrameErrors != 6 {
		t.Fatalf("frame errors %d, want 6", s.FrameErrors)
	}
}

func TestTCPHostileLengthAfterHandshake(t *testing.T) {
	b, inB := startTCP(t, Config{Self: "b", MaxFrame: 1 << 10})
	for _, n := range []uint32{0, 15, 1<<10 + 17, 1<<31 + 7, 0xffffffff} {
		c, _ := rawDial(t, b, "m", [][]byte{key(1)})
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], n)
		c.Write(hdr[:])
		if !closedByPeer(c) {
			t.Fatalf("length %d did not close the connection", n)
		}
	}
	if inB.count("m") != 0 {
		t.Fatal("a frame was delivered")
	}
}

func TestTCPGarbageAndSilentInbound(t *testing.T) {
	b, inB := startTCP(t, Config{Self: "b", DialTimeout: 200 * time.Millisecond})
	for _, junk := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "PHRP1\x01a", "PHRP2\x00", "PHRP2\x05abcde" + strings.Repeat("n", 32) + "\x09", ""} {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(junk))
		if !closedByPeer(c) {
			t.Fatalf("%q: connection not closed", junk)
		}
		c.Close()
	}
	if s := b.Stats(); s.AuthFailures != 5 || s.Accepts != 0 {
		t.Fatalf("stats: %+v", s)
	}
	a, _ := startTCP(t, Config{Self: "a"})
	a.Send("b", b.Addr().String(), []byte("still serving"))
	waitFor(t, "a→b", func() bool { return inB.count("a") == 1 })
}

func TestTCPTooManyPendingHandshakes(t *testing.T) {
	b, _ := startTCP(t, Config{Self: "b", DialTimeout: 10 * time.Second})
	var conns []net.Conn
	for range tcpMaxHandshakes {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// Wait until the 64 are all in handshake, then one more is refused.
	waitFor(t, "handshakes pending", func() bool { return len(b.hs) == tcpMaxHandshakes })
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closedByPeer(c) {
		t.Fatal("the 65th pending handshake was not refused")
	}
	if s := b.Stats(); s.Refused != 1 {
		t.Fatalf("refused %d, want 1", s.Refused)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "slots freed", func() bool { return len(b.hs) == 0 })
}

// TestTCPSilentPeerDisconnected: a peer that completed the handshake and
// then fell silent (vanished host, half-open connection) is dropped after
// 5 × KeepAlive, on either side.
func TestTCPSilentPeerDisconnected(t *testing.T) {
	const ka = 40 * time.Millisecond
	t.Run("acceptor closes a silent dialer", func(t *testing.T) {
		b, _ := startTCP(t, Config{Self: "b", KeepAlive: ka})
		c, _ := rawDial(t, b, "m", [][]byte{key(1)})
		start := time.Now()
		if !closedByPeer(c) {
			t.Fatal("silent dialer kept")
		}
		if d := time.Since(start); d < 4*ka {
			t.Fatalf("closed after %v, before the %v timeout", d, 5*ka)
		}
		waitFor(t, "the frame error", func() bool { return b.Stats().FrameErrors == 1 })
	})
	t.Run("dialer closes a silent acceptor", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		a, _ := startTCP(t, Config{Self: "a", KeepAlive: ka})
		a.Send("b", ln.Addr().String(), []byte("x"))
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fake := &Transport{cfg: Config{Self: "b", Keys: [][]byte{key(1)}}}
		if _, _, err := fake.acceptHandshake(c, c); err != nil {
			t.Fatal(err)
		}
		if !closedByPeer(c) {
			t.Fatal("silent acceptor kept")
		}
		if s := a.Stats(); s.FrameErrors != 1 || s.Sent != 1 {
			t.Fatalf("stats: %+v", s)
		}
	})
}

// TestTCPDialerChecksAcceptorID: frames for b sent to an address now held
// by c (reassigned address, stale membership) are not delivered to c.
func TestTCPDialerChecksAcceptorID(t *testing.T) {
	a, _ := startTCP(t, Config{Self: "a"})
	c, inC := startTCP(t, Config{Self: "c"})
	a.Send("b", c.Addr().String(), []byte("for b"))
	waitFor(t, "the refusal", func() bool { return a.Stats().AuthFailures == 1 })
	if inC.count("a") != 0 {
		t.Fatal("a frame addressed to b was delivered to c")
	}
}

func TestTCPPeerAddressChange(t *testing.T) {
	a, _ := startTCP(t, Config{Self: "a"})
	b1, in1 := startTCP(t, Config{Self: "b"})
	b2, in2 := startTCP(t, Config{Self: "b"})
	a.Send("b", b1.Addr().String(), []byte("1"))
	waitFor(t, "frame at the first address", func() bool { return in1.count("a") == 1 })
	a.Send("b", b2.Addr().String(), []byte("2"))
	waitFor(t, "frame at the new address", func() bool { return in2.count("a") == 1 })
	if in1.count("a") != 1 {
		t.Fatal("frame went to the old address")
	}
}

func TestTCPBindAddrAndConfigErrors(t *testing.T) {
	tr, err := New(Config{Self: "a", BindAddr: "127.0.0.1:0", Keys: [][]byte{key(1)}, OnFrame: func(ring.NodeID, []byte) {}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := tr.Send("b", "127.0.0.1:1", []byte("x")); !errors.Is(err, ErrTransportClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	ok := Config{Self: "a", BindAddr: "127.0.0.1:0", Keys: [][]byte{key(1)}, OnFrame: func(ring.NodeID, []byte) {}}
	for _, tc := range []struct {
		want string
		mod  func(*Config)
	}{
		{"node id", func(c *Config) { c.Self = "" }},
		{"node id", func(c *Config) { c.Self = ring.NodeID(strings.Repeat("x", 256)) }},
		{"bind address", func(c *Config) { c.BindAddr = "" }},
		{"keyring", func(c *Config) { c.Keys = nil }},
		{"keyring", func(c *Config) { c.Keys = make([][]byte, 9) }},
		{"cluster key 1 is 16 bytes", func(c *Config) { c.Keys = [][]byte{make([]byte, 16)} }},
		{"OnFrame", func(c *Config) { c.OnFrame = nil }},
		{"BackoffMax", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }},
		{"listening", func(c *Config) { c.BindAddr = "256.0.0.1:0" }},
	} {
		cfg := ok
		tc.mod(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error about %q, got %v", tc.want, err)
		}
	}
}

// transportGoroutines lists the goroutines running transport code.
func transportGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "tcp.(*Transport)") || strings.Contains(g, "tcp.(*tcpPeer)") {
			out = append(out, g)
		}
	}
	return out
}

// TestTCPCloseStopsEverything closes transports in every state — connected
// both ways, in backoff to a dead address, blocked in a handshake, holding
// a pending inbound handshake — and checks that Close returns promptly and
// no transport goroutine survives it.
func TestTCPCloseStopsEverything(t *testing.T) {
	if gs := transportGoroutines(); len(gs) > 0 {
		t.Fatalf("transport goroutines before the test:\n%s", strings.Join(gs, "\n\n"))
	}
	before := runtime.NumGoroutine()
	func() {
		var trs []*Transport
		for _, id := range []ring.NodeID{"a", "b", "c"} {
			tr, err := New(Config{Self: id, BindAddr: "127.0.0.1:0", Keys: [][]byte{key(1)},
				OnFrame: func(ring.NodeID, []byte) {}, DialTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			trs = append(trs, tr)
		}
		a, b, c := trs[0], trs[1], trs[2]
		for i := range 100 {
			a.Send("b", b.Addr().String(), numbered(i))
			b.Send("a", a.Addr().String(), numbered(i))
		}
		a.Send("dead", "127.0.0.1:1", []byte("x")) // refused: backoff
		// c's writer blocks in a handshake with a listener that never answers.
		mute, _ := net.Listen("tcp", "127.0.0.1:0")
		defer mute.Close()
		c.Send("mute", mute.Addr().String(), []byte("x"))
		// A pending inbound handshake on b.
		raw, _ := net.Dial("tcp", b.Addr().String())
		defer raw.Close()
		waitFor(t, "traffic", func() bool {
			return a.Stats().Received == 100 && b.Stats().Received == 100 && c.Stats().Dials == 1 && len(b.hs) == 1
		})
		start := time.Now()
		for _, tr := range trs {
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Close took %v", d)
		}
	}()
	// A goroutine that has called wg.Done may still be on its way out when
	// Close returns: give the scheduler a moment before calling it a leak.
	deadline := time.Now().Add(2 * time.Second)
	for gs := transportGoroutines(); len(gs) > 0; gs = transportGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("transport goroutines after Close:\n%s", strings.Join(gs, "\n\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "goroutine count", func() bool { return runtime.NumGoroutine() <= before })
}

// FuzzTCPFrameReader: after a genuine handshake, hostile bytes on the
// connection never panic the reader, never allocate past MaxFrame and never
// deliver a frame (forging a GCM tag is out of reach).
func FuzzTCPFrameReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{0, 0, 4, 16})
	f.Fuzz(func(t *testing.T, b []byte) {
		var delivered atomic.Int64
		cfg := Config{Self: "a", Keys: [][]byte{key(1)}, MaxFrame: 1 << 10, DialTimeout: time.Second,
			OnFrame: func(ring.NodeID, []byte) { delivered.Add(1) }}
		cfg.EnsureDefaults()
		tr := newTransport(cfg, nil)
		srv, cli := net.Pipe()
		tr.hs <- struct{}{}
		tr.track(srv)
		tr.spawn(func() { tr.serve(srv) })
		d := &Transport{cfg: Config{Self: "m", Keys: [][]byte{key(1)}}}
		if _, err := d.dialHandshake(cli, "a"); err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, cli) // keepalives
		cli.Write(b)
		cli.Close()
		tr.wg.Wait()
		if n := delivered.Load(); n != 0 {
			t.Fatalf("%d forged frames delivered", n)
		}
	})
}

// FuzzTCPDialHandshake: whatever a hostile acceptor answers, the dialer
// neither panics nor agrees on a session.
func FuzzTCPDialHandshake(f *testing.F) {
	n := string(make([]byte, tcpNonceSize))
	f.Add([]byte(""))
	f.Add([]byte("PHRP2\x01b" + n))
	f.Add([]byte("PHRP2\x01b" + n + "\x00" + string(make([]byte, 32))))
	f.Add([]byte("PHRP2\x01b" + n + "\xff"))
	f.Add([]byte("PHRP2\x01b" + n + "\x07"))
	f.Add([]byte("PHRP2\x01c" + n))
	f.Add([]byte("PHRP2\x00"))
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cli, srv := net.Pipe()
		defer cli.Close()
		go io.Copy(io.Discard, srv)
		go func() { srv.Write(b); srv.Close() }()
		cli.SetDeadline(time.Now().Add(time.Second))
		d := &Transport{cfg: Config{Self: "a", Keys: [][]byte{key(1), key(2)}}}
		if _, err := d.dialHandshake(cli, "b"); err == nil {
			t.Fatal("handshake with a hostile acceptor succeeded")
		}
	})
}

// BenchmarkTCPTransportFlow measures steady-state throughput of 200-byte
// frames over loopback, keeping at most window frames in flight so the
// queue never overflows (BenchmarkTCPTransport, in transport_test.go,
// queues everything up front).
func BenchmarkTCPTransportFlow(b *testing.B) {
	const window = DefaultTCPQueueLen / 2
	var got atomic.Int64
	progress := make(chan struct{}, 1)
	a, _ := startTCP(b, Config{Self: "a"})
	rx, _ := startTCP(b, Config{Self: "b", OnFrame: func(ring.NodeID, []byte) {
		if got.Add(1)%512 == 0 {
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}})
	addr := rx.Addr().String()
	frame := make([]byte, 200)
	a.Send("b", addr, frame) // connect outside the timed loop
	for got.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	got.Store(0)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for int64(i)-got.Load() > window {
			select {
			case <-progress:
			case <-time.After(time.Millisecond):
			}
		}
		a.Send("b", addr, frame)
	}
	for got.Load() < int64(b.N) {
		if s := a.Stats(); s.Dropped != 0 {
			b.Fatalf("dropped %d", s.Dropped)
		}
		select {
		case <-progress:
		case <-time.After(time.Millisecond):
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	if s := a.Stats(); s.Dropped != 0 {
		b.Fatalf("dropped %d", s.Dropped)
	}
}
