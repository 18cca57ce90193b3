package client

import (
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/playhead/playhead/crdt"
)

// Client is the I/O side of the SDK: it sends what Trackers produce, keeps
// the offline queue, reads cursors and follows push streams. It is safe for
// concurrent use. One Client per app; profiles are named per call.
//
// Lock order: flushMu before mu. mu is never held across a request.
type Client struct {
	cfg Config
	log *slog.Logger
	// clock is the device's HLC. A clock-skew refusal replaces it (see
	// recoverClockSkew): a crdt.Clock cannot be moved back. Stored and
	// observed under mu, so that no observation is lost to a swap; loaded
	// without a lock by Trackers.
	clock atomic.Pointer[crdt.Clock]

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
	// seenHLC is the largest HLC the nodes have shown this device: their
	// Playhead-HLC and the versions and updated_hlc of the cursors they
	// returned. A clock-skew reset restarts the HLC from here, so the
	// device still stamps above everything it has seen. Guarded by mu.
	seenHLC crdt.HLC
	// seen is the largest cursor version shown to this device, per profile
	// and video (seen.go). Guarded by mu.
	seen map[seenKey]crdt.Version
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
		cfg: cfg,
		log: cfg.Logger,
		tok: cfg.Token,
		rnd: cfg.Rand,
	}
	c.clock.Store(crdt.NewClock(0))
	q, err := NewQueue(cfg.QueueStorage, cfg.QueueLimit)
	if err != nil {
		c.log.Warn("playhead: offline queue unreadable; starting with an empty queue", "err", err)
	}
	c.queue = q
	return c, nil
}

// Clock returns the device's HLC, shared by every Tracker of this Client.
//
// When the node refuses a write because the device's clock ran too far
// ahead (APIError.ClockSkew), the Client replaces its HLC by a new one,
// restarted from the node's clock (see Report): call Clock again rather
// than keeping the value. Trackers made with Client.NewTracker follow the
// replacement; a Tracker made with NewTracker(c.Clock(), …) keeps stamping
// from the clock it was given.
func (c *Client) Clock() *crdt.Clock { return c.clock.Load() }

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

// NewTracker returns a Tracker stamping with this Client's clock — the
// current one, also after a clock-skew reset replaced it (see Clock).
// cfg.Device defaults to Config.Device.
func (c *Client) NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.Device == "" {
		cfg.Device = c.cfg.Device
	}
	t := NewTracker(c.Clock(), cfg)
	t.clockOf = c.Clock
	return t
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
