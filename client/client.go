package client

import (
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/playhead/playhead/crdt"
)

// Client is the I/O side of the SDK: it sends what Trackers produce, keeps
// the offline queue, reads cursors and follows push streams. It is safe for
// concurrent use. One Client per app; profiles are named per call.
//
// Lock order: flushMu before mu. mu is never held across a request.
type Client struct {
	cfg   Config
	log   *slog.Logger
	clock *crdt.Clock

	// flushMu serializes flushes, so a batch is never sent twice at once.
	flushMu sync.Mutex

	mu sync.Mutex
	// queue is the offline queue. Guarded by mu.
	queue *Queue
	// holdUntilMs (device clock) is when the node's last Retry-After ends;
	// until then writes are queued without a request. Guarded by mu.
	holdUntilMs int64
	// offsetMs corrects the device clock to the node's (see NowMs).
	// Guarded by mu.
	offsetMs int64
	// serverHLC is the largest Playhead-HLC seen. Guarded by mu.
	serverHLC crdt.HLC
	// tok is the bearer token. Guarded by mu.
	tok string
	// rnd is Config.Rand. Guarded by mu.
	rnd *rand.Rand
}

// New returns a Client. It loads the offline queue; a queue file that
// cannot be read is logged and replaced by an empty queue (the error is
// not returned: the app works on). It fails only on a bad Config.
func New(cfg Config) (*Client, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:   cfg,
		log:   cfg.Logger,
		clock: crdt.NewClock(0),
		tok:   cfg.Token,
		rnd:   cfg.Rand,
	}
	q, err := NewQueue(cfg.QueueStorage, cfg.QueueLimit)
	if err != nil {
		c.log.Warn("playhead: offline queue unreadable; starting with an empty queue", "err", err)
	}
	c.queue = q
	return c, nil
}

// Clock returns the device's HLC, shared by every Tracker of this Client.
func (c *Client) Clock() *crdt.Clock { return c.clock }

// NowMs returns the time to pass to Trackers: the device clock corrected
// by the node's (the Playhead-HLC of the answers), so a device whose clock
// is minutes off still stamps versions in step with the others' — and
// within the node's allowed skew. The correction changes only when the
// clocks drift apart by more than ClockSyncThreshold.
func (c *Client) NowMs() int64 {
	c.mu.Lock()
	off := c.offsetMs
	c.mu.Unlock()
	return c.cfg.Clock.NowMs() + off
}

// SetToken replaces the bearer token (after a refresh). Writes that got
// 401 are queued; call Flush after SetToken.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	c.tok = token
	c.mu.Unlock()
}

func (c *Client) token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tok
}

// NewTracker returns a Tracker stamping with this Client's clock.
// cfg.Device defaults to Config.Device.
func (c *Client) NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.Device == "" {
		cfg.Device = c.cfg.Device
	}
	return NewTracker(c.clock, cfg)
}

// Queued returns the number of updates in the offline queue.
func (c *Client) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue.Len()
}

// QueuedItems returns the offline queue's updates in version order.
func (c *Client) QueuedItems() []Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue.Items()
}
