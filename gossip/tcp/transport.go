package tcp

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/clusterkey"
	"github.com/playhead/playhead/gossip/ring"
)

// Defaults of tcp.Config.
const (
	// DefaultBindAddr is where a node listens for replication when not
	// told (node.ClusterOptions.RPCAddr).
	DefaultBindAddr       = "0.0.0.0:7948"
	DefaultTCPMaxFrame    = 4 << 20
	DefaultTCPQueueLen    = 4096
	DefaultTCPQueueBytes  = 64 << 20
	DefaultTCPDialTimeout = 2 * time.Second
	DefaultTCPKeepAlive   = time.Second
	DefaultTCPBackoffMin  = 50 * time.Millisecond
	DefaultTCPBackoffMax  = 5 * time.Second

	// tcpMaxHandshakes bounds the inbound connections that have not yet
	// completed the handshake; more are closed at once.
	tcpMaxHandshakes = 64
	// tcpLogEvery rate-limits each kind of connection warning.
	tcpLogEvery = 5 * time.Second
)

// Errors returned by tcp.Transport.Send.
var (
	ErrTransportClosed = errors.New("tcp: transport closed")
	ErrFrameTooLarge   = errors.New("tcp: frame exceeds the transport's MaxFrame")
	ErrEmptyFrame      = errors.New("tcp: empty frame")
)

// Config configures a tcp.Transport.
type Config struct {
	// Self is this node's id, sent in the handshake (1..255 bytes). Required.
	Self ring.NodeID
	// Listener takes the peers' connections; the transport owns it and
	// closes it on Close. If nil, the transport listens on BindAddr.
	Listener net.Listener
	// BindAddr is the host:port to listen on when Listener is nil
	// ("127.0.0.1:0" picks a free port; Addr reports it).
	BindAddr string
	// Keys is the cluster keyring: 1..8 keys of clusterkey.Size (32) bytes,
	// the primary first (as clusterkey.LoadAll returns them). Inbound
	// connections are accepted with any of them; outbound ones offer all,
	// in order, and the first the peer also knows keys the connection —
	// the primary whenever the peer has it. So a rotation works in any
	// order as long as each pair of nodes shares one key. Required.
	Keys [][]byte
	// OnFrame receives each frame from a peer, called from that
	// connection's reader goroutine, one frame at a time per peer and in
	// the order sent. The frame is the callee's to keep. It must not block
	// for long: while it runs, that peer's frames back up and, past
	// WriteTimeout, the peer drops the connection. Required.
	OnFrame func(from ring.NodeID, frame []byte)
	// Logger receives connection failures, rate-limited (one of a kind per
	// 5 s). The default discards them.
	Logger *slog.Logger
	// Rand draws the reconnect jitter; the transport uses it under a lock.
	// The default is a ChaCha8 generator seeded from crypto/rand.
	Rand *rand.Rand

	// MaxFrame bounds a frame's size in bytes, on Send and on receipt (a
	// peer sending a larger one is disconnected before anything is
	// allocated). It must be at least the largest frame the sender builds.
	// The default value is 4 MiB.
	MaxFrame int
	// QueueLen bounds the frames queued per peer; past it, or past
	// QueueBytes, the oldest are dropped and counted. A longer queue rides
	// out longer stalls at the price of memory and staleness. The default
	// value is 4096.
	QueueLen int
	// QueueBytes bounds the bytes queued per peer (the sum of the queued
	// frames' lengths): QueueLen bounds many small frames, QueueBytes a few
	// big ones. The default value is 64 MiB or QueueLen × 1 KiB, whichever
	// is larger (so a long queue of small frames is bounded by its length).
	QueueBytes int
	// DialTimeout bounds a dial, and then a handshake (inbound or
	// outbound). The default value is 2 s.
	DialTimeout time.Duration
	// KeepAlive is how often an idle connection proves it is alive; a
	// connection silent for 5 × KeepAlive is closed (and the dialer
	// reconnects), which catches peers that vanished without closing.
	// Give every node the same value: a node with a longer one looks silent
	// to the others. The default value is 1 s.
	KeepAlive time.Duration
	// WriteTimeout bounds one write to a peer; a peer that stops reading
	// for longer is disconnected and its batch requeued. The default value
	// is 10 × KeepAlive (10 s).
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay before redialing a peer
	// that could not be reached: it starts at BackoffMin, doubles per
	// failure up to BackoffMax, and each wait is drawn uniformly from
	// [d/2, d). The default values are 50 ms and 5 s.
	BackoffMin, BackoffMax time.Duration
}

// EnsureDefaults fills in the zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		var seed [32]byte
		crand.Read(seed[:])
		c.Rand = rand.New(rand.NewChaCha8(seed))
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultTCPMaxFrame
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultTCPQueueLen
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = max(DefaultTCPQueueBytes, c.QueueLen<<10)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultTCPDialTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultTCPKeepAlive
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * c.KeepAlive
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultTCPBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultTCPBackoffMax, c.BackoffMin)
	}
}

// Validate reports what is wrong with the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Self == "" || len(c.Self) > 255 {
		errs = append(errs, fmt.Errorf("the node id must be 1 to 255 bytes, got %d", len(c.Self)))
	}
	if c.Listener == nil && c.BindAddr == "" {
		errs = append(errs, errors.New("a listener or a bind address (host:port) is required"))
	}
	if len(c.Keys) == 0 || len(c.Keys) > tcpMaxKeys {
		errs = append(errs, fmt.Errorf("the keyring must hold 1 to %d cluster keys, got %d (generate one with `playhead keygen`)", tcpMaxKeys, len(c.Keys)))
	}
	for i, k := range c.Keys {
		if len(k) != clusterkey.Size {
			errs = append(errs, fmt.Errorf("cluster key %d is %d bytes, want %d", i+1, len(k), clusterkey.Size))
		}
	}
	if c.OnFrame == nil {
		errs = append(errs, errors.New("a frame handler (OnFrame) is required"))
	}
	if c.MaxFrame < 0 || c.MaxFrame > 1<<30 {
		errs = append(errs, fmt.Errorf("MaxFrame %d is out of range (0 < MaxFrame ≤ 1 GiB)", c.MaxFrame))
	}
	if c.QueueLen < 0 || c.QueueBytes < 0 {
		errs = append(errs, errors.New("QueueLen and QueueBytes must not be negative"))
	}
	if c.DialTimeout < 0 || c.KeepAlive < 0 || c.WriteTimeout < 0 || c.BackoffMin < 0 || (c.BackoffMax != 0 && c.BackoffMax < c.BackoffMin) {
		errs = append(errs, errors.New("timeouts must not be negative, and BackoffMax must be at least BackoffMin"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tcp: TCP transport config: %w", err)
	}
	return nil
}

// Stats counts a tcp.Transport's work since it started. Keepalives are
// not counted as frames.
type Stats struct {
	Sent, Received           uint64 // data frames written to / read from a connection
	BytesSent, BytesReceived uint64 // their payload bytes
	Dropped                  uint64 // frames dropped: queue full, too large, peer unreachable, Close
	Dials, DialFailures      uint64 // outbound connection attempts; those that got no TCP connection
	Connects, Accepts        uint64 // outbound / inbound connections that completed the handshake
	AuthFailures             uint64 // handshakes that failed, either side (wrong key or node, garbage, timeout)
	FrameErrors              uint64 // connections closed on a bad frame (length, tag, replay, reorder) or silence
	Refused                  uint64 // inbound connections closed unread: too many handshakes pending
}

// Transport is the production Transport: one persistent, authenticated
// and encrypted TCP connection per peer and direction. The wire protocol is
// described in transport_tcp_wire.go.
//
// Goroutines, all started through t.spawn and waited for by Close: the
// accept loop; per peer sent to, a writer (for the transport's lifetime)
// and, while connected, a reader for the peer's keepalives; per inbound
// connection, a reader and a keepalive writer.
//
// Lock order: t.mu before tcpPeer.mu; t.randMu and t.logMu are leaves.
type Transport struct {
	cfg    Config
	ln     net.Listener
	ctx    context.Context // cancelled by Close: aborts dials
	cancel context.CancelFunc
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
	hs     chan struct{} // semaphore: inbound handshakes in progress

	stats struct {
		sent, received, bytesSent, bytesReceived, dropped, dials, dialFailures,
		connects, accepts, authFailures, frameErrors, refused atomic.Uint64
	}

	mu      sync.Mutex
	closed  bool
	peers   map[ring.NodeID]*tcpPeer
	conns   map[net.Conn]struct{}    // every open connection, closed by Close
	inbound map[ring.NodeID]net.Conn // the newest authenticated inbound connection per peer

	randMu sync.Mutex
	// fillNonce, when set (tests only), fills handshake nonces instead of
	// crypto/rand, so that a handshake's bytes can be pinned.
	fillNonce func([]byte)

	logMu   sync.Mutex
	logLast map[string]time.Time
	logSkip map[string]int
}

var _ gossip.Transport = (*Transport)(nil)

// New validates cfg, listens if cfg.Listener is nil, and starts
// accepting peers.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.EnsureDefaults()
	cfg.Keys = slices.Clone(cfg.Keys)
	for i, k := range cfg.Keys {
		cfg.Keys[i] = slices.Clone(k)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.BindAddr); err != nil {
			return nil, fmt.Errorf("tcp: listening for replication on %s: %w", cfg.BindAddr, err)
		}
	}
	t := newTransport(cfg, ln)
	t.spawn(t.acceptLoop)
	return t, nil
}

// newTransport builds a transport that does not accept yet (tests drive
// serve and session directly).
func newTransport(cfg Config, ln net.Listener) *Transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{cfg: cfg, ln: ln, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		hs: make(chan struct{}, tcpMaxHandshakes), peers: map[ring.NodeID]*tcpPeer{},
		conns: map[net.Conn]struct{}{}, inbound: map[ring.NodeID]net.Conn{},
		logLast: map[string]time.Time{}, logSkip: map[string]int{}}
}

// Addr returns the listener's address.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats {
	s := &t.stats
	return Stats{Sent: s.sent.Load(), Received: s.received.Load(),
		BytesSent: s.bytesSent.Load(), BytesReceived: s.bytesReceived.Load(), Dropped: s.dropped.Load(),
		Dials: s.dials.Load(), DialFailures: s.dialFailures.Load(), Connects: s.connects.Load(),
		Accepts: s.accepts.Load(), AuthFailures: s.authFailures.Load(), FrameErrors: s.frameErrors.Load(),
		Refused: s.refused.Load()}
}

// Send queues frame for peer to at addr; see Transport.
func (t *Transport) Send(to ring.NodeID, addr string, frame []byte) error {
	if len(frame) == 0 {
		return ErrEmptyFrame
	}
	if len(frame) > t.cfg.MaxFrame {
		t.stats.dropped.Add(1)
		return fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, len(frame), t.cfg.MaxFrame)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrTransportClosed
	}
	p := t.peers[to]
	if p == nil {
		p = &tcpPeer{t: t, id: to, wake: make(chan struct{}, 1)}
		t.peers[to] = p
		t.spawn(p.run)
	}
	t.mu.Unlock()
	p.enqueue(addr, frame)
	return nil
}

// Close stops the listener, writers and readers and waits for them.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel()
	close(t.done)
	err := t.ln.Close()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	for _, p := range t.peers {
		p.dropQueued()
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// spawn runs f in a goroutine that Close waits for. Callers hold t.mu or
// run in a goroutine spawned earlier, so Close's Wait cannot miss it.
func (t *Transport) spawn(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// track registers c so Close closes it; false (and c closed) if closing.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

// warn logs at most one message of each kind per tcpLogEvery, with the
// number suppressed since the last.
func (t *Transport) warn(kind, msg string, args ...any) {
	now := time.Now()
	t.logMu.Lock()
	if now.Sub(t.logLast[kind]) < tcpLogEvery {
		t.logSkip[kind]++
		t.logMu.Unlock()
		return
	}
	skipped := t.logSkip[kind]
	t.logLast[kind], t.logSkip[kind] = now, 0
	t.logMu.Unlock()
	if skipped > 0 {
		args = append(args, "suppressed", skipped)
	}
	t.cfg.Logger.Warn(msg, args...)
}

func (t *Transport) jitter(d time.Duration) time.Duration {
	t.randMu.Lock()
	defer t.randMu.Unlock()
	half := d / 2
	return half + time.Duration(t.cfg.Rand.Int64N(int64(d-half)+1))
}

func (t *Transport) acceptLoop() {
	var delay time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				t.cfg.Logger.Error("the replication listener closed; no more peers will connect", "err", err)
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.warn("accept", "accepting a replication connection", "err", err, "retry_in", delay)
			select {
			case <-t.done:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		select {
		case t.hs <- struct{}{}:
		default:
			t.stats.refused.Add(1)
			t.warn("refused", "too many replication handshakes in progress; closing a connection", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		if !t.track(c) {
			<-t.hs
			return
		}
		t.spawn(func() { t.serve(c) })
	}
}

// serve runs an inbound connection: handshake, then frames to OnFrame,
// with keepalives going back.
func (t *Transport) serve(c net.Conn) {
	defer t.untrack(c)
	c.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	from, s, err := t.acceptHandshake(c, c)
	<-t.hs
	if err != nil {
		t.stats.authFailures.Add(1)
		t.warn("auth-in", "refused a replication connection", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	t.stats.accepts.Add(1)
	t.mu.Lock()
	if old := t.inbound[from]; old != nil {
		old.Close() // the peer reconnected: its old connection is dead to it
	}
	t.inbound[from] = c
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.inbound[from] == c {
			delete(t.inbound, from)
		}
		t.mu.Unlock()
	}()

	stop := make(chan struct{})
	defer close(stop)
	t.spawn(func() { t.keepAlive(c, &s.send, stop) })

	err = t.readFrames(c, &s.recv, func(f []byte) {
		t.stats.received.Add(1)
		t.stats.bytesReceived.Add(uint64(len(f)))
		t.cfg.OnFrame(from, f)
	})
	if isFrameError(err) {
		t.stats.frameErrors.Add(1)
		t.warn("frame", "closing a replication connection", "peer", string(from), "err", err)
	}
}

// readFrames reads frames from c until an error, passing data frames to
// deliver. A connection silent for 5 × KeepAlive times out.
func (t *Transport) readFrames(c net.Conn, rc *tcpCipher, deliver func([]byte)) error {
	r := bufio.NewReaderSize(c, 64<<10)
	idle := 5 * t.cfg.KeepAlive
	var renewed time.Time
	for {
		// Renewing the deadline costs a timer update: do it once per
		// quarter of the window, not per frame.
		if now := time.Now(); now.Sub(renewed) > idle/4 {
			c.SetReadDeadline(now.Add(idle))
			renewed = now
		}
		f, err := rc.readFrame(r, t.cfg.MaxFrame)
		if err != nil {
			return err
		}
		if len(f) > 0 {
			deliver(f)
		}
	}
}

// isFrameError reports whether a connection ended on the peer's fault
// rather than a close.
func isFrameError(err error) bool {
	var ne net.Error
	return errors.Is(err, errTCPFrameLen) || errors.Is(err, errTCPFrameAuth) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// keepAlive sends the acceptor's keepalives on c until stop or a write
// fails. It is c's only writer after the handshake.
func (t *Transport) keepAlive(c net.Conn, sc *tcpCipher, stop <-chan struct{}) {
	tick := time.NewTicker(t.cfg.KeepAlive)
	defer tick.Stop()
	w := bufio.NewWriterSize(c, 64)
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		if sc.writeFrame(w, nil) != nil || w.Flush() != nil {
			c.Close()
			return
		}
	}
}
