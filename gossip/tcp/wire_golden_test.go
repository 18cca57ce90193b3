package tcp

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/playhead/playhead/gossip/internal/goldentest"
	"github.com/playhead/playhead/gossip/ring"
)

// recConn records what its side writes.
type recConn struct {
	net.Conn
	wrote bytes.Buffer
}

func (c *recConn) Write(b []byte) (int, error) {
	c.wrote.Write(b)
	return c.Conn.Write(b)
}

// fixedNonces fills each nonce with seed, seed+1, … (a fresh run of the
// handshake then writes the same bytes).
func fixedNonces(seed byte) func([]byte) {
	return func(b []byte) {
		for i := range b {
			b[i] = seed + byte(i)
		}
	}
}

// goldenHandshake runs both sides over net.Pipe with fixed nonces and
// returns what each wrote and the sessions (nil on a refusal).
func goldenHandshake(t *testing.T, dialKeys, acceptKeys [][]byte) (d2a, a2d []byte, d, a *tcpSession) {
	t.Helper()
	cli, srv := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	dc, ac := &recConn{Conn: cli}, &recConn{Conn: srv}
	dialer := &Transport{cfg: Config{Self: "node-dialer", Keys: dialKeys}, fillNonce: fixedNonces(0x10)}
	acceptor := &Transport{cfg: Config{Self: ring.NodeID("node-acceptor"), Keys: acceptKeys}, fillNonce: fixedNonces(0xa0)}
	var aerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, a, aerr = acceptor.acceptHandshake(ac, srv)
	}()
	d, err := dialer.dialHandshake(dc, "node-acceptor")
	<-done
	if (err == nil) != (aerr == nil) {
		t.Fatalf("one side failed: dialer %v, acceptor %v", err, aerr)
	}
	return dc.wrote.Bytes(), ac.wrote.Bytes(), d, a
}

// TestGoldenTCPWire pins the replication transport's bytes (wire.go): both
// directions of a handshake with fixed nonces — one shared key, a rotation
// where the dialer's primary is unknown to the acceptor, a refusal — and
// the sealed frames of each direction of a session (data and keepalives),
// which the other side must open. A node of another release must produce
// and accept exactly these.
func TestGoldenTCPWire(t *testing.T) {
	k1, k2 := key(1), key(2)
	var cases []goldentest.Case
	add := func(name string, b []byte) { cases = append(cases, goldentest.Case{Name: name, Bytes: bytes.Clone(b)}) }

	type frame struct {
		name   string
		d2a    bool
		plain  []byte
		sealed []byte
	}
	var frames []frame
	var sessions [2][2]*tcpSession
	for i, sc := range []struct {
		name         string
		dial, accept [][]byte
	}{{"one-key", [][]byte{k1}, [][]byte{k1}}, {"rotation", [][]byte{k2, k1}, [][]byte{k1}}} {
		d2a, a2d, d, a := goldenHandshake(t, sc.dial, sc.accept)
		add(sc.name+"/dialer-to-acceptor", d2a)
		add(sc.name+"/acceptor-to-dialer", a2d)
		sessions[i] = [2]*tcpSession{d, a}
		if d.keyIndex != i || a.keyIndex != i {
			t.Fatalf("%s: agreed on key %d/%d, want %d", sc.name, d.keyIndex, a.keyIndex, i)
		}
		for j, f := range []frame{
			{sc.name + "/frame-d2a-0", true, []byte("phf\x01 first frame"), nil},
			{sc.name + "/frame-d2a-1-keepalive", true, nil, nil},
			{sc.name + "/frame-d2a-2", true, bytes.Repeat([]byte{0x5a}, 40), nil},
			{sc.name + "/frame-a2d-0-keepalive", false, nil, nil},
		} {
			s := a
			if f.d2a {
				s = d
			}
			ctr := uint64(j)
			if !f.d2a {
				ctr = 0
			}
			f.sealed = sealed(s, ctr, f.plain)
			add(f.name, f.sealed)
			frames = append(frames, f)
		}
	}
	d2a, a2d, _, _ := goldenHandshake(t, [][]byte{k2}, [][]byte{k1})
	add("refused/dialer-to-acceptor", d2a)
	add("refused/acceptor-to-dialer", a2d)

	want := goldentest.Check(t, "testdata/wire.golden",
		"Replication transport (gossip/tcp/wire.go, protocol PHRP2) with nonces fixed\n"+
			"to 10 11 12 … (dialer node-dialer) and a0 a1 a2 … (acceptor node-acceptor), keys\n"+
			"32 × 01 and 32 × 02. <case>/dialer-to-acceptor: hello then key proofs;\n"+
			"<case>/acceptor-to-dialer: hello then confirm (or refusal 0xff). one-key: both\n"+
			"hold key 01; rotation: the dialer offers 02, 01 and the acceptor knows 01;\n"+
			"refused: no shared key. frame-*: len u32 ‖ AES-256-GCM sealed frame under the\n"+
			"session key, counters 0, 1, 2 (d2a) and 0 (a2d); an empty one is a keepalive.", cases)

	// The pinned frames open, in order, on the other side of the session.
	for i := range sessions {
		d, a := sessions[i][0], sessions[i][1]
		d.recv.ctr, a.recv.ctr = 0, 0
		for _, f := range frames[4*i : 4*i+4] {
			w, ok := want[f.name]
			if !ok {
				continue
			}
			s := d
			if f.d2a {
				s = a
			}
			got, err := s.recv.readFrame(bufio.NewReader(bytes.NewReader(w)), 1<<20)
			if err != nil || !bytes.Equal(got, f.plain) {
				t.Errorf("%s: pinned frame opens to %q, %v; want %q", f.name, got, err, f.plain)
			}
		}
	}
	if _, err := (&tcpCipher{aead: sessions[0][1].recv.aead}).readFrame(bytes.NewReader(want["one-key/frame-d2a-2"]), 1<<20); !errors.Is(err, errTCPFrameAuth) {
		t.Errorf("a pinned frame opened at the wrong counter: %v", err)
	}
}
