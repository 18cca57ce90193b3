package tcp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/playhead/playhead/gossip/ring"
)

var (
	errTCPAddrChanged = errors.New("tcp: the peer's address changed")
	errTCPPeerGone    = errors.New("tcp: the peer closed the connection")
)

// tcpPeer is the outbound side of one peer: its queue and the writer
// goroutine (run) that owns its connection.
type tcpPeer struct {
	t    *Transport
	id   ring.NodeID
	wake chan struct{} // capacity 1: frames were queued

	mu    sync.Mutex
	addr  string   // where to reach the peer: the latest Send's
	queue [][]byte // oldest first
	bytes int      // Invariant: the sum of len over queue.
}

// enqueue appends f, dropping the oldest frames past the bounds.
func (p *tcpPeer) enqueue(addr string, f []byte) {
	p.mu.Lock()
	p.addr = addr
	p.queue = append(p.queue, f)
	p.bytes += len(f)
	p.trimLocked()
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// requeue puts back a batch whose write failed, before what was queued
// since, so the next connection sends it (some of it may then arrive twice).
func (p *tcpPeer) requeue(batch [][]byte) {
	p.mu.Lock()
	p.queue = append(batch, p.queue...)
	for _, f := range batch {
		p.bytes += len(f)
	}
	p.trimLocked()
	p.mu.Unlock()
}

// trimLocked drops the oldest frames until the queue is within QueueLen and
// QueueBytes, keeping at least the newest frame.
func (p *tcpPeer) trimLocked() {
	cfg := &p.t.cfg
	n := 0
	for len(p.queue)-n > 1 && (len(p.queue)-n > cfg.QueueLen || p.bytes > cfg.QueueBytes) {
		p.bytes -= len(p.queue[n])
		p.queue[n] = nil
		n++
	}
	if n > 0 {
		p.queue = p.queue[n:]
		p.t.stats.dropped.Add(uint64(n))
	}
}

// take empties the queue and returns what it held.
func (p *tcpPeer) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.queue
	p.queue, p.bytes = nil, 0
	return b
}

func (p *tcpPeer) dropQueued() int {
	n := len(p.take())
	p.t.stats.dropped.Add(uint64(n))
	return n
}

func (p *tcpPeer) pending() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr, len(p.queue) > 0
}

// run is the peer's writer: while frames are queued it connects, and it
// reconnects with exponential backoff and jitter when it cannot.
func (p *tcpPeer) run() {
	t := p.t
	backoff := t.cfg.BackoffMin
	for {
		addr, ok := p.pending()
		for !ok {
			select {
			case <-t.done:
				return
			case <-p.wake:
			}
			addr, ok = p.pending()
		}
		connected, err := p.session(addr)
		select {
		case <-t.done:
			return
		default:
		}
		if errors.Is(err, errTCPAddrChanged) {
			continue
		}
		if connected {
			backoff = t.cfg.BackoffMin
		}
		wait := t.jitter(backoff)
		if !connected {
			backoff = min(2*backoff, t.cfg.BackoffMax)
		}
		select {
		case <-t.done:
			return
		case <-time.After(wait):
		}
	}
}

// session dials addr, handshakes and writes queued frames until the
// connection fails, the address changes or the transport closes. When it
// cannot connect, it drops what is queued: the peer is unreachable, and
// replication's hints and anti-entropy repair the loss.
func (p *tcpPeer) session(addr string) (connected bool, err error) {
	t := p.t
	t.stats.dials.Add(1)
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		t.stats.dialFailures.Add(1)
		n := p.dropQueued()
		t.warn("dial "+string(p.id), "cannot reach a replication peer", "peer", string(p.id), "addr", addr, "dropped", n, "err", err)
		return false, err
	}
	if !t.track(c) {
		return false, ErrTransportClosed
	}
	defer t.untrack(c)
	c.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	s, err := t.dialHandshake(c, p.id)
	if err != nil {
		t.stats.authFailures.Add(1)
		n := p.dropQueued()
		t.warn("handshake "+string(p.id), "replication handshake failed", "peer", string(p.id), "addr", addr, "dropped", n, "err", err)
		return false, err
	}
	c.SetDeadline(time.Time{})
	t.stats.connects.Add(1)

	// The acceptor sends only keepalives. Reading them notices at once a
	// peer that closed (restart) and, by their absence, one that vanished,
	// so the writer does not put the next batch into a dead socket.
	dead := make(chan struct{})
	t.spawn(func() {
		defer close(dead)
		err := t.readFrames(c, &s.recv, func([]byte) {})
		if isFrameError(err) {
			t.stats.frameErrors.Add(1)
			t.warn("frame "+string(p.id), "closing a replication connection", "peer", string(p.id), "err", err)
		}
		c.Close()
	})

	w := bufio.NewWriterSize(c, 64<<10)
	keepAlive := time.NewTimer(t.cfg.KeepAlive)
	defer keepAlive.Stop()
	var last [][]byte // the batch most recently written, requeued if its flush fails
	for {
		p.mu.Lock()
		moved := p.addr != addr
		p.mu.Unlock()
		if moved {
			return true, errTCPAddrChanged
		}
		batch := p.take()
		if len(batch) == 0 {
			if w.Buffered() > 0 {
				c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
				if err := w.Flush(); err != nil {
					p.requeue(last)
					return true, err
				}
			}
			last = nil
			keepAlive.Reset(t.cfg.KeepAlive)
			select {
			case <-t.done:
				return true, nil
			case <-dead:
				return true, errTCPPeerGone
			case <-p.wake:
			case <-keepAlive.C:
				c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
				if err := s.send.writeFrame(w, nil); err != nil {
					return true, err
				}
				if err := w.Flush(); err != nil {
					return true, err
				}
			}
			continue
		}
		select {
		case <-dead:
			p.requeue(batch)
			return true, errTCPPeerGone
		default:
		}
		c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		for _, f := range batch {
			if err := s.send.writeFrame(w, f); err != nil {
				p.requeue(batch)
				return true, err
			}
			t.stats.sent.Add(1)
			t.stats.bytesSent.Add(uint64(len(f)))
		}
		last = batch
	}
}
