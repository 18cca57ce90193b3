package tcp

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/playhead/playhead/gossip/ring"
)

// The replication wire protocol (version 2). Both sides of a TCP
// connection speak it; the side that dialed is the dialer D, the other the
// acceptor A. All integers are big-endian.
//
// Handshake:
//
//	D → A  hello_D   = "PHRP2" ‖ len(id_D) u8 ‖ id_D ‖ nonce_D[32]
//	A → D  hello_A   = "PHRP2" ‖ len(id_A) u8 ‖ id_A ‖ nonce_A[32]
//	D → A  proof     = n u8 (1..8) ‖ mac_1 … mac_n,
//	                   mac_i = HMAC-SHA256(k_i, "playhead rpc v2 proof" ‖ hello_D ‖ hello_A)
//	                   for D's keys k_1..k_n, primary first
//	A → D  confirm   = i u8 ‖ HMAC-SHA256(k_i, "playhead rpc v2 confirm" ‖ hello_D ‖ hello_A ‖ proof ‖ i)
//	                   where i is the first of D's keys A also knows (0-based),
//	       or refusal = 0xff, then A closes.
//
// Nonces come from crypto/rand; ids are 1..255 bytes. D checks that id_A is
// the node it meant to reach. Neither side sends a key; each proves it
// holds one bound to both fresh nonces, so a recorded handshake cannot be
// replayed. The confirm covers the proof, so stripping D's preferred MAC is
// detected. A peer that holds no key the other side knows learns nothing but
// the other's id.
//
// Session keys (AES-256-GCM, one per direction):
//
//	salt    = SHA-256(hello_D ‖ hello_A ‖ proof ‖ confirm)
//	key_D→A = HKDF-SHA256(secret k_i, salt, info "playhead rpc v2 dialer to acceptor", 32 bytes)
//	key_A→D = HKDF-SHA256(secret k_i, salt, info "playhead rpc v2 acceptor to dialer", 32 bytes)
//
// Frames, in each direction independently:
//
//	len u32 ‖ AES-256-GCM-Seal(key_dir, nonce = 0x00000000 ‖ ctr u64, plaintext, aad = len)
//
// len counts the sealed bytes (plaintext + 16-byte tag) and is at most
// MaxFrame + 16; the reader rejects a larger one before allocating. ctr
// starts at 0 on each direction of each connection and counts every frame,
// so a replayed, reordered, dropped or altered frame fails to open and the
// connection is closed. An empty plaintext is a keepalive: the acceptor
// sends one every KeepAlive, the dialer when it has been idle that long;
// each side closes a connection that is silent for 5 × KeepAlive. Only the
// dialer sends data frames: a connection carries frames one way, and two
// nodes that talk both ways hold two connections.
//
// FORMAT: a wire format, pinned by TestGoldenTCPWire (wire_golden_test.go):
// nodes of different releases must interoperate. Any change needs a new magic.
const (
	tcpMagic     = "PHRP2"
	tcpNonceSize = 32
	tcpMaxKeys   = 8
	tcpTagSize   = 16
	tcpHdrSize   = 4
	tcpRefused   = 0xff

	tcpLabelProof   = "playhead rpc v2 proof"
	tcpLabelConfirm = "playhead rpc v2 confirm"
	tcpInfoD2A      = "playhead rpc v2 dialer to acceptor"
	tcpInfoA2D      = "playhead rpc v2 acceptor to dialer"
)

// Handshake errors.
var (
	errTCPNotPeer    = errors.New("tcp: not a playhead replication peer (bad magic)")
	errTCPBadHello   = errors.New("tcp: malformed replication hello")
	errTCPNoKey      = errors.New("tcp: the peer presented no cluster key we know")
	errTCPRefused    = errors.New("tcp: the peer refused our cluster keys")
	errTCPBadConfirm = errors.New("tcp: the peer's handshake confirmation does not verify")
	errTCPFrameLen   = errors.New("tcp: replication frame length out of range")
	errTCPFrameAuth  = errors.New("tcp: replication frame failed authentication (tampered, replayed or reordered)")
)

// tcpSession holds one connection's keys after the handshake.
type tcpSession struct {
	send, recv tcpCipher
	keyIndex   int // which of the dialer's keys was agreed (0: its primary)
}

// tcpCipher seals or opens one direction's frames.
//
// Invariant: ctr is the number of frames sealed (or opened) so far.
type tcpCipher struct {
	aead  cipher.AEAD
	ctr   uint64
	nonce [12]byte
}

func (c *tcpCipher) next() []byte {
	binary.BigEndian.PutUint64(c.nonce[4:], c.ctr)
	c.ctr++
	return c.nonce[:]
}

// writeFrame seals f and appends it to w.
func (c *tcpCipher) writeFrame(w *bufio.Writer, f []byte) error {
	var hdr [tcpHdrSize]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(f)+tcpTagSize))
	need := tcpHdrSize + len(f) + tcpTagSize
	if w.Available() < need && w.Buffered() > 0 && need <= w.Size() {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if w.Available() >= need {
		// Seal in place in the writer's buffer: no copy.
		b := append(w.AvailableBuffer(), hdr[:]...)
		b = c.aead.Seal(b, c.next(), f, hdr[:])
		_, err := w.Write(b)
		return err
	}
	sealed := c.aead.Seal(make([]byte, 0, len(f)+tcpTagSize), c.next(), f, hdr[:])
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(sealed)
	return err
}

// readFrame reads and opens the next frame (an empty one is a keepalive).
// It allocates only after checking the length against maxFrame.
func (c *tcpCipher) readFrame(r io.Reader, maxFrame int) ([]byte, error) {
	var hdr [tcpHdrSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < tcpTagSize || uint64(n) > uint64(maxFrame)+tcpTagSize {
		return nil, fmt.Errorf("%w: %d bytes", errTCPFrameLen, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	f, err := c.aead.Open(buf[:0], c.next(), buf, hdr[:])
	if err != nil {
		return nil, errTCPFrameAuth
	}
	return f, nil
}

func tcpHello(id ring.NodeID, nonce []byte) []byte {
	b := make([]byte, 0, len(tcpMagic)+1+len(id)+tcpNonceSize)
	b = append(b, tcpMagic...)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	return append(b, nonce...)
}

// readTCPHello reads a hello: at most 5+1+255+32 bytes.
func readTCPHello(r io.Reader) (id ring.NodeID, nonce, raw []byte, err error) {
	head := make([]byte, len(tcpMagic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return "", nil, nil, err
	}
	if string(head[:len(tcpMagic)]) != tcpMagic {
		return "", nil, nil, errTCPNotPeer
	}
	idLen := int(head[len(tcpMagic)])
	if idLen == 0 {
		return "", nil, nil, fmt.Errorf("%w: empty node id", errTCPBadHello)
	}
	raw = make([]byte, len(head)+idLen+tcpNonceSize)
	copy(raw, head)
	if _, err := io.ReadFull(r, raw[len(head):]); err != nil {
		return "", nil, nil, err
	}
	return ring.NodeID(raw[len(head) : len(head)+idLen]), raw[len(raw)-tcpNonceSize:], raw, nil
}

func (t *Transport) tcpNonce() []byte {
	n := make([]byte, tcpNonceSize)
	if t.fillNonce != nil {
		t.fillNonce(n)
		return n
	}
	rand.Read(n) // never fails (Go 1.24+)
	return n
}

func tcpProofMAC(key, helloD, helloA []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tcpLabelProof))
	m.Write(helloD)
	m.Write(helloA)
	return m.Sum(nil)
}

func tcpConfirmMAC(key, helloD, helloA, proof []byte, i byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tcpLabelConfirm))
	m.Write(helloD)
	m.Write(helloA)
	m.Write(proof)
	m.Write([]byte{i})
	return m.Sum(nil)
}

func tcpNewSession(key []byte, dialer bool, keyIndex int, transcript ...[]byte) (*tcpSession, error) {
	h := sha256.New()
	for _, b := range transcript {
		h.Write(b)
	}
	salt := h.Sum(nil)
	aead := func(info string) (cipher.AEAD, error) {
		k, err := hkdf.Key(sha256.New, key, salt, info, 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	}
	d2a, err := aead(tcpInfoD2A)
	if err != nil {
		return nil, err
	}
	a2d, err := aead(tcpInfoA2D)
	if err != nil {
		return nil, err
	}
	s := &tcpSession{keyIndex: keyIndex}
	if dialer {
		s.send.aead, s.recv.aead = d2a, a2d
	} else {
		s.send.aead, s.recv.aead = a2d, d2a
	}
	return s, nil
}

// acceptHandshake runs the acceptor's side on c (reading through r, which
// must not read ahead of the handshake): it returns the dialer's id and the
// session. It reads at most 5+1+255+32 + 1+8·32 bytes. The caller sets the
// deadline.
func (t *Transport) acceptHandshake(c net.Conn, r io.Reader) (ring.NodeID, *tcpSession, error) {
	from, _, helloD, err := readTCPHello(r)
	if err != nil {
		return "", nil, err
	}
	helloA := tcpHello(t.cfg.Self, t.tcpNonce())
	if _, err := c.Write(helloA); err != nil {
		return "", nil, err
	}
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", nil, err
	}
	if n[0] == 0 || n[0] > tcpMaxKeys {
		return "", nil, fmt.Errorf("%w: %d key proofs", errTCPBadHello, n[0])
	}
	proof := make([]byte, 1+int(n[0])*sha256.Size)
	proof[0] = n[0]
	if _, err := io.ReadFull(r, proof[1:]); err != nil {
		return "", nil, err
	}
	// The first of the dialer's keys (its preference) that we know.
	for i := range int(n[0]) {
		mac := proof[1+i*sha256.Size : 1+(i+1)*sha256.Size]
		for _, k := range t.cfg.Keys {
			if !hmac.Equal(mac, tcpProofMAC(k, helloD, helloA)) {
				continue
			}
			confirm := append([]byte{byte(i)}, tcpConfirmMAC(k, helloD, helloA, proof, byte(i))...)
			if _, err := c.Write(confirm); err != nil {
				return "", nil, err
			}
			s, err := tcpNewSession(k, false, i, helloD, helloA, proof, confirm)
			return from, s, err
		}
	}
	c.Write([]byte{tcpRefused})
	return "", nil, fmt.Errorf("%w (peer says it is %q)", errTCPNoKey, from)
}

// dialHandshake runs the dialer's side on c, expecting to reach node want.
// It reads at most 5+1+255+32 + 1+32 bytes. The caller sets the deadline.
func (t *Transport) dialHandshake(c net.Conn, want ring.NodeID) (*tcpSession, error) {
	helloD := tcpHello(t.cfg.Self, t.tcpNonce())
	if _, err := c.Write(helloD); err != nil {
		return nil, err
	}
	peer, _, helloA, err := readTCPHello(c)
	if err != nil {
		return nil, err
	}
	if peer != want {
		return nil, fmt.Errorf("tcp: the node at this address is %q, not %q (stale address?)", peer, want)
	}
	proof := make([]byte, 1, 1+len(t.cfg.Keys)*sha256.Size)
	proof[0] = byte(len(t.cfg.Keys))
	for _, k := range t.cfg.Keys {
		proof = append(proof, tcpProofMAC(k, helloD, helloA)...)
	}
	if _, err := c.Write(proof); err != nil {
		return nil, err
	}
	confirm := make([]byte, 1+sha256.Size)
	if _, err := io.ReadFull(c, confirm[:1]); err != nil {
		return nil, fmt.Errorf("tcp: no handshake confirmation (does the peer know our cluster key?): %w", err)
	}
	i := confirm[0]
	if i == tcpRefused {
		return nil, errTCPRefused
	}
	if int(i) >= len(t.cfg.Keys) {
		return nil, errTCPBadConfirm
	}
	if _, err := io.ReadFull(c, confirm[1:]); err != nil {
		return nil, err
	}
	k := t.cfg.Keys[i]
	if !hmac.Equal(confirm[1:], tcpConfirmMAC(k, helloD, helloA, proof, i)) {
		return nil, errTCPBadConfirm
	}
	return tcpNewSession(k, true, int(i), helloD, helloA, proof, confirm)
}
