// Package driver runs a gossip.Core in production: one goroutine that
// owns the Core, batches device requests from many goroutines into its
// cycles (so all the writes of a cycle share one durable store write), ticks
// it on the wall clock, and carries out its Ready over a Transport. The core
// itself (package gossip) starts no goroutines and reads no clock.
package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/playhead/playhead/crdt"
	"github.com/playhead/playhead/gossip"
	"github.com/playhead/playhead/gossip/ring"
	"github.com/playhead/playhead/storage"
)

// Config configures a Driver: the production driver of a Core.
type Config struct {
	// Core configures the replication logic; Core.Self is required.
	Core gossip.CoreConfig
	// Store is the node's durable store. Required.
	Store storage.Store
	// Clock is the wall clock. Required.
	Clock gossip.Clock
	// Notifier receives the changes for this node's subscribers.
	Notifier gossip.Notifier
	// AddrOf returns a peer's replication address (from membership); ""
	// when unknown (the message is dropped).
	AddrOf func(ring.NodeID) string
	// Logger receives storage and transport failures.
	Logger *slog.Logger
	// TickInterval is how often the Core ticks. The default value is 10 ms.
	TickInterval time.Duration
}

// DefaultTickInterval is the default of Config.TickInterval.
const DefaultTickInterval = 10 * time.Millisecond

// EnsureDefaults fills zero fields with their defaults (and those of Core).
func (c *Config) EnsureDefaults() {
	c.Core.EnsureDefaults()
	if c.Notifier == nil {
		c.Notifier = nopNotifier{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.AddrOf == nil {
		c.AddrOf = func(ring.NodeID) string { return "" }
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("driver: Config.Store is required")
	case c.Clock == nil:
		return errors.New("driver: Config.Clock is required (wallclock.Clock{} in production)")
	case c.TickInterval <= 0:
		return fmt.Errorf("driver: tick interval must be positive, got %v", c.TickInterval)
	}
	return c.Core.Validate()
}

// Driver runs a Core in one goroutine and serves gossip.Service on top of
// it: device requests from many goroutines are batched into the Core's
// cycles, so all the writes of a cycle share one durable store write.
type Driver struct {
	cfg  Config
	core *gossip.Core

	transport gossip.Transport
	in        chan func()
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	// Sync pipelining (syncer.go): the Core's store applies each cycle's
	// batch without waiting for its WAL sync; what the cycle's outputs
	// claim to be durable waits in syncq for the syncer goroutine.
	store   *pipelinedStore
	syncq   chan heldCycle
	syncWG  sync.WaitGroup
	syncErr error // the first sync failure; syncer goroutine only

	mu      sync.Mutex
	nextID  uint64
	waiting map[uint64]chan gossip.Completion
	ready   bool
	table   ring.Table
	stats   gossip.CoreStats
	hints   int // hints held for unreachable owners, as of the last cycle
	pulls   int // partitions still to pull (handoff), as of the last cycle
}

var _ gossip.Service = (*Driver)(nil)

// New builds the driver; Start runs it.
func New(cfg Config) (*Driver, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store := &pipelinedStore{Store: cfg.Store}
	core, err := gossip.NewCore(cfg.Core, store, cfg.Clock.NowMs())
	if err != nil {
		return nil, err
	}
	// Request ids start from the clock: an answer from before a restart,
	// still in flight, must not complete a new request.
	return &Driver{cfg: cfg, core: core, in: make(chan func(), 4096), done: make(chan struct{}),
		store: store, syncq: make(chan heldCycle, syncQueue),
		waiting: map[uint64]chan gossip.Completion{}, nextID: uint64(cfg.Clock.NowMs()) << 16}, nil
}

// Start runs the driver loop over transport (which delivers inbound
// frames to Deliver).
func (c *Driver) Start(transport gossip.Transport) {
	c.transport = transport
	c.syncWG.Add(1)
	go c.syncer()
	c.wg.Add(1)
	go c.loop()
}

// Close stops the loop; requests in flight fail with ErrUnavailable.
func (c *Driver) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wg.Wait()
		// The loop has stopped: the syncer releases what it holds (after
		// its syncs) and stops.
		close(c.syncq)
		c.syncWG.Wait()
		c.mu.Lock()
		for id, ch := range c.waiting {
			ch <- gossip.Completion{ID: id, Err: fmt.Errorf("%w: the node is shutting down", gossip.ErrUnavailable)}
			delete(c.waiting, id)
		}
		c.mu.Unlock()
	})
}

func (c *Driver) loop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.TickInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case f := <-c.in:
			c.core.Tick(c.cfg.Clock.NowMs())
			f()
			// Take everything else already waiting into the same cycle.
		drain:
			for range cap(c.in) {
				select {
				case f := <-c.in:
					f()
				default:
					break drain
				}
			}
		case <-tick.C:
			c.core.Tick(c.cfg.Clock.NowMs())
		}
		c.cycle()
	}
}

// cycle flushes the Core and carries out its Ready. The flush applies the
// cycle's batch without waiting for its sync (pipelinedStore); messages
// that claim nothing about durability go out now, and everything else —
// answers, acknowledgements, events — to the syncer, which releases it
// once the batch is durable (syncer.go).
func (c *Driver) cycle() {
	if err := c.core.Flush(); err != nil {
		c.cfg.Logger.Error("writing to the store failed", "err", err)
	}
	wait := c.store.take()
	rd := c.core.Ready()
	var held []gossip.Envelope
	byPeer := map[ring.NodeID][]gossip.Msg{}
	for _, e := range rd.Messages {
		if sendBeforeSync(e.Msg.Type) {
			byPeer[e.To] = append(byPeer[e.To], e.Msg)
		} else {
			held = append(held, e)
		}
	}
	for _, to := range slices.Sorted(maps.Keys(byPeer)) {
		c.sendAll(to, byPeer[to])
	}
	t, haveTable := c.core.Table()
	c.mu.Lock()
	c.ready, c.table = haveTable, t
	c.stats = c.core.Stats()
	c.hints, c.pulls = c.core.Hints(), c.core.Handoffs()
	c.mu.Unlock()
	if wait == nil && len(held) == 0 && len(rd.Events) == 0 && len(rd.Completions) == 0 {
		return
	}
	c.syncq <- heldCycle{wait: wait, msgs: held, events: rd.Events, done: rd.Completions}
}

// sendAll sends msgs to a peer in frames of bounded size.
func (c *Driver) sendAll(to ring.NodeID, msgs []gossip.Msg) {
	addr := c.cfg.AddrOf(to)
	if addr == "" || c.transport == nil {
		return
	}
	for len(msgs) > 0 {
		n := len(msgs)
		for {
			frame, err := gossip.EncodeFrame(msgs[:n])
			if err == nil && (len(frame) <= gossip.MaxFrame/2 || n == 1) {
				if len(frame) <= gossip.MaxFrame {
					c.transport.Send(to, addr, frame)
				} else {
					c.cfg.Logger.Warn("dropping an oversized replication message", "peer", string(to), "bytes", len(frame))
				}
				break
			}
			if err != nil {
				c.cfg.Logger.Error("encoding a replication frame", "err", err)
				break
			}
			n = (n + 1) / 2
		}
		msgs = msgs[n:]
	}
}

// Deliver takes a frame from a peer (the transport's OnFrame).
func (c *Driver) Deliver(from ring.NodeID, frame []byte) {
	msgs, err := gossip.DecodeFrame(frame)
	if err != nil {
		c.cfg.Logger.Warn("bad replication frame", "peer", string(from), "err", err)
		return
	}
	c.enqueue(func() {
		for _, m := range msgs {
			c.core.Step(from, m)
		}
	})
}

func (c *Driver) enqueue(f func()) bool {
	select {
	case c.in <- f:
		return true
	case <-c.done:
		return false
	}
}

// SetTable installs a new ring.
func (c *Driver) SetTable(t ring.Table) { c.enqueue(func() { c.core.SetTable(t) }) }

// SetAlive records membership's view of a peer.
func (c *Driver) SetAlive(id ring.NodeID, alive bool) {
	c.enqueue(func() { c.core.SetAlive(id, alive) })
}

// SetInterest sets the profiles this node's subscribers follow.
func (c *Driver) SetInterest(refs []gossip.Ref) { c.enqueue(func() { c.core.SetInterest(refs) }) }

// AddInterest adds one profile to those this node's subscribers follow.
// It does not block (the hub calls it under its lock).
func (c *Driver) AddInterest(ref gossip.Ref) {
	c.enqueue(func() { c.core.AddInterest(ref) })
}

// RemoveInterest drops a profile this node's subscribers no longer follow.
// It does not block (the hub calls it under its lock).
func (c *Driver) RemoveInterest(ref gossip.Ref) {
	c.enqueue(func() { c.core.RemoveInterest(ref) })
}

// ResumePush tells the core that a push stream of ref opened resuming from
// since (gossip.Core.ResumePush). It does not block.
func (c *Driver) ResumePush(ref gossip.Ref, since crdt.HLC) {
	c.enqueue(func() { c.core.ResumePush(ref, since) })
}

// HasRing reports whether the node knows the ring.
func (c *Driver) HasRing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// Table returns the ring the node routes by, and whether it has one.
func (c *Driver) Table() (ring.Table, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table, c.ready
}

// Stats returns the Core's counters as of the last cycle.
func (c *Driver) Stats() gossip.CoreStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Pending returns, as of the last cycle, the hints this node holds for
// owners it could not reach (replication still owed) and the partitions it
// still has to pull from their previous owners (handoff).
func (c *Driver) Pending() (hints, handoffs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hints, c.pulls
}

func (c *Driver) do(ctx context.Context, op gossip.Op) (gossip.Result, error) {
	ch := make(chan gossip.Completion, 1)
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.waiting[id] = ch
	c.mu.Unlock()
	if !c.enqueue(func() { c.core.Submit(id, op) }) {
		return gossip.Result{}, fmt.Errorf("%w: the node is shutting down", gossip.ErrUnavailable)
	}
	select {
	case d := <-ch:
		return d.Res, d.Err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
		return gossip.Result{}, ctx.Err()
	}
}

// Put implements Service. The Core admits the write (clock skew against
// this node's clock, Core.Submit) and observes its timestamps.
func (c *Driver) Put(ctx context.Context, ref gossip.Ref, ups []crdt.Update) ([]gossip.WriteResult, error) {
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpPut, Ref: ref, Ups: ups})
	return res.Writes, err
}

// Cursor implements Service.
func (c *Driver) Cursor(ctx context.Context, ref gossip.Ref, video string) (crdt.Cursor, bool, error) {
	local := gossip.LocalReplicaOf(ctx)
	q := gossip.ReadQuorumOf(ctx)
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpCursor, Ref: ref, Video: video, Local: local, Seen: gossip.SeenOf(ctx), ReadQuorum: q})
	return res.Cursor, res.Found, err
}

// Cursors implements Service.
func (c *Driver) Cursors(ctx context.Context, ref gossip.Ref) ([]crdt.Cursor, error) {
	q := gossip.ReadQuorumOf(ctx)
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpCursors, Ref: ref, ReadQuorum: q})
	return res.Cursors, err
}

// History implements Service.
func (c *Driver) History(ctx context.Context, ref gossip.Ref) ([]gossip.HistoryItem, error) {
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpHistory, Ref: ref})
	return res.History, err
}

// DeleteEntry implements Service.
func (c *Driver) DeleteEntry(ctx context.Context, ref gossip.Ref, id string) error {
	_, err := c.do(ctx, gossip.Op{Kind: gossip.OpDeleteEntry, Ref: ref, Entry: id})
	return err
}

// DeleteVideo implements Service.
func (c *Driver) DeleteVideo(ctx context.Context, ref gossip.Ref, video string) error {
	_, err := c.do(ctx, gossip.Op{Kind: gossip.OpDeleteVideo, Ref: ref, Video: video})
	return err
}

// DeleteAll implements Service.
func (c *Driver) DeleteAll(ctx context.Context, ref gossip.Ref) error {
	_, err := c.do(ctx, gossip.Op{Kind: gossip.OpDeleteAll, Ref: ref})
	return err
}

// Profile implements Service.
func (c *Driver) Profile(ctx context.Context, ref gossip.Ref) (crdt.Profile, error) {
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpProfile, Ref: ref})
	return res.Profile, err
}

// SetHistoryPaused implements Service.
func (c *Driver) SetHistoryPaused(ctx context.Context, ref gossip.Ref, paused bool) (crdt.Profile, error) {
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpSetPaused, Ref: ref, Paused: paused})
	return res.Profile, err
}

// Now implements Service: this node's HLC (safe from any goroutine).
func (c *Driver) Now() crdt.HLC { return c.core.Clock().Now(c.cfg.Clock.NowMs()) }

// Policy implements Service.
func (c *Driver) Policy() crdt.Policy { return c.core.Policy() }

// Hide implements Service.
func (c *Driver) Hide(ctx context.Context, ref gossip.Ref, video string) error {
	_, err := c.do(ctx, gossip.Op{Kind: gossip.OpHide, Ref: ref, Video: video})
	return err
}

// Mark implements Service.
func (c *Driver) Mark(ctx context.Context, ref gossip.Ref, m gossip.Mark) (gossip.WriteResult, error) {
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpMark, Ref: ref, Video: m.Video, Mark: &m})
	if err != nil {
		return gossip.WriteResult{}, err
	}
	if len(res.Writes) != 1 {
		return gossip.WriteResult{}, fmt.Errorf("%w: a mark answered %d results", gossip.ErrUnavailable, len(res.Writes))
	}
	return res.Writes[0], nil
}

// Row implements Service.
func (c *Driver) Row(ctx context.Context, ref gossip.Ref) (gossip.Row, error) {
	q := gossip.ReadQuorumOf(ctx)
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpRow, Ref: ref, ReadQuorum: q})
	return gossip.Row{Cursors: res.Cursors, Hidden: res.Hidden}, err
}

// ExportPage implements Service.
func (c *Driver) ExportPage(ctx context.Context, ref gossip.Ref, kind crdt.Kind, after string, limit int) (gossip.ExportPage, error) {
	res, err := c.do(ctx, gossip.Op{Kind: gossip.OpExport, Ref: ref, Export: &gossip.ExportReq{Kind: kind, After: after, Limit: limit}})
	if err != nil {
		return gossip.ExportPage{}, err
	}
	if res.Page == nil {
		return gossip.ExportPage{}, nil
	}
	return *res.Page, nil
}

// nopNotifier drops events (a node with no subscribers).
type nopNotifier struct{}

func (nopNotifier) Notify([]gossip.Event) {}
