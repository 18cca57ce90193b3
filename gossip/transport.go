package gossip

import "github.com/playhead/playhead/gossip/ring"

// Transport carries opaque frames (an encoded batch of replication
// messages) between nodes. The production implementation is tcp.Transport;
// the simulator substitutes its own network.
//
// Delivery is best effort and FIFO per (sender, receiver) pair: a frame may
// be lost (full queue, unreachable peer, broken connection) or, after a
// reconnect, delivered twice, but frames that arrive on one connection
// arrive in the order they were sent. Replication tolerates this: answers
// time out, and hints and anti-entropy repair what was lost; merges are
// idempotent.
//
// Implementations are safe for concurrent use.
type Transport interface {
	// Send queues frame for peer to at address addr (host:port of its rpc
	// listener). It never blocks on the network: frames are queued per peer
	// (bounded; when full, the oldest are dropped and counted) and written
	// by a per-peer writer over one persistent connection, batching whatever
	// is queued into as few writes as possible. The transport keeps frame
	// until it is written: the caller must not modify it after Send.
	// An error means the frame was not queued (transport closed, frame
	// empty or too large); a nil error does not mean it will arrive.
	Send(to ring.NodeID, addr string, frame []byte) error
	// Close stops the listener, writers and readers and waits for them.
	// Frames still queued are dropped. Close is idempotent.
	Close() error
}
