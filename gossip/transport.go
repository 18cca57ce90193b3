package gossip

import (
	"bufio"
	"context"
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
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Transport carries opaque frames (encoded batches of replication
// messages) between nodes. Send never blocks on the network: frames queue
// per peer and may be dropped when the queue is full or the peer is
// unreachable — replication tolerates loss (answers time out, hints and
// anti-entropy repair).
type Transport interface {
	Send(to NodeID, addr string, frame []byte) error
	Close() error
}

// TCPConfig configures a TCPTransport.
type TCPConfig struct {
	// Self is this node's id, sent in the handshake. Required.
	Self NodeID
	// Listener takes the peers' connections. Required.
	Listener net.Listener
	// Keys is the cluster keyring (32-byte keys): the first authenticates
	// this node's outbound connections, any authenticates inbound ones.
	// Required.
	Keys [][]byte
	// OnFrame receives each frame from a peer, from that connection's
	// reader goroutine. It must not block for long.
	OnFrame func(from NodeID, frame []byte)
	// Logger receives connection failures (rate-limited). The default
	// discards them.
	Logger *slog.Logger
	// MaxFrame bounds a frame (default MaxFrame); QueueLen bounds the
	// frames queued per peer (default 4096; the oldest are dropped past
	// it); DialTimeout bounds a dial plus handshake (default 2 s).
	MaxFrame    int
	QueueLen    int
	DialTimeout time.Duration
}

// TCPStats counts a TCPTransport's work.
type TCPStats struct {
	Sent, Received, Dropped, Dials, DialFailures, AuthFailures uint64
}

// TCPTransport is the production Transport: one persistent, authenticated
// and encrypted TCP connection per peer and direction.
//
// Handshake (both sides, the dialer first): "PHRP1", len(id) (1 byte), id,
// a 32-byte random nonce. Then the dialer sends HMAC-SHA256(key, "playhead
// rpc v1" ‖ dialer hello ‖ acceptor hello) with its primary key; the
// acceptor checks it against every key it knows and answers with the HMAC
// of the same transcript and "ok" under the key that matched. Frames from
// the dialer are then sealed with AES-256-GCM under
// HKDF-SHA256(key, salt = both nonces, info "dialer→acceptor"), a 4-byte
// big-endian length before each, and a 96-bit counter nonce, so a frame
// replayed, reordered or altered on the connection fails to open and
// closes it. Connections carry frames one way (dialer to acceptor).
type TCPTransport struct {
	cfg   TCPConfig
	stats struct{ sent, received, dropped, dials, dialFailures, authFailures atomic.Uint64 }

	mu      sync.Mutex
	peers   map[NodeID]*tcpPeer
	conns   map[net.Conn]struct{}
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
	lastLog atomic.Int64
}

type tcpPeer struct {
	t     *TCPTransport
	id    NodeID
	mu    sync.Mutex
	addr  string
	queue [][]byte
	wake  chan struct{}
}

const (
	handshakeMagic = "PHRP1"
	nonceSize      = 32
)

// NewTCPTransport starts accepting peers on cfg.Listener.
func NewTCPTransport(cfg TCPConfig) (*TCPTransport, error) {
	if cfg.Self == "" || cfg.Listener == nil || len(cfg.Keys) == 0 || cfg.OnFrame == nil {
		return nil, errors.New("gossip: the TCP transport needs its node id, a listener, the cluster keys and a frame handler")
	}
	for _, k := range cfg.Keys {
		if len(k) != GossipKeySize {
			return nil, fmt.Errorf("gossip: cluster keys are %d bytes, got %d", GossipKeySize, len(k))
		}
	}
	if len(cfg.Self) > 255 {
		return nil, errors.New("gossip: node id longer than 255 bytes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = MaxFrame
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 4096
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	t := &TCPTransport{cfg: cfg, peers: map[NodeID]*tcpPeer{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

// Addr returns the listener's address.
func (t *TCPTransport) Addr() net.Addr { return t.cfg.Listener.Addr() }

// Stats returns the transport's counters.
func (t *TCPTransport) Stats() TCPStats {
	return TCPStats{Sent: t.stats.sent.Load(), Received: t.stats.received.Load(), Dropped: t.stats.dropped.Load(),
		Dials: t.stats.dials.Load(), DialFailures: t.stats.dialFailures.Load(), AuthFailures: t.stats.authFailures.Load()}
}

// Send queues frame for peer to at addr.
func (t *TCPTransport) Send(to NodeID, addr string, frame []byte) error {
	if len(frame) > t.cfg.MaxFrame {
		t.stats.dropped.Add(1)
		return fmt.Errorf("gossip: frame of %d bytes exceeds the maximum %d", len(frame), t.cfg.MaxFrame)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return errors.New("gossip: transport closed")
	}
	p := t.peers[to]
	if p == nil {
		p = &tcpPeer{t: t, id: to, wake: make(chan struct{}, 1)}
		t.peers[to] = p
		t.wg.Add(1)
		go p.run()
	}
	t.mu.Unlock()
	p.mu.Lock()
	p.addr = addr
	if len(p.queue) >= t.cfg.QueueLen {
		p.queue = p.queue[1:]
		t.stats.dropped.Add(1)
	}
	p.queue = append(p.queue, frame)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close stops the listener and every connection and waits for them.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	err := t.cfg.Listener.Close()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

func (t *TCPTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *TCPTransport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func (t *TCPTransport) logf(msg string, args ...any) {
	now := time.Now().UnixMilli()
	if last := t.lastLog.Load(); now-last < 5000 || !t.lastLog.CompareAndSwap(last, now) {
		return
	}
	t.cfg.Logger.Warn(msg, args...)
}

func (t *TCPTransport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.cfg.Listener.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go t.serve(c)
	}
}

// serve reads frames from an inbound connection.
func (t *TCPTransport) serve(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	c.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	r := bufio.NewReaderSize(c, 64<<10)
	from, aead, err := t.acceptHandshake(c, r)
	if err != nil {
		t.stats.authFailures.Add(1)
		t.logf("refused a replication connection", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	var ctr uint64
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < aead.Overhead() || n > t.cfg.MaxFrame+aead.Overhead() {
			t.logf("replication frame of bad length; closing", "peer", string(from), "len", n)
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		frame, err := aead.Open(buf[:0], counterNonce(ctr), buf, hdr[:])
		if err != nil {
			t.logf("replication frame failed authentication; closing", "peer", string(from))
			return
		}
		ctr++
		t.stats.received.Add(1)
		t.cfg.OnFrame(from, frame)
	}
}

func counterNonce(ctr uint64) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], ctr)
	return n[:]
}

func hello(id NodeID, nonce []byte) []byte {
	b := make([]byte, 0, len(handshakeMagic)+1+len(id)+nonceSize)
	b = append(b, handshakeMagic...)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	return append(b, nonce...)
}

func readHello(r io.Reader) (NodeID, []byte, []byte, error) {
	head := make([]byte, len(handshakeMagic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return "", nil, nil, err
	}
	if string(head[:len(handshakeMagic)]) != handshakeMagic {
		return "", nil, nil, errors.New("not a playhead replication peer")
	}
	rest := make([]byte, int(head[len(handshakeMagic)])+nonceSize)
	if _, err := io.ReadFull(r, rest); err != nil {
		return "", nil, nil, err
	}
	id := NodeID(rest[:len(rest)-nonceSize])
	if id == "" {
		return "", nil, nil, errors.New("empty node id")
	}
	return id, rest[len(rest)-nonceSize:], append(head, rest...), nil
}

func transcriptMAC(key, dialerHello, acceptorHello []byte, suffix string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("playhead rpc v1"))
	m.Write(dialerHello)
	m.Write(acceptorHello)
	m.Write([]byte(suffix))
	return m.Sum(nil)
}

func sessionAEAD(key, dialerNonce, acceptorNonce []byte) (cipher.AEAD, error) {
	salt := append(append([]byte{}, dialerNonce...), acceptorNonce...)
	k, err := hkdf.Key(sha256.New, key, salt, "dialer→acceptor", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (t *TCPTransport) acceptHandshake(c net.Conn, r io.Reader) (NodeID, cipher.AEAD, error) {
	from, dNonce, dHello, err := readHello(r)
	if err != nil {
		return "", nil, err
	}
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	aHello := hello(t.cfg.Self, nonce)
	if _, err := c.Write(aHello); err != nil {
		return "", nil, err
	}
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, mac); err != nil {
		return "", nil, err
	}
	for _, k := range t.cfg.Keys {
		if hmac.Equal(mac, transcriptMAC(k, dHello, aHello, "")) {
			if _, err := c.Write(transcriptMAC(k, dHello, aHello, "ok")); err != nil {
				return "", nil, err
			}
			aead, err := sessionAEAD(k, dNonce, nonce)
			return from, aead, err
		}
	}
	return "", nil, fmt.Errorf("peer %q does not know the cluster key", from)
}

func (t *TCPTransport) dialHandshake(c net.Conn, want NodeID) (cipher.AEAD, error) {
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	dHello := hello(t.cfg.Self, nonce)
	if _, err := c.Write(dHello); err != nil {
		return nil, err
	}
	peer, aNonce, aHello, err := readHello(c)
	if err != nil {
		return nil, err
	}
	if peer != want {
		return nil, fmt.Errorf("the node at this address is %q, not %q (stale address?)", peer, want)
	}
	key := t.cfg.Keys[0]
	if _, err := c.Write(transcriptMAC(key, dHello, aHello, "")); err != nil {
		return nil, err
	}
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, mac); err != nil {
		return nil, fmt.Errorf("the peer refused our cluster key: %w", err)
	}
	if !hmac.Equal(mac, transcriptMAC(key, dHello, aHello, "ok")) {
		return nil, errors.New("the peer does not know the cluster key")
	}
	return sessionAEAD(key, nonce, aNonce)
}

// run is the peer's writer: it dials, handshakes, and writes queued frames,
// reconnecting with exponential backoff and full jitter.
func (p *tcpPeer) run() {
	t := p.t
	defer t.wg.Done()
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(len(p.id))))
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-t.done:
			return
		default:
		}
		p.mu.Lock()
		addr, pending := p.addr, len(p.queue)
		p.mu.Unlock()
		if pending == 0 {
			select {
			case <-t.done:
				return
			case <-p.wake:
			}
			continue
		}
		err := p.connect(addr, func() { backoff = 50 * time.Millisecond })
		if err == nil {
			continue
		}
		select {
		case <-t.done:
			return
		case <-time.After(time.Duration(rng.Int64N(int64(backoff)) + 1)):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// connect opens one connection and writes frames until it fails.
func (p *tcpPeer) connect(addr string, connected func()) error {
	t := p.t
	t.stats.dials.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.DialTimeout)
	go func() {
		select {
		case <-t.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		t.stats.dialFailures.Add(1)
		p.dropQueued() // the peer is down: hints and anti-entropy repair it
		return err
	}
	if !t.track(c) {
		return errors.New("closed")
	}
	defer t.untrack(c)
	c.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	aead, err := t.dialHandshake(c, p.id)
	if err != nil {
		t.stats.authFailures.Add(1)
		t.logf("replication handshake failed", "peer", string(p.id), "addr", addr, "err", err)
		return err
	}
	c.SetDeadline(time.Time{})
	connected()
	// The acceptor never writes after the handshake: a read returning means
	// the peer closed or reset the connection. Noticing it at once keeps the
	// writer from putting the next batch into a dead socket.
	peerGone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(peerGone)
	}()
	w := bufio.NewWriterSize(c, 64<<10)
	var ctr uint64
	var sealed []byte
	for {
		select {
		case <-peerGone:
			return errors.New("the peer closed the connection")
		default:
		}
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(batch) == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
			select {
			case <-t.done:
				return nil
			case <-peerGone:
				return errors.New("the peer closed the connection")
			case <-p.wake:
				continue
			}
		}
		c.SetWriteDeadline(time.Now().Add(5 * t.cfg.DialTimeout))
		for _, f := range batch {
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], uint32(len(f)+aead.Overhead()))
			sealed = aead.Seal(sealed[:0], counterNonce(ctr), f, hdr[:])
			ctr++
			if _, err := w.Write(hdr[:]); err != nil {
				p.requeue(batch)
				return err
			}
			if _, err := w.Write(sealed); err != nil {
				p.requeue(batch)
				return err
			}
			t.stats.sent.Add(1)
		}
	}
}

// requeue puts a batch whose write failed back before what was queued
// since, so a reconnect sends it (frames may then arrive twice: the
// replication messages are idempotent).
func (p *tcpPeer) requeue(batch [][]byte) {
	p.mu.Lock()
	p.queue = append(batch, p.queue...)
	if over := len(p.queue) - p.t.cfg.QueueLen; over > 0 {
		p.queue = p.queue[over:]
		p.t.stats.dropped.Add(uint64(over))
	}
	p.mu.Unlock()
}

func (p *tcpPeer) dropQueued() {
	p.mu.Lock()
	p.t.stats.dropped.Add(uint64(len(p.queue)))
	p.queue = nil
	p.mu.Unlock()
}

var _ Transport = (*TCPTransport)(nil)
